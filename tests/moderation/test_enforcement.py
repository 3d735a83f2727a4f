"""What moderation gives delivery and what it hears back: sources, notices, receipts,
manual actions. Real broker, Redis and database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session

from services.common.contracts.receipts import DeliveryReceipt
from services.common.db import make_engine
from services.moderation.app import create_app
from services.moderation.sources import latest_source
from tests.conftest import auth, produce_events
from tests.moderation.conftest import actions, add_rule, member_event, message, wait_until

NOTICES = {
    "warn": "{member} 违反群规：{reason}（第 {strikes} 次）",
    "mute": "{member} 因 {reason} 被禁言 {duration}",
}


@pytest.fixture
def mod_settings(make_settings, unique):
    """Settings with this test's own receipts topic too."""
    return make_settings(topic_delivery_receipts=unique("delivery.receipts.v1") + uuid.uuid4().hex)


def wait_for_source(settings, group, source):
    engine = make_engine(settings.database_url)
    try:

        def stored():
            with Session(engine) as session:
                return latest_source(session, group) == source

        assert wait_until(stored, timeout=30)
    finally:
        engine.dispose()


def cases_of(client, token, group):
    return client.get(f"/v1/groups/{group}/cases", headers=auth(token)).json()["cases"]


def test_actions_carry_the_event_source_notices_and_reversals_the_latest_source(
    mod_settings, run_app, tokens, unique, producer, kafka_bootstrap
):
    settings, group, h = mod_settings, unique("grp:notice"), auth(tokens.admin)
    with run_app(create_app(settings)) as client:
        add_rule(client, tokens.admin, group, name="广告", kind="keywords",
                 params={"keywords": ["加微信"]}, action="warn")  # fmt: skip
        policy = {"ladder": [{"strikes": 2, "action": "mute", "mute_seconds": 7200}],
                  "notices": NOTICES}  # fmt: skip
        assert client.put(f"/v1/groups/{group}/policy", headers=h, json=policy).status_code == 200
        now = datetime.now(UTC) - timedelta(minutes=1)
        first = message(group, "m", "加微信", at=now, display_name="小明")
        second = message(group, "m", "加 微 信", at=now + timedelta(seconds=1))
        produce_events(producer, settings.topic_events, [first, second])
        got = actions(kafka_bootstrap, settings.topic_moderation_actions, expect=5, timeout=40)
        # Each ad is deleted first (no notice), then warned; the second warn climbs to a mute.
        assert [(a["action"], a["source"]) for a in got] == [
            ("delete", "test"), ("warn", "test"), ("delete", "test"), ("warn", "test"),
            ("mute", "test"),
        ]  # fmt: skip
        assert got[0]["text"] is None and got[0]["message_id"] == first.data.message_id
        got = got[1:2] + got[3:]
        assert got[0]["text"] == "@小明 违反群规：广告（第 1 次）"
        assert got[0]["mentions"] == ["m"] and got[0]["mention_names"] == {"m": "小明"}
        assert got[0]["message_at"] == first.occurred_at.isoformat()
        # No name on the second message: the member id stands in.
        assert got[1]["text"] == "@m 违反群规：广告（第 2 次）" and got[1]["mention_names"] == {}
        assert got[2]["text"] == "@m 因 广告 被禁言 2 小时" and got[2]["mentions"] == ["m"]
        assert got[2]["message_at"] == second.occurred_at.isoformat()

        # The group's events now arrive through another source: the lift goes out through it.
        moved = member_event("member.joined", group, "n").model_copy(update={"source": "tg-2"})
        produce_events(producer, settings.topic_events, [moved])
        wait_for_source(settings, group, "tg-2")
        muted = next(c for c in cases_of(client, tokens.admin, group) if c["escalation"])
        reversed_ = client.post(
            f"/v1/groups/{group}/cases/{muted['id']}/reverse", headers=h, json={"reason": "ok"}
        )
        assert reversed_.status_code == 200, reversed_.text
        lift = actions(kafka_bootstrap, settings.topic_moderation_actions, expect=6)[5]
        assert lift["action"] == "unmute" and lift["source"] == "tg-2"
        assert lift["text"] is None and lift["mentions"] == [] and lift["mention_names"] == {}


def test_an_unknown_placeholder_is_a_422_naming_it(settings, run_app, tokens, unique):
    group, h = unique("grp:tpl"), auth(tokens.admin)
    with run_app(create_app(settings)) as client:
        bad = client.put(f"/v1/groups/{group}/policy", headers=h,
                         json={"notices": {"warn": "{member} {rule}"}})  # fmt: skip
        assert bad.status_code == 422
        error = bad.json()["detail"][0]
        assert error["loc"] == ["body", "notices", "warn"] and "{rule}" in error["msg"]
        ok = {"notices": {"kick": "{member} 被移出", "verify": "{member} 请输入 {code}"}}
        put = client.put(f"/v1/groups/{group}/policy", headers=h, json=ok)
        assert (
            put.status_code == 200 and put.json()["notices"]["verify"] == "{member} 请输入 {code}"
        )
        assert put.json()["notices"]["warn"] is None


def _receipt(settings, group, ref_id, outcome, *, attempts=1, at=None, detail=""):
    return DeliveryReceipt(
        id=uuid.uuid4().hex, ref_id=ref_id, ref_topic=settings.topic_moderation_actions,
        group_id=group, source="test", platform="telegram", operation="mute", outcome=outcome,
        detail=detail, attempts=attempts, created_at=at or datetime.now(UTC),
    )  # fmt: skip


