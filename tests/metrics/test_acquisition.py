"""Channels and inviters of a hand-worked group in Asia/Shanghai, across two month ends.

Every number below was worked out by hand from docs/metrics.md. Dk = B + k, B the last
day of a month (so D1 and D31 open the next two months); counted: first joins in D0..D31.
  a1  joins D0 23:59:30 via qr; speaks D0 23:59:50 (as 阿一), D7 00:00:05, D30
  a2  joins D1 00:00:10 via qr, invited by a1; never speaks
  a3  joins D0 10:00 via link, invited by a1; speaks D6 23:59:59; leaves D10
  a4  joins D1 with no channel, invited by a5; speaks D8 and D31
  a5  joins D0 via link as 老五; speaks D0; renamed 五哥 on D15; leaves D20 (an inviter who left)
  a6  joins D2 via link invited by a5, leaves D3, re-joins D5 via qr invited by a1 (that join
      arrives first); speaks D9
  a7  joins D40 via qr (outside the range)      frank speaks D3, never seen joining
"""

from __future__ import annotations

import random
from datetime import date, timedelta

import pytest

from services.metrics.app import create_app
from services.metrics.apply import Applier
from tests.metrics.helpers import SHANGHAI, local, raw
from tests.support import auth


def base_day(today: date) -> date:
    """The last day of a month 62 to 93 days ago."""
    return (today - timedelta(days=62)).replace(day=1) - timedelta(days=1)


def records(group: str, d: list[date]):
    def j(member, k, at, **data):
        return raw("member.joined", group, member, local(d[k], at), data)

    def m(member, k, at, **data):
        return raw("message.created", group, member, local(d[k], at), data)

    n = iter(range(1000))

    def say(member, k, at, name=None):
        data = {"message_id": f"{member}-{next(n)}"}
        return m(member, k, at, **(data | ({"display_name": name} if name else {})))

    return [
        j("a1", 0, "23:59:30", channel="qr"),
        say("a1", 0, "23:59:50", "阿一"),
        say("a1", 7, "00:00:05"),
        say("a1", 30, "10:00"),
        j("a2", 1, "00:00:10", channel="qr", invited_by="a1"),
        j("a3", 0, "10:00", channel="link", invited_by="a1"),
        say("a3", 6, "23:59:59"),
        raw("member.left", group, "a3", local(d[10], "12:00")),
        j("a4", 1, "12:00", invited_by="a5"),
        say("a4", 8, "12:00"),
        say("a4", 31, "12:00"),
        j("a5", 0, "09:00", channel="link", display_name="老五"),
        say("a5", 0, "09:30"),
        raw("member.updated", group, "a5", local(d[15], "09:00"), {"display_name": "五哥"}),
        raw("member.left", group, "a5", local(d[20], "09:00")),
        j("a6", 5, "12:00", channel="qr", invited_by="a1"),  # the later join, seen first
        j("a6", 2, "12:00", channel="link", invited_by="a5"),
        raw("member.left", group, "a6", local(d[3], "12:00")),
        say("a6", 9, "12:00"),
        j("a7", 40, "12:00", channel="qr"),
        say("frank", 3, "12:00"),
    ]


def apply_all(applier: Applier, pairs) -> None:
    applier.apply([e for e, _ in pairs])


CHANNELS = [
    {"channel": "link", "joins": 3, "still_members": 1, "spoke": 3, "retained_d7": 1,
     "retained_d30": 0},
    {"channel": "qr", "joins": 2, "still_members": 2, "spoke": 1, "retained_d7": 1,
     "retained_d30": 1},
    {"channel": "(none)", "joins": 1, "still_members": 1, "spoke": 1, "retained_d7": 1,
     "retained_d30": 1},
]  # fmt: skip
INVITERS = [
    {"member_id": "a5", "display_name": "五哥", "joins": 2, "still_members": 2, "spoke": 2,
     "retained_d7": 2, "retained_d30": 1},
    {"member_id": "a1", "display_name": "阿一", "joins": 2, "still_members": 1, "spoke": 1,
     "retained_d7": 0, "retained_d30": 0},
]  # fmt: skip


@pytest.fixture
def worked(make_settings, run_app, unique, redis_url):
    settings = make_settings(qunyun_timezone="Asia/Shanghai")
    today = date.today()
    d = [base_day(today) + timedelta(days=k) for k in range(41)]
    with run_app(create_app(settings)) as client:
        yield client, settings, d, unique


