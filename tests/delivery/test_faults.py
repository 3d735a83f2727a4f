"""Replays, missing routes, rate limits, server errors, refusals, pacing and order."""

from __future__ import annotations

from tests.delivery.conftest import action, chat_number, notification
from tests.support import wait_until
from tools.platform_double import Fault


def gaps(calls) -> list[float]:
    return [b.at - a.at for a, b in zip(calls, calls[1:], strict=False)]


def test_a_replayed_record_is_not_carried_out_twice(delivery):
    with delivery() as h:
        n = chat_number()
        group_id = f"telegram:-{n}"
        records = [
            action("ban", group_id, source="tg", member_id="telegram:5"),
            action("warn", group_id, source="tg", member_id="telegram:5", text="警告"),
        ]
        h.actions(*records)
        assert len(h.receipts(2)) == 2
        calls = len(h.double.state.calls_of("telegram", chat=f"-{n}"))
        h.actions(*records)
        assert len(h.receipts(3, timeout=3)) == 2
        assert len(h.double.state.calls_of("telegram", chat=f"-{n}")) == calls


def test_no_route_says_what_is_missing(delivery):
    with delivery() as h:
        group_id = f"telegram:-{chat_number()}"
        unknown = action("ban", group_id, source="nope", member_id="telegram:5")
        nameless = action("ban", group_id, source=None, member_id="telegram:5")
        bare = notification(group_id, "hi", source="tg-bare")
        h.actions(unknown, nameless)
        h.notifications(bare)
        receipts = h.receipt_map(3)
        assert {r["outcome"] for r in receipts.values()} == {"no_route"}
        assert "unknown source 'nope'" in receipts[unknown["id"]]["detail"]
        assert "names no source" in receipts[nameless["id"]]["detail"]
        assert "missing bot_token" in receipts[bare["id"]]["detail"]
        assert h.double.state.calls == []


def test_rate_limit_hints_are_honoured(delivery):
    with delivery() as h:
        chat = f"-{chat_number()}"
        h.double.state.add_fault(
            Fault(
                "telegram", "rate_limit", chat=chat, method="banChatMember", retry_after=1, times=2
            )
        )
        record = action("ban", f"telegram:{chat}", source="tg", member_id="telegram:9")
        h.actions(record)
        [receipt] = h.receipts(1)
        assert (receipt["outcome"], receipt["attempts"]) == ("delivered", 3)
        calls = h.double.state.calls_of("telegram", "banChatMember", chat)
        assert len(calls) == 3
        assert all(gap >= 0.95 for gap in gaps(calls)), gaps(calls)


def test_server_errors_are_retried_and_the_post_made_once(delivery):
    with delivery() as h:
        chat = f"C{chat_number()}"
        h.double.state.add_fault(Fault("slack", "error", chat=chat, status=502, times=2))
        h.notifications(notification(f"slack:T01:{chat}", "lecture at 8", source="sl"))
        [receipt] = h.receipts(1)
        assert (receipt["outcome"], receipt["attempts"]) == ("delivered", 3)
        assert [p.text for p in h.group("slack", chat).posts()] == ["lecture at 8"]


def test_forbidden_is_final(delivery):
    with delivery() as h:
        n = chat_number()
        h.double.state.add_fault(Fault("onebot", "error", chat=str(n), status=403, times=-1))
        h.actions(action("kick", f"qq:{n}", source="qq", member_id="qq:10001"))
        [receipt] = h.receipts(1)
        assert (receipt["outcome"], receipt["attempts"]) == ("forbidden", 1)
        assert len(h.receipts(2, timeout=2)) == 1
        assert len(h.double.state.calls_of("onebot", chat=str(n))) == 1


def test_a_slow_group_holds_no_other_group_and_keeps_its_order(delivery):
    """tg-slow posts once per 2 s per group: group A's three posts take ≥ 4 s, B's goes at once."""
    with delivery() as h:
        a, b = f"-{chat_number()}", f"-{chat_number()}"
        h.notifications(
            *[notification(f"telegram:{a}", f"a{i}", source="tg-slow") for i in range(3)]
        )
        h.notifications(notification(f"telegram:{b}", "b0", source="tg-slow"))
        assert wait_until(lambda: h.group("telegram", b).posts(), timeout=10)
        assert len(h.group("telegram", a).posts()) < 3
        assert len(h.receipts(4, timeout=20)) == 4
        posts = h.group("telegram", a).posts()
        assert [p.text for p in posts] == ["a0", "a1", "a2"]
        calls = h.double.state.calls_of("telegram", "sendMessage", a)
        assert all(gap >= 1.9 for gap in gaps(calls)), gaps(calls)


def test_order_within_a_group_survives_a_retry(delivery):
    with delivery() as h:
        chat = f"oc_{chat_number()}"
        h.double.state.add_fault(Fault("feishu", "error", chat=chat, status=500, times=1))
        texts = [f"m{i}" for i in range(5)]
        h.notifications(*[notification(f"feishu:{chat}", t, source="fs") for t in texts])
        assert len(h.receipts(5)) == 5
        assert [p.text for p in h.group("feishu", chat).posts()] == texts
