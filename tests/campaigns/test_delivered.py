"""End to end with the delivery service and the platform double: a campaign's posts reach
the fake Telegram group through the source of the group's events, and the campaign's
notifications list shows them `delivered` (from delivery.receipts.v1)."""

from __future__ import annotations

from services.campaigns.app import create_app
from tests.campaigns.helpers import announced_lecture
from tests.conftest import auth
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
            notes = announced_lecture(
                client, engine=engine, producer=producer, settings=settings, group=group,
                member="telegram:42", source="tg", headers=admin,
            )  # fmt: skip
    assert [n["kind"] for n in notes] == ["announce", "started", "ended"]
    assert {n["source"] for n in notes} == {"tg"}
    assert {n["delivery"]["outcome"] for n in notes} == {"delivered"}
    posts = [p.text for p in h.group("telegram", chat).posts()]
    assert posts == [n["text"] for n in notes]
    assert "周五讲座" in posts[0]
