"""A campaign's posts refused at the platform: the receipt is `forbidden` (never retried),
the campaign's notifications list shows that `delivery`, and nothing reaches the group —
on Telegram after the bot was removed from the group (403), on QQ without the rights
(go-cqhttp's retcode 100 `机器人权限不足`)."""

from __future__ import annotations

from typing import Any

import pytest

from services.campaigns.app import create_app
from tests.campaigns.helpers import announced_lecture, read_group
from tests.conftest import auth
from tests.delivery.conftest import (  # noqa: F401 - the delivery harness's fixtures
    chat_number,
    clean_double,
    delivery,
    delivery_config,
    double,
)
from tools.platform_double import Fault

# platform at the double → (source, group id prefix, chat prefix, member, the post's method,
# the fault's other fields, what the receipt's detail quotes)
CASES: dict[str, tuple[str, str, str, str, str, dict[str, Any], str]] = {
    "telegram": ("tg", "telegram:-", "-", "telegram:42", "sendMessage", {"status": 403},
                 "bot was kicked from the group chat"),
    "onebot": ("qq", "qq:", "", "qq:10001", "send_group_msg", {}, "机器人权限不足"),
}  # fmt: skip


@pytest.mark.parametrize("platform", sorted(CASES))
def test_refused_posts_are_forbidden_and_the_notifications_say_so(
    delivery,  # noqa: F811
    engine,
    run_app,
    tokens,
    producer,
    platform,
):
    source, group_prefix, chat_prefix, member, method, fault, words = CASES[platform]
    admin = auth(tokens.admin)
    n = chat_number()
    group, chat = f"{group_prefix}{n}", f"{chat_prefix}{n}"
    with delivery() as h:
        h.double.state.add_fault(
            Fault(platform, "forbidden", chat=chat, method=method, times=-1, **fault)
        )
        settings = h.sharing_settings()
        with run_app(create_app(settings)) as client:
            notes = announced_lecture(
                client, engine=engine, producer=producer, settings=settings, group=group,
                member=member, source=source, headers=admin,
            )  # fmt: skip
    assert [n["kind"] for n in notes] == ["announce", "started", "ended"]
    for note in notes:
        assert note["delivery"]["outcome"] == "forbidden", note
        assert words in note["delivery"]["detail"]
    # This group's receipts only: the test's campaigns scheduler works over the shared
    # database, so other tests' due campaigns may post on this test's topics too (their
    # groups have no source here: `no_route`).
    receipts = read_group(
        h.settings.kafka_bootstrap_servers, h.settings.topic_delivery_receipts, group,
        expect=3, settle=1.0,
    )  # fmt: skip
    assert sorted(r["ref_id"] for r in receipts) == sorted(n["id"] for n in notes)
    assert {(r["operation"], r["outcome"], r["attempts"]) for r in receipts} == {
        ("post", "forbidden", 1)
    }
    assert h.group(platform, chat).posts() == []
    assert len(h.double.state.calls_of(platform, method, chat)) == 3  # one each, never retried