def test_channels_and_inviters_number_by_number(worked, tokens):
    client, settings, d, unique = worked
    from services.common.redis_client import make_redis

    applier = Applier(make_redis(settings.redis_url), tz=SHANGHAI, history_days=400)
    in_order, shuffled = unique("acq:order"), unique("acq:shuffled")
    apply_all(applier, records(in_order, d))
    pairs = records(shuffled, d)
    random.Random(7).shuffle(pairs)
    apply_all(applier, pairs)
    apply_all(applier, pairs)  # a replay changes nothing
    h = auth(tokens.reader)
    span = {"from": d[0].isoformat(), "to": d[31].isoformat()}
    for group in (in_order, shuffled):
        got = client.get(f"/v1/groups/{group}/channels", params=span, headers=h)
        assert got.json() == {"channels": CHANNELS}, group
        got = client.get(f"/v1/groups/{group}/inviters", params=span, headers=h)
        assert got.json() == {"inviters": INVITERS}, group
        one = client.get(f"/v1/groups/{group}/inviters", params=span | {"limit": 1}, headers=h)
        assert one.json() == {"inviters": INVITERS[:1]}
        sep1 = {"from": d[1].isoformat(), "to": d[1].isoformat()}
        narrow = client.get(f"/v1/groups/{group}/channels", params=sep1, headers=h).json()
        assert [(c["channel"], c["joins"], c["spoke"]) for c in narrow["channels"]] == [
            ("(none)", 1, 1),
            ("qr", 1, 0),
        ]
        a6 = client.get(f"/v1/groups/{group}/members/a6", headers=h).json()
        assert (a6["channel"], a6["invited_by"], a6["left_at"]) == ("link", "a5", None)
        assert a6["joined_at"].startswith(d[2].isoformat())
        a4 = client.get(f"/v1/groups/{group}/members/a4", headers=h).json()
        assert (a4["channel"], a4["invited_by"]) == (None, "a5")
        a5 = client.get(f"/v1/groups/{group}/members/a5", headers=h).json()
        assert a5["display_name"] == "五哥" and a5["left_at"] is not None
        frank = client.get(f"/v1/groups/{group}/members/frank", headers=h).json()
        assert (frank["channel"], frank["invited_by"], frank["joined_at"]) == (None, None, None)


def test_retention_by_channel(worked, tokens):
    client, settings, d, unique = worked
    from services.common.redis_client import make_redis

    group = unique("acq:retention")
    applier = Applier(make_redis(settings.redis_url), tz=SHANGHAI, history_days=400)
    apply_all(applier, records(group, d))
    h = auth(tokens.reader)

    def sizes(channel, mode="unbounded"):
        params = {"from": d[0].isoformat(), "to": d[2].isoformat(), "periods": 7, "mode": mode,
                  "channel": channel}  # fmt: skip
        body = client.get(f"/v1/groups/{group}/retention", params=params, headers=h).json()
        return [(c["size"], [p["count"] for p in c["periods"]]) for c in body["cohorts"]]

    assert sizes("qr") == [(1, [1] * 7), (1, [0] * 7), (0, [0] * 7)]
    assert sizes("link") == [(2, [1, 1, 1, 1, 1, 1, 0]), (0, [0] * 7), (1, [1] * 7)]
    assert sizes("link", "exact") == [(2, [0, 0, 0, 0, 0, 1, 0]), (0, [0] * 7), (1, [0] * 6 + [1])]
    assert sizes("(none)") == [(0, [0] * 7), (1, [1] * 7), (0, [0] * 7)]
    assert sizes("nobody-used-this") == [(0, [0] * 7)] * 3


def test_inviters_tied_at_the_cut_are_ordered_by_member_id_bytes(redis_url, unique):
    from services.common.redis_client import make_redis
    from services.metrics.acquisition import read_inviters
    from services.metrics.keys import day_number

    client = make_redis(redis_url)
    applier = Applier(client, tz=SHANGHAI, history_days=400)
    group, day = unique("acq:ties"), date.today() - timedelta(days=3)
    tied = ["b", "B", "a", "Z", "é", "_x", "a0", "A", "z", "ä", "telegram:10", "telegram:9"]
    invites = [("top", "n-top-1"), ("top", "n-top-2")] + [(m, f"n-{m}") for m in tied]
    pairs = [
        raw("member.joined", group, new, local(day, "12:00"), {"invited_by": inviter})
        for inviter, new in invites
    ]
    apply_all(applier, pairs)
    span = {"group_id": group, "first_day": day_number(day), "last_day": day_number(day)}
    expected = ["top", *sorted(tied, key=str.encode)]
    for limit in (1, 2, 3, 7, len(expected), 1000):
        rows = read_inviters(client, **span, limit=limit)
        assert [r.member_id for r in rows] == expected[:limit], limit
        assert [r.joins for r in rows] == [2, *[1] * (min(limit, len(expected)) - 1)]
    assert not client.exists(f"qy:{{{group}}}:tmp:inviters")  # the scratch set is gone
