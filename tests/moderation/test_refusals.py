"""Moderation's membership actions refused at the platform: join decisions the bot lacks
the rights for (Telegram's 400 "not enough rights") and clean-up kicks after the bot was
removed from the group (Telegram's 403) end `forbidden` on their receipts, never retried,
and each decision's case shows that `enforcement` (docs/moderation.md: a case's
enforcement is the receipt of its last action) while the fake group stays as it was."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from services.common.contracts.events import parse_event
from services.moderation.app import create_app
from tests.conftest import auth, produce_events
from tests.delivery.conftest import (  # noqa: F401 - the delivery harness's fixtures
    chat_number,
    clean_double,
    delivery,
    delivery_config,
    double,
)
from tests.moderation.conftest import member_event, roster_knows, wait_until
from tools.platform_double import Fault


def case_enforcement(client: Any, group: str, admin: dict, case_id: str) -> Any:
    """A case's enforcement (`GET …/cases/{case_id}`, as a join request's case is read)."""
    return client.get(f"/v1/groups/{group}/cases/{case_id}", headers=admin).json()["enforcement"]


def kick_enforcement(client: Any, group: str, admin: dict, member: str) -> Any:
    """The enforcement of a member's kick case (`GET …/cases?action=kick&member_id=…`, as a
    clean-up's refused kick is read)."""
    url = f"/v1/groups/{group}/cases?action=kick&member_id={member}"
    cases = client.get(url, headers=admin).json()["cases"]
    return cases[0]["enforcement"] if len(cases) == 1 else None


def join_request(group: str, chat: str, user: str) -> Any:
    return parse_event(
        {
            "id": f"tg-join-request-{chat}-{user}",
            "source": "tg",
            "type": "member.join_requested",
            "group_id": group,
            "member_id": f"telegram:{user}",
            "occurred_at": datetime.now(UTC).isoformat(),
            "data": {"answer": "你好", "request_ref": f"{chat}:{user}"},
        }
    )


def test_join_decisions_without_the_rights_are_forbidden_and_their_cases_say_so(
    delivery,  # noqa: F811
    run_app,
    tokens,
    producer,
):
    admin = auth(tokens.admin)
    chat = f"-{chat_number()}"
    group = f"telegram:{chat}"
    with delivery() as h:
        fake = h.group("telegram", chat)
        with h.double.state.lock:
            fake.join_requests.update({"77": "pending", "78": "pending"})
        for method in ("approveChatJoinRequest", "declineChatJoinRequest"):
            h.double.state.add_fault(
                Fault("telegram", "forbidden", chat=chat, method=method, times=-1)
            )
        settings = h.sharing_settings()
        with run_app(create_app(settings)) as client:
            policy = {"join_requests": {"mode": "manual"}}
            assert client.put(f"/v1/groups/{group}/policy", json=policy, headers=admin).is_success
            requests = [join_request(group, chat, user) for user in ("77", "78")]
            produce_events(producer, settings.topic_events, requests)
            url = f"/v1/groups/{group}/join-requests"

            def pending() -> dict[str, str]:
                listed = client.get(f"{url}?status=pending", headers=admin).json()
                return {r["member_id"]: r["id"] for r in listed["join_requests"]}

            assert wait_until(lambda: len(pending()) == 2, timeout=40)
            ids = pending()
            approved = client.post(f"{url}/{ids['telegram:77']}/approve", headers=admin)
            declined = client.post(f"{url}/{ids['telegram:78']}/decline", headers=admin)
            assert (approved.json()["status"], declined.json()["status"]) == (
                "approved",
                "declined",
            )
            cases = {
                "telegram:77": approved.json()["case_id"],
                "telegram:78": declined.json()["case_id"],
            }
            seen = {
                member: wait_until(
                    partial(case_enforcement, client, group, admin, case), timeout=40
                )
                for member, case in cases.items()
            }
    assert set(seen) == {"telegram:77", "telegram:78"}
    for member, enforcement in seen.items():
        assert enforcement["outcome"] == "forbidden", (member, enforcement)
        assert "not enough rights" in enforcement["detail"]
    receipts = h.receipt_map(2)
    assert {(r["operation"], r["outcome"], r["attempts"]) for r in receipts.values()} == {
        ("approve_join", "forbidden", 1),
        ("decline_join", "forbidden", 1),
    }
    assert fake.join_requests == {"77": "pending", "78": "pending"}  # nothing changed there


def test_cleanup_kicks_without_the_rights_are_forbidden_and_their_cases_say_so(
    delivery,  # noqa: F811
    run_app,
    tokens,
    producer,
):
    admin = auth(tokens.admin)
    chat = f"-{chat_number()}"
    group = f"telegram:{chat}"
    lurkers = ["telegram:1001", "telegram:1002"]
    long_ago = datetime.now(UTC) - timedelta(days=40)
    events = [member_event("member.joined", group, m, at=long_ago) for m in lurkers]
    with delivery() as h:
        fake = h.group("telegram", chat)
        with h.double.state.lock:
            fake.members.update(m.split(":")[1] for m in lurkers)
        # Telegram kicks with banChatMember (then unbanChatMember); the bot was removed from
        # the group meanwhile: Telegram answers 403.
        h.double.state.add_fault(
            Fault("telegram", "forbidden", chat=chat, method="banChatMember", times=-1, status=403)
        )
        settings = h.sharing_settings()
        with run_app(create_app(settings)) as client:
            produce_events(
                producer,
                settings.topic_events,
                [e.model_copy(update={"source": "tg"}) for e in events],
            )
            assert wait_until(lambda: roster_knows(settings, group, lurkers[-1]), timeout=40)
            body = {"inactive_days": 30, "per_minute": 1200}
            preview = client.post(f"/v1/groups/{group}/cleanups", json=body, headers=admin).json()
            assert preview["count"] == 2
            url = f"/v1/groups/{group}/cleanups/{preview['id']}"
            assert client.post(f"{url}/start", headers=admin).json()["status"] == "running"
            assert wait_until(
                lambda: client.get(url, headers=admin).json()["status"] == "done", timeout=40
            )
            kicks = {
                member: wait_until(
                    partial(kick_enforcement, client, group, admin, member), timeout=40
                )
                for member in lurkers
            }
    assert set(kicks) == set(lurkers)
    assert {e["outcome"] for e in kicks.values()} == {"forbidden"}
    assert all("bot was kicked from the group chat" in e["detail"] for e in kicks.values())
    receipts = h.receipt_map(2)
    assert {(r["operation"], r["outcome"]) for r in receipts.values()} == {("kick", "forbidden")}
    assert fake.members == {"1001", "1002"} and fake.removed == []  # still in the group
    assert len(h.double.state.calls_of("telegram", "banChatMember", chat)) == 2  # never retried
