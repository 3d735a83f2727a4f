"""What an action means, seen at the platform double (Telegram) through delivery: a rule
deletes the message it judged as well as acting on the member (unless `delete_message:
false`), one flood is one mute with the extra messages on its case, and member reports
(举报) delete the reported message once enough distinct members reported it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from services.moderation.app import create_app
from tests.conftest import auth, produce_events
from tests.delivery.conftest import (  # noqa: F401 - the delivery harness's fixtures
    Harness,
    chat_number,
    clean_double,
    delivery,
    delivery_config,
    double,
)
from tests.moderation.conftest import add_rule, message, wait_until


@contextmanager
def moderation_with_delivery(delivery, make_settings, run_app) -> Iterator[tuple[Any, Harness]]:  # noqa: F811
    """Moderation and delivery on shared topics, delivery acting at the double."""
    with delivery() as h:
        settings = make_settings(
            share_with=h.settings, topic_delivery_receipts=h.settings.topic_delivery_receipts
        )
        with run_app(create_app(settings)) as client:
            client.settings = settings
            yield client, h


def telegram_message(chat: str, user: int, text: str, message_id: str, **data: Any):
    """A Telegram message event through source `tg` (the double's credentials)."""
    event = message(f"telegram:{chat}", f"telegram:{user}", text, message_id=message_id, **data)
    return event.model_copy(update={"source": "tg"})


def cases_of(client, token, group, **query) -> list[dict]:
    found = client.get(f"/v1/groups/{group}/cases", headers=auth(token), params=query)
    assert found.status_code == 200, found.text
    return found.json()["cases"]  # type: ignore[no-any-return]


def test_rules_delete_what_they_judge_and_one_flood_is_one_mute(
    delivery,  # noqa: F811
    make_settings,
    run_app,
    tokens,
    producer,
):
    h_admin = auth(tokens.admin)
    warned, kept, flooded = (str(-chat_number()) for _ in range(3))
    groups = {chat: f"telegram:{chat}" for chat in (warned, kept, flooded)}
    with moderation_with_delivery(delivery, make_settings, run_app) as (client, h):
        for chat, delete in ((warned, True), (kept, False)):
            add_rule(client, tokens.admin, groups[chat], name="广告", kind="keywords",
                     params={"keywords": ["加微信"]}, action="warn",
                     delete_message=delete)  # fmt: skip
            policy = {"notices": {"warn": "{member} 违反群规：{reason}（第 {strikes} 次）"}}
            put = client.put(f"/v1/groups/{groups[chat]}/policy", headers=h_admin, json=policy)
            assert put.status_code == 200, put.text
        flood = add_rule(client, tokens.admin, groups[flooded], name="刷屏", kind="flood",
                         params={"max_messages": 5, "seconds": 10}, action="mute",
                         mute_seconds=600)  # fmt: skip
        policy = {"notices": {"mute": "{member} 因 {reason} 被禁言 {duration}"}}
        put = client.put(f"/v1/groups/{groups[flooded]}/policy", headers=h_admin, json=policy)
        assert put.status_code == 200, put.text
        state = h.double.state
        for chat in (warned, kept):
            state.seed_message("telegram", chat, "42", "加微信", id="11")
        for n in range(1, 9):
            state.seed_message("telegram", flooded, "43", f"第{n}条", id=str(30 + n))
        start = datetime.now(UTC) - timedelta(seconds=10)
        events = [
            telegram_message(warned, 42, "加微信", "11", display_name="小明", at=start),
            telegram_message(kept, 42, "加微信", "11", display_name="小明", at=start),
            *[
                telegram_message(
                    flooded,
                    43,
                    f"第{n}条",
                    str(30 + n),
                    display_name="阿刷",
                    at=start + timedelta(seconds=n * 0.5),
                )  # fmt: skip
                for n in range(1, 9)
            ],
        ]
        produce_events(producer, client.settings.topic_events, events)

        def settled() -> dict[str, dict] | None:
            found = {c: cases_of(client, tokens.admin, g) for c, g in groups.items()}
            done = all(cs and cs[0]["enforcement"] for cs in found.values())
            gone = [m.id for m in h.group("telegram", flooded).messages.values() if m.deleted]
            return {c: cs[0] for c, cs in found.items()} if done and len(gone) == 3 else None

        cases = wait_until(settled, timeout=60)
        assert cases, {g: cases_of(client, tokens.admin, g) for g in groups.values()}
        flood_cases = cases_of(client, tokens.admin, groups[flooded])

    # The ad is deleted AND the member warned (the notice replies to the deleted message).
    fake = h.group("telegram", warned)
    assert fake.messages["11"].deleted
    [notice] = fake.posts()
    assert notice.text == "@小明 违反群规：广告（第 1 次）" and notice.reply_to == "11"
    # delete_message: false keeps it; the warning is still posted.
    fake = h.group("telegram", kept)
    assert not fake.messages["11"].deleted and len(fake.posts()) == 1
    # One flood, one mute: messages 6, 7 and 8 exceeded the rule, one case, one mute call.
    fake = h.group("telegram", flooded)
    assert sorted(m.id for m in fake.messages.values() if m.deleted) == ["36", "37", "38"]
    mutes = state.calls_of("telegram", "restrictChatMember", chat=flooded)
    assert len(mutes) == 1 and fake.muted("43")
    assert [p.text for p in fake.posts()] == ["@阿刷 因 刷屏 被禁言 10 分钟"]
    [case] = flood_cases
    assert case["action"] == "mute" and case["message_id"] == "36"
    assert case["burst_message_ids"] == ["37", "38"]
    assert case["rule_ids"] == [flood["id"]] and case["rule_names"] == ["刷屏"]
    assert case["enforcement"]["outcome"] == "delivered"


def test_three_reports_delete_the_message_and_a_repeated_report_counts_once(
    delivery,  # noqa: F811
    make_settings,
    run_app,
    tokens,
    producer,
):
    h_admin = auth(tokens.admin)
    chat = str(-chat_number())
    group = f"telegram:{chat}"
    with moderation_with_delivery(delivery, make_settings, run_app) as (client, h):
        policy = {
            "exempt_members": ["telegram:99"],
            "reports": {"keywords": ["举报", "/report"], "threshold": 3, "action": "delete"},
        }
        put = client.put(f"/v1/groups/{group}/policy", headers=h_admin, json=policy)
        assert put.status_code == 200 and put.json()["reports"]["threshold"] == 3
        state = h.double.state
        state.seed_message("telegram", chat, "50", "加我微信", id="41")
        state.seed_message("telegram", chat, "99", "管理员公告", id="42")
        at = datetime.now(UTC) - timedelta(seconds=30)
        ad = telegram_message(chat, 50, "加我微信", "41", at=at)
        admin_post = telegram_message(chat, 99, "管理员公告", "42", at=at)

        def report(user: int, message_id: str, target: str, text: str = "举报 广告"):
            return telegram_message(chat, user, text, message_id, reply_to=target,
                                    at=at + timedelta(seconds=int(message_id) - 40))  # fmt: skip

        first = report(61, "51", "41")
        produce_events(
            producer,
            client.settings.topic_events,
            [
                ad,
                admin_post,
                first,
                first,  # redelivered
                report(61, "52", "41", "/report 又是他"),  # the same member again
                report(50, "53", "41"),  # reporting oneself
                report(62, "54", "42"),  # an exempt member's message
                report(63, "55", "41", "谢谢分享"),  # a reply, not a report
                report(62, "56", "41"),
            ],
        )

        def listed(status: str) -> list[dict]:
            got = client.get(f"/v1/groups/{group}/reports", headers=h_admin,
                             params={"status": status})  # fmt: skip
            assert got.status_code == 200, got.text
            return got.json()["reports"]  # type: ignore[no-any-return]

        opened = wait_until(lambda: [r for r in listed("open") if len(r["reporters"]) >= 2])
        assert opened, listed("open")
        assert [(r["message_id"], r["member_id"], r["reporters"]) for r in opened] == [
            ("41", "telegram:50", ["telegram:61", "telegram:62"])
        ]
        assert opened[0]["case_id"] is None and listed("actioned") == []
        assert not h.group("telegram", chat).messages["41"].deleted

        produce_events(producer, client.settings.topic_events, [report(64, "57", "41")])

        def deleted() -> list[dict] | None:
            cases = cases_of(client, tokens.admin, group)
            done = cases and cases[0]["enforcement"]
            return cases if done and h.group("telegram", chat).messages["41"].deleted else None

        cases = wait_until(deleted, timeout=40)
        assert cases, cases_of(client, tokens.admin, group)
        [actioned] = listed("actioned")
        assert listed("open") == []

    reporters = ["telegram:61", "telegram:62", "telegram:64"]
    [case] = cases
    assert (case["member_id"], case["action"], case["message_id"]) == (
        "telegram:50",
        "delete",
        "41",
    )
    assert case["reporters"] == reporters and case["rule_ids"] == []
    assert case["enforcement"]["outcome"] == "delivered"
    assert actioned["reporters"] == reporters and actioned["case_id"] == case["id"]
    fake = h.group("telegram", chat)
    assert not fake.messages["42"].deleted
    assert len(state.calls_of("telegram", "deleteMessage", chat=chat)) == 1
