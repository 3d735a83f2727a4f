"""End to end with the delivery service and the platform double: a campaign's posts reach
the fake Telegram group through the source of the group's events, and the campaign's
notifications list shows them `delivered` (from delivery.receipts.v1)."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session

from services.campaigns.app import create_app
from services.campaigns.directory import source_of
from tests.campaigns.helpers import campaign_body, joined, now, wait_until
from tests.conftest import auth, produce_events
from tests.delivery.conftest import (  # noqa: F401 - the delivery harness's fixtures
    chat_number,
    clean_double,
    delivery,
    delivery_config,
    double,
)


def test_announcement_is_posted_at_the_double_and_listed_delivered(
    delivery,  # noqa: F811
    engine,
    run_app,
    tokens,
    producer,
):
    admin = auth(tokens.admin)
    chat = f"-{chat_number()}"
    group = f"telegram:{chat}"
    with delivery() as h:
        settings = h.sharing_settings()
        with run_app(create_app(settings)) as client:
            first = joined(group, "telegram:42", now() - timedelta(minutes=1), source="tg")
            produce_events(producer, settings.topic_events, [first])
            # The announcement goes out at once: wait for the source to be known first.

            def source() -> str | None:
                with Session(engine) as session:
                    return source_of(session=session, group_id=group)

            assert wait_until(lambda: source() == "tg")
            body = campaign_body(
                "event", start_in=2, end_in=3, announce_at=now().isoformat(), title="周五讲座"
            )
            r = client.post(f"/v1/groups/{group}/campaigns", json=body, headers=admin)
            assert r.status_code == 201, r.text
            base = f"/v1/groups/{group}/campaigns/{r.json()['id']}"

            def listed() -> list[dict]:
                return client.get(f"{base}/notifications", headers=admin).json()["notifications"]

            assert wait_until(
                lambda: len(listed()) == 3 and all(n["delivery"] for n in listed()), timeout=40
            )
            notes = listed()
    assert [n["kind"] for n in notes] == ["announce", "started", "ended"]
    assert {n["source"] for n in notes} == {"tg"}
    assert {n["delivery"]["outcome"] for n in notes} == {"delivered"}
    posts = [p.text for p in h.group("telegram", chat).posts()]
    assert posts == [n["text"] for n in notes]
    assert "周五讲座" in posts[0]
