"""End to end: events posted to the ingest webhook show up in the metrics API.

A join's `channel` (the contract's `member.joined` data) travels through ingest and the
metrics consumer to `GET …/channels`, `GET …/inviters` and the member.

Signed as DESIGN.md says for generic sources: X-Qunyun-Timestamp and
X-Qunyun-Signature: v1=<hex HMAC-SHA256(secret, timestamp + "." + raw body)>.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from datetime import UTC, datetime, timedelta

import orjson

from services.ingest.app import create_app as create_ingest
from services.metrics.app import create_app as create_metrics
from tests.support import SOURCE_SECRETS, auth, wait_until


def signed(body: bytes) -> dict[str, str]:
    secret = SOURCE_SECRETS["generic-test"][1]
    ts = str(int(time.time()))
    digest = hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {
        "Content-Type": "application/json",
        "X-Qunyun-Timestamp": ts,
        "X-Qunyun-Signature": f"v1={digest}",
    }


CHANNEL = "海报-A 2025秋"


def webhook_events(run: str, group: str, now: datetime) -> list[dict]:
    """Two joins (one through CHANNEL, one invited by its member), three messages."""

    def ev(n: int, kind: str, member: str, at: datetime, data: dict | None = None) -> dict:
        return {
            "id": f"e2e-{run}-{n}",
            "type": kind,
            "group_id": group,
            "member_id": member,
            "occurred_at": at.isoformat(),
            "data": data or {},
        }

    def msg(n: int, member: str, at: datetime) -> dict:
        return ev(n, "message.created", member, at, {"message_id": f"m{n}", "text": "hi"})

    joined = {"method": "link", "channel": CHANNEL}
    return [
        ev(1, "member.joined", "u:ann", now - timedelta(minutes=20), joined),
        ev(2, "member.joined", "u:ben", now - timedelta(minutes=10), {"invited_by": "u:ann"}),
        ev(3, "message.created", "u:ann", now - timedelta(minutes=2))
        | {"data": {"message_id": "m3", "text": "hi", "display_name": "安娜"}},
        msg(4, "u:ann", now - timedelta(minutes=1)),
        msg(5, "u:ben", now - timedelta(minutes=1)),
    ]


def check_acquisition(metrics, group: str, span: dict, headers: dict) -> None:
    """The join's channel reached the member, the channels and the inviters."""
    ann = metrics.get(f"/v1/groups/{group}/members/u:ann", headers=headers).json()
    assert ann["channel"] == CHANNEL and ann["invited_by"] is None
    ben = metrics.get(f"/v1/groups/{group}/members/u:ben", headers=headers).json()
    assert ben["invited_by"] == "u:ann" and ben["channel"] is None
    counts = {"joins": 1, "still_members": 1, "spoke": 1, "retained_d7": 0, "retained_d30": 0}
    channels = metrics.get(f"/v1/groups/{group}/channels", params=span, headers=headers)
    assert channels.json() == {
        "channels": [{"channel": "(none)"} | counts, {"channel": CHANNEL} | counts]
    }, channels.text
    inviters = metrics.get(f"/v1/groups/{group}/inviters", params=span, headers=headers)
    assert inviters.json() == {
        "inviters": [{"member_id": "u:ann", "display_name": "安娜"} | counts]
    }, inviters.text


def test_webhook_events_reach_the_metrics_api(make_settings, run_app, tokens):
    run = uuid.uuid4().hex[:8]
    group = f"e2e:metrics:{run}"
    now = datetime.now(UTC)
    now = now.replace(microsecond=now.microsecond // 1000 * 1000)  # the API keeps milliseconds
    ingest_settings = make_settings()
    metrics_settings = make_settings(share_with=ingest_settings)
    body = orjson.dumps({"events": webhook_events(run, group, now)})
    with (
        run_app(create_ingest(ingest_settings)) as ingest,
        run_app(create_metrics(metrics_settings)) as metrics,
    ):
        first = ingest.post("/v1/webhooks/generic-test", content=body, headers=signed(body))
        assert first.status_code == 202, first.text
        assert first.json()["accepted"] == 5
        again = ingest.post("/v1/webhooks/generic-test", content=body, headers=signed(body))
        assert again.status_code == 202 and again.json()["duplicates"] == 5

        headers = auth(tokens.reader)
        # Yesterday too, in case the test runs just after midnight UTC.
        span = {"from": (now - timedelta(days=1)).date().isoformat(), "to": now.date().isoformat()}

        def activity():
            r = metrics.get(f"/v1/groups/{group}/activity", params=span, headers=headers)
            if r.status_code == 404:  # no event of the group consumed yet
                return None
            assert r.status_code == 200, r.text
            days = r.json()["days"]
            return {k: sum(d[k] for d in days) for k in ("messages", "joins", "leaves")}

        expected = {"messages": 3, "joins": 2, "leaves": 0}
        assert wait_until(lambda: activity() == expected, timeout=45), activity()
        ann = metrics.get(f"/v1/groups/{group}/members/u:ann", headers=headers).json()
        assert ann["messages"] == 2 and ann["active_days"] == 1 and ann["left_at"] is None
        assert ann["display_name"] == "安娜"
        check_acquisition(metrics, group, span, headers)
        assert datetime.fromisoformat(ann["joined_at"]) == now - timedelta(minutes=20)
        assert datetime.fromisoformat(ann["last_active_at"]) == now - timedelta(minutes=1)
        board = metrics.get(f"/v1/groups/{group}/leaderboard?days=2", headers=headers).json()
        assert board == {
            "members": [
                {"member_id": "u:ann", "display_name": "安娜", "messages": 2},
                {"member_id": "u:ben", "display_name": None, "messages": 1},
            ]
        }
        rolling = metrics.get(f"/v1/groups/{group}/rolling?window=5m", headers=headers).json()
        assert rolling == {"window": "5m", "messages": 3, "active_members": 2}
