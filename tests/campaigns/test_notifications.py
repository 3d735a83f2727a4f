"""Notifications as campaigns keeps them: the group's latest source, winners named and
mentioned, each notification's delivery from delivery.receipts.v1, pagination, 404."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from kafka import KafkaProducer
from sqlmodel import Session

from services.campaigns.app import create_app
from services.campaigns.directory import source_of
from services.common.contracts.receipts import DeliveryReceipt
from services.common.settings import Settings
from tests.campaigns.helpers import campaign_body, joined, message, now, read_group, wait_until
from tests.conftest import auth, produce_events


def _notes(client: Any, base: str, headers: dict[str, str], **query: Any) -> dict[str, Any]:
    r = client.get(f"{base}/notifications", params=query, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def test_notifications_carry_the_latest_source_and_name_the_winners(
    settings, engine, run_app, tokens, unique, producer, kafka_bootstrap
):
    group = unique("g-notes-source")
    admin = auth(tokens.admin)
    t0 = now()
    params = {"prizes": [{"name": "周边", "quantity": 3}], "draw_delay_seconds": 0}
    with run_app(create_app(settings)) as client:
        produce_events(
            producer,
            settings.topic_events,
            [joined(group, "ann", t0 - timedelta(days=1), source="tg-a", display_name="安妮")],
        )

        def source() -> str | None:
            with Session(engine) as session:
                return source_of(session=session, group_id=group)

        assert wait_until(lambda: source() == "tg-a")
        # The window starts from now, not t0: on a busy machine the wait above takes seconds.
        body = campaign_body("lottery", start_in=1.5, end_in=5, params=params)
        inside = now() + timedelta(seconds=3)
        cid = client.post(f"/v1/groups/{group}/campaigns", json=body, headers=admin).json()["id"]
        base = f"/v1/groups/{group}/campaigns/{cid}"
        produce_events(
            producer,
            settings.topic_events,
            [
                message(group, "ann", "我来了", inside, source="tg-b"),
                message(group, "bob", "我也来", inside, source="tg-b"),
                message(group, "cat", "喵", inside, source="tg-b", display_name="小猫"),
            ],
        )
        assert wait_until(lambda: source() == "tg-b")
        # An older event arriving late does not change the group's latest source.
        old = joined(group, "dan", t0 - timedelta(hours=1), source="tg-old")
        produce_events(producer, settings.topic_events, [old])
        assert wait_until(lambda: len(_notes(client, base, admin)["notifications"]) == 3, 30)
        assert source() == "tg-b"
        notes = {n["kind"]: n for n in _notes(client, base, admin)["notifications"]}

    assert list(notes) == ["started", "ended", "winners"]
    assert notes["started"]["source"] in {"tg-a", "tg-b"}  # the messages may come after the start
    assert notes["ended"]["source"] == notes["winners"]["source"] == "tg-b"
    winners = notes["winners"]
    assert sorted(winners["mentions"]) == ["ann", "bob", "cat"]
    # bob's name is unknown: named as a group member, never by his id.
    assert all(f"@{name}（周边）" in winners["text"] for name in ["安妮", "群友", "小猫"])
    assert "bob" not in winners["text"]
    # Kept in `data` on the listed row; the published record has it top level too.
    names = {"ann": "安妮", "bob": "群友", "cat": "小猫"}
    assert winners["data"]["mention_names"] == names
    published = read_group(
        kafka_bootstrap, settings.topic_campaign_notifications, group, expect=3, timeout=30
    )
    [record] = [n for n in published if n["kind"] == "winners"]
    assert record["mention_names"] == names
    assert record["data"]["mention_names"] == record["mention_names"]
    assert all(n["mention_names"] == {} for n in published if n["kind"] != "winners")
    assert all(n["delivery"] is None and n["reply_to"] is None for n in notes.values())
    assert notes["started"]["mentions"] == []


def _receipt(
    group: str, ref_id: str, outcome: str, at: datetime, *, topic: str, attempts: int = 1
) -> DeliveryReceipt:
    return DeliveryReceipt(
        id=uuid.uuid4().hex,
        ref_id=ref_id,
        ref_topic=topic,
        group_id=group,
        source="tg-a",
        platform="telegram",
        operation="post",
        outcome=outcome,  # type: ignore[arg-type]
        detail=f"{outcome} #{attempts}",
        attempts=attempts,
        created_at=at,
    )


def _send(producer: KafkaProducer, topic: str, receipts: list[DeliveryReceipt]) -> None:
    for r in receipts:
        producer.send(topic, key=r.group_id.encode(), value=r.model_dump_json().encode())
    producer.flush(timeout=30)


def test_receipts_show_as_delivery_latest_wins_and_lists_page(
    make_settings, run_app, tokens, unique, producer
):
    settings: Settings = make_settings(topic_delivery_receipts=unique("delivery.receipts.v1"))
    group = unique("g-notes-delivery")
    admin = auth(tokens.admin)
    body = campaign_body("event", start_in=1, end_in=2, announce_at=now().isoformat())
    ours, theirs = settings.topic_campaign_notifications, settings.topic_moderation_actions
    with run_app(create_app(settings)) as client:
        cid = client.post(f"/v1/groups/{group}/campaigns", json=body, headers=admin).json()["id"]
        base = f"/v1/groups/{group}/campaigns/{cid}"
        assert wait_until(lambda: len(_notes(client, base, admin)["notifications"]) == 3, 30)

        first = _notes(client, base, admin, limit=2)
        assert first["next_cursor"]
        rest = _notes(client, base, admin, limit=2, cursor=first["next_cursor"])
        assert rest["next_cursor"] is None
        listed = first["notifications"] + rest["notifications"]
        assert [n["kind"] for n in listed] == ["announce", "started", "ended"]
        announce, started, ended = (n["id"] for n in listed)

        t = now()
        _send(
            producer,
            settings.topic_delivery_receipts,
            [
                _receipt(group, announce, "failed", t, topic=ours),
                _receipt(group, announce, "forbidden", t, topic=theirs),  # not ours: ignored
                _receipt(group, f"{cid}:nope", "delivered", t, topic=ours),  # unknown: ignored
                _receipt(group, started, "delivered", t, topic=ours),
            ],
        )

        def delivery() -> dict[str, Any]:
            return {n["kind"]: n["delivery"] for n in _notes(client, base, admin)["notifications"]}

        assert wait_until(lambda: delivery()["started"] is not None)
        shown = delivery()
        assert shown["announce"]["outcome"] == "failed"
        assert shown["announce"]["detail"] == "failed #1"
        assert shown["started"]["outcome"] == "delivered"
        assert shown["ended"] is None

        later = t + timedelta(seconds=5)
        retried = _receipt(group, announce, "delivered", later, topic=ours, attempts=2)
        stale = _receipt(group, announce, "failed", t, topic=ours)  # an old receipt replayed
        _send(
            producer,
            settings.topic_delivery_receipts,
            [retried, stale, retried, _receipt(group, ended, "no_route", t, topic=ours)],
        )
        assert wait_until(lambda: delivery()["ended"] is not None)
        shown = delivery()
        assert shown["announce"]["outcome"] == "delivered"
        assert shown["announce"]["detail"] == "delivered #2"
        assert datetime.fromisoformat(shown["announce"]["updated_at"]) == later
        assert shown["ended"]["outcome"] == "no_route"


def test_notifications_of_an_unknown_campaign_are_404(settings, run_app, tokens, unique):
    group = unique("g-notes-404")
    admin = auth(tokens.admin)
    body = campaign_body("event", start_in=600, end_in=900)
    with run_app(create_app(settings)) as client:
        cid = client.post(f"/v1/groups/{group}/campaigns", json=body, headers=admin).json()["id"]
        assert _notes(client, f"/v1/groups/{group}/campaigns/{cid}", admin) == {
            "notifications": [],
            "next_cursor": None,
        }
        r = client.get(f"/v1/groups/{group}/campaigns/nope/notifications", headers=admin)
        assert r.status_code == 404 and r.json()["detail"] == "campaign not found"
        other = unique("g-notes-other")
        r = client.get(f"/v1/groups/{other}/campaigns/{cid}/notifications", headers=admin)
        assert r.status_code == 404