def _send_receipts(producer, settings, receipts):
    for r in receipts:
        producer.send(settings.topic_delivery_receipts, key=r.group_id.encode(),
                      value=r.model_dump_json().encode())  # fmt: skip
    producer.flush(timeout=30)


def test_receipts_become_the_case_enforcement_and_a_later_one_replaces_it(
    mod_settings, run_app, tokens, unique, producer
):
    settings, group, h = mod_settings, unique("grp:enf"), auth(tokens.admin)
    with run_app(create_app(settings)) as client:
        body = {"member_id": "m", "action": "mute", "duration_seconds": 600, "reason": "刷屏"}
        case = client.post(f"/v1/groups/{group}/actions", headers=h, json=body).json()
        assert case["enforcement"] is None

        def enforcement():
            got = client.get(f"/v1/groups/{group}/cases/{case['id']}", headers=h).json()
            return got["enforcement"]

        t0 = datetime.now(UTC)
        forbidden = _receipt(settings, group, case["id"], "forbidden", at=t0, detail="no rights")
        other = _receipt(settings, group, "cmp-1:reminder", "delivered").model_copy(
            update={"ref_topic": settings.topic_campaign_notifications}
        )
        _send_receipts(producer, settings, [other, forbidden])
        assert wait_until(lambda: (enforcement() or {}).get("outcome") == "forbidden", timeout=30)
        assert enforcement()["detail"] == "no rights"
        # A REST retry at delivery: a new receipt for the same action replaces the first...
        retried = _receipt(settings, group, case["id"], "delivered", attempts=2,
                           at=t0 + timedelta(seconds=5))  # fmt: skip
        _send_receipts(producer, settings, [retried])
        assert wait_until(lambda: (enforcement() or {}).get("outcome") == "delivered", timeout=30)
        # ...and a redelivered older receipt changes nothing: the receipt of another case
        # sent after it (same group, same partition) shows it was read.
        later = client.post(f"/v1/groups/{group}/actions", headers=h, json=body).json()
        _send_receipts(
            producer, settings, [forbidden, _receipt(settings, group, later["id"], "failed")]
        )
        listed = wait_until(lambda: cases_of(client, tokens.admin, group)[0]["enforcement"])
        assert listed["outcome"] == "failed"
        assert enforcement()["outcome"] == "delivered"
        assert enforcement()["updated_at"].startswith((t0 + timedelta(seconds=5)).isoformat()[:19])


def test_manual_actions_open_cases_with_by_and_climb_the_ladder(
    mod_settings, run_app, tokens, unique, producer, kafka_bootstrap
):
    settings, group, h = mod_settings, unique("grp:manual"), auth(tokens.admin)
    with run_app(create_app(settings)) as client:
        policy = {"ladder": [{"strikes": 2, "action": "mute", "mute_seconds": 86400}],
                  "exempt_members": ["boss"], "notices": NOTICES}  # fmt: skip
        assert client.put(f"/v1/groups/{group}/policy", headers=h, json=policy).status_code == 200
        produce_events(producer, settings.topic_events, [member_event("member.joined", group, "x")])
        wait_for_source(settings, group, "test")

        url = f"/v1/groups/{group}/actions"
        no_duration = client.post(url, headers=h, json={"member_id": "m", "action": "mute"})
        assert no_duration.status_code == 422 and "duration_seconds" in no_duration.text
        no_message = client.post(url, headers=h, json={"member_id": "m", "action": "delete"})
        assert no_message.status_code == 422 and "message_id" in no_message.text
        exempt = client.post(url, headers=h, json={"member_id": "boss", "action": "kick"})
        assert exempt.status_code == 409 and exempt.json() == {"detail": "member is exempt"}
        warn = {"member_id": "m", "action": "warn", "reason": "骂人"}
        reader = client.post(url, headers=auth(tokens.reader), json=warn)
        assert reader.status_code == 403

        first = client.post(url, headers=h, json=warn)
        assert first.status_code == 201, first.text
        case = first.json()
        assert case["by"] == "admin" and case["rule_ids"] == [] and case["reporters"] == []
        assert case["event_id"] is None and case["action"] == "warn" and case["enforcement"] is None
        second = client.post(url, headers=h, json=warn)
        assert second.json()["escalation"]["action"] == "mute"
        delete = client.post(url, headers=h, json={**warn, "action": "delete", "message_id": "77"})
        assert delete.status_code == 201

        got = actions(kafka_bootstrap, settings.topic_moderation_actions, expect=4, timeout=30)
        assert [(a["action"], a["source"], a["rule_id"]) for a in got] == [
            ("warn", "test", None), ("warn", "test", None), ("mute", "test", None),
            ("delete", "test", None),
        ]  # fmt: skip
        assert got[0]["text"] == "@m 违反群规：骂人（第 1 次）" and got[0]["reason"] == "骂人"
        assert got[2]["text"] == "@m 因 骂人 被禁言 1 天" and got[2]["duration_seconds"] == 86400
        assert got[3]["message_id"] == "77" and got[3]["text"] is None
        assert all(a["message_at"] is None for a in got)
        listed = cases_of(client, tokens.admin, group)
        assert [c["by"] for c in listed] == ["admin"] * 3
