"""Challenge and event flows: every notification on the topic exactly once, grants once."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from services.campaigns.app import create_app
from tests.campaigns.helpers import campaign_body, message, now, read_group, wait_until
from tests.conftest import auth, produce_events


def test_challenge_and_event_flows(settings, run_app, tokens, unique, producer, kafka_bootstrap):
    group = unique("g-flows")
    admin = auth(tokens.admin)
    t0 = now()
    event_body = campaign_body(
        "event",
        start_in=4,
        end_in=6,
        announce_at=(t0 + timedelta(seconds=1)).isoformat(),
        reminders=["PT2S", "PT1S"],
        params={"attendance_keyword": "签到", "points": 5, "location": "线上"},
    )
    challenge_body = campaign_body(
        "challenge",
        start_in=1,
        end_in=4.5,
        params={"goal_messages": 3, "points": 20, "badge": "活跃之星"},
    )
    in_challenge = t0 + timedelta(seconds=2)
    in_event = t0 + timedelta(seconds=5)
    events = [message(group, "ann", f"msg {i}", in_challenge) for i in range(4)]
    events += [message(group, "ben", f"msg {i}", in_challenge) for i in range(2)]
    events += [
        message(group, "cat", "我来签到", in_event),
        message(group, "cat", "签到签到", in_event),
        message(group, "ben", "no keyword", in_event),
    ]
    with run_app(create_app(settings)) as client:
        ev = client.post(f"/v1/groups/{group}/campaigns", json=event_body, headers=admin).json()
        ch = client.post(f"/v1/groups/{group}/campaigns", json=challenge_body, headers=admin).json()
        produce_events(producer, settings.topic_events, events)

        def status(cid: str) -> str:
            return client.get(f"/v1/groups/{group}/campaigns/{cid}", headers=admin).json()["status"]

        assert wait_until(lambda: status(ev["id"]) == status(ch["id"]) == "ended", timeout=30)
        notes = read_group(
            kafka_bootstrap, settings.topic_campaign_notifications, group, expect=7, settle=2
        )
        kinds = Counter((n["campaign_id"], n["kind"]) for n in notes)
        assert kinds == {
            (ev["id"], "announce"): 1,
            (ev["id"], "reminder"): 2,
            (ev["id"], "started"): 1,
            (ev["id"], "ended"): 1,
            (ch["id"], "started"): 1,
            (ch["id"], "ended"): 1,
        }
        assert len({n["id"] for n in notes}) == 7
        event_notes = [n for n in notes if n["campaign_id"] == ev["id"]]
        assert [n["kind"] for n in event_notes] == [
            "announce",
            "reminder",
            "reminder",
            "started",
            "ended",
        ]
        assert [n["data"]["before"] for n in event_notes if n["kind"] == "reminder"] == [
            "PT2S",
            "PT1S",
        ]
        assert all(n["group_id"] == group and n["text"] for n in notes)

        grants = read_group(
            kafka_bootstrap, settings.topic_campaign_rewards, group, expect=2, settle=1
        )
        assert sorted((g["member_id"], g["reason"], g["points"], g["badge"]) for g in grants) == [
            ("ann", "challenge", 20, "活跃之星"),
            ("cat", "attendance", 5, None),
        ]
        participants = client.get(
            f"/v1/groups/{group}/campaigns/{ch['id']}/participants", headers=admin
        ).json()["participants"]
        assert {p["member_id"]: p["count"] for p in participants} == {"ann": 4, "ben": 2}
        ann = client.get(f"/v1/groups/{group}/members/ann/rewards", headers=admin).json()
        assert ann["points"] == 20 and ann["badges"] == ["活跃之星"]
