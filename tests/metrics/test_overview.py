"""The overview over 50 groups, seen through three tokens: all groups, two groups, one group."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest

from services.common.auth import token_entry
from services.common.redis_client import make_redis
from services.common.settings import QunyunConfig, write_config
from services.metrics.app import create_app
from services.metrics.apply import Applier
from tests.metrics.helpers import SHANGHAI, event
from tests.support import auth

# The overview lists every group of the index, so this test has a Redis database of its own
# (on a Redis Cluster, which has one database, the cluster is emptied: tests/cluster).
OWN_DB = 11
GROUPS = [f"ov:{n:02d}" for n in range(50)]


def fill(applier: Applier, now: datetime) -> None:
    """Group n: n % 7 + 1 members joined today, the first n % 3 left, then the first n % 5
    spoke (a member who speaks after leaving is a member again)."""
    events = []
    for n, group in enumerate(GROUPS):
        members = [f"u{i}" for i in range(n % 7 + 1)]
        events += [event("member.joined", group, m, now - timedelta(hours=2)) for m in members]
        events += [
            event("member.left", group, m, now - timedelta(hours=1)) for m in members[: n % 3]
        ]
        events += [event("message.created", group, m, now) for m in members[: n % 5]]
    applier.apply(events)


@pytest.fixture
def overview(make_settings, run_app, redis_url, redis_cluster, tmp_path):
    tokens = {name: f"qy_ov_{name}_{uuid.uuid4().hex}" for name in ("all", "two", "one")}
    config = QunyunConfig(
        tokens=[
            token_entry("all", tokens["all"], ["*"], ["read"]),
            token_entry("two", tokens["two"], ["ov:03", "ov:41", "ov:unseen"], ["read"]),
            token_entry("one", tokens["one"], ["ov:17"], ["read"]),
        ]
    )
    url = redis_url if redis_cluster else redis_url.rsplit("/", 1)[0] + f"/{OWN_DB}"
    client = make_redis(url, cluster=redis_cluster)
    client.flushdb()  # on a cluster: every primary
    settings = make_settings(
        redis_url=url,
        qunyun_config=str(write_config(tmp_path / "qunyun.toml", config)),
        qunyun_timezone="Asia/Shanghai",
    )
    now = datetime.now(SHANGHAI).replace(minute=30, second=0, microsecond=0)
    if now.hour < 3:
        now = now.replace(hour=3)
    fill(Applier(client, tz=SHANGHAI, history_days=400), now)
    with run_app(create_app(settings)) as api:
        yield api, tokens, now.date()


def expected(n: int) -> dict:
    members = n % 7 + 1
    spoke, left = min(n % 5, members), min(n % 3, members)
    return {
        "group_id": GROUPS[n],
        "members": members - max(left - spoke, 0),
        "dau": spoke,
        "wau": spoke,
        "mau": spoke,
        "messages_7d": spoke,
        "joins_7d": members,
        "leaves_7d": left,
    }


def pages(api, token, **params) -> list[dict]:
    out, cursor = [], None
    while True:
        query = params | ({"cursor": cursor} if cursor else {})
        r = api.get("/v1/overview", params=query, headers=auth(token))
        assert r.status_code == 200, r.text
        body = r.json()
        out += body["groups"]
        cursor = body["next_cursor"]
        if cursor is None:
            return out


def test_each_token_sees_exactly_its_groups_sorted_and_paged(overview):
    api, tokens, today = overview
    day = today.isoformat()
    lines = [expected(n) for n in range(50)]
    for sort in ("members", "dau", "mau", "joins_7d", "leaves_7d"):
        want = sorted(lines, key=lambda g, s=sort: (-g[s], g["group_id"]))
        whole = api.get(
            "/v1/overview", params={"date": day, "sort": sort, "limit": 1000},
            headers=auth(tokens["all"]),
        ).json()  # fmt: skip
        assert whole == {"date": day, "groups": want, "next_cursor": None}
        assert pages(api, tokens["all"], date=day, sort=sort, limit=7) == want
    assert (
        pages(api, tokens["all"], date=day, limit=3)[:3]
        == sorted(lines, key=lambda g: (-g["members"], g["group_id"]))[:3]
    )
    two = pages(api, tokens["two"], date=day, sort="dau", limit=1)
    assert two == [expected(3), expected(41)]  # dau 3 and 1; the unseen group is not listed
    assert pages(api, tokens["one"], date=day) == [expected(17)]
    default = api.get("/v1/overview", headers=auth(tokens["one"])).json()
    assert default["date"] == today.isoformat() and default["groups"] == [expected(17)]


def test_the_day_moves_the_windows_not_the_members(overview):
    api, tokens, today = overview
    later = (today + timedelta(days=7)).isoformat()
    body = api.get("/v1/overview", params={"date": later}, headers=auth(tokens["one"])).json()
    assert body["groups"] == [
        expected(17) | {"dau": 0, "wau": 0, "messages_7d": 0, "joins_7d": 0, "leaves_7d": 0}
    ]
