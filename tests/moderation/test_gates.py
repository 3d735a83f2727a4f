"""Join requests and newcomer verification: real broker, Redis and database.

Verification deadlines are made short by dating the joins back (`occurred_at`): the
window counts from the join, and the timer loop reads due work from the database.
"""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from services.common.contracts.events import parse_event
from services.moderation.app import create_app
from tests.conftest import auth, produce_events
from tests.moderation.conftest import actions, member_event, message, roster_knows, wait_until

WITHIN = 20


def join_request(group: str, member: str, answer: str):
    return parse_event(
        {
            "id": f"req-{member}",
            "source": "test",
            "type": "member.join_requested",
            "group_id": group,
            "member_id": member,
            "occurred_at": datetime.now(UTC).isoformat(),
            "data": {"answer": answer, "request_ref": f"ref-{member}", "display_name": member},
        }
    )


def requests_of(client: Any, token: str, group: str, status: str = "") -> list[dict[str, Any]]:
    query = f"?status={status}" if status else ""
    url = f"/v1/groups/{group}/join-requests{query}"
    return client.get(url, headers=auth(token)).json()["join_requests"]  # type: ignore[no-any-return]


def test_join_requests_auto_by_folded_keyword_and_manual_decided_once(
    make_settings, run_app, tokens, unique, producer, kafka_bootstrap
):
    auto_group, manual_group = unique("grp:auto"), unique("grp:manual")
    settings = make_settings()
    admin = auth(tokens.admin)
    auto = {"join_requests": {"mode": "auto", "answer_keywords": ["暗号", "qunyun"]}}
    # Two replicas on one database: the same request decided by both at once.
    with run_app(create_app(settings)) as one, run_app(create_app(settings)) as two:
        assert one.put(f"/v1/groups/{auto_group}/policy", json=auto, headers=admin).is_success
        produce_events(
            producer,
            settings.topic_events,
            [
                join_request(auto_group, "traditional", "我知道暗號"),  # 號 folds to 号
                join_request(auto_group, "spaced", "Q u n Y u n !"),
                join_request(auto_group, "wrong", "hello"),
                join_request(manual_group, "waiting", "let me in"),
            ],
        )
        assert wait_until(lambda: requests_of(one, tokens.admin, manual_group, "pending"))
        assert wait_until(lambda: len(requests_of(one, tokens.admin, auto_group)) == 3)
        decided = {r["member_id"]: r for r in requests_of(one, tokens.admin, auto_group)}
        assert {m: r["status"] for m, r in decided.items()} == {
            "traditional": "approved",
            "spaced": "approved",
            "wrong": "declined",
        }
        assert {r["decided_by"] for r in decided.values()} == {"auto"}
        [pending] = requests_of(one, tokens.admin, manual_group, "pending")
        assert pending["answer"] == "let me in" and pending["case_id"] is None

        url = f"/v1/groups/{manual_group}/join-requests/{pending['id']}"
        answers: list[Any] = []
        barrier = threading.Barrier(2)

        def decide(client: Any, verb: str) -> None:
            barrier.wait()
            answers.append(client.post(f"{url}/{verb}", headers=admin))

        threads = [
            threading.Thread(target=decide, args=(one, "approve")),
            threading.Thread(target=decide, args=(two, "decline")),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(a.status_code for a in answers) == [200, 409]
        won = next(a for a in answers if a.status_code == 200).json()
        assert won["decided_by"] == "admin" and won["case_id"]
        assert one.post(f"{url}/approve", headers=admin).status_code == 409

        got = actions(kafka_bootstrap, settings.topic_moderation_actions, expect=4, settle=2)
        by_member = {a["member_id"]: a for a in got}
        assert len(got) == 4
        assert by_member["traditional"]["action"] == "approve_join"
        assert by_member["traditional"]["request_ref"] == "ref-traditional"
        assert by_member["wrong"]["action"] == "decline_join"
        assert (
            by_member["waiting"]["action"]
            == {
                "approved": "approve_join",
                "declined": "decline_join",
            }[won["status"]]
        )
        assert by_member["waiting"]["case_id"] == won["case_id"]


def code_of(action: dict[str, Any]) -> str:
    found = re.search(r"\b(\d{4})\b", action["text"] or "")
    assert found, action
    return found.group(1)


def test_verification_right_wrong_late_code_leaving_and_a_restart_before_the_deadline(
    settings, run_app, tokens, unique, producer, kafka_bootstrap
):
    group = unique("grp:verify")
    admin = auth(tokens.admin)
    topic = settings.topic_moderation_actions
    policy = {
        "verification": {"enabled": True, "within_seconds": WITHIN, "on_fail": "kick"},
        "notices": {"verify": "{member} 请在 {duration} 内发送 {code}"},
        "exempt_members": ["admin"],
    }
    with run_app(create_app(settings)) as client:
        assert client.put(f"/v1/groups/{group}/policy", json=policy, headers=admin).is_success
        # The consumer is reading once the exempt admin's join (no verification) is in.
        admin_joins = [member_event("member.joined", group, "admin")]
        produce_events(producer, settings.topic_events, admin_joins)
        assert wait_until(lambda: roster_knows(settings, group, "admin"), timeout=30)
        now = datetime.now(UTC)
        joined = now - timedelta(seconds=WITHIN - 10)
        deadline = joined + timedelta(seconds=WITHIN)
        late = now - timedelta(seconds=WITHIN + 1)  # deadline passed already
        produce_events(
            producer,
            settings.topic_events,
            [
                member_event("member.joined", group, "right", at=joined, display_name="小红"),
                member_event("member.joined", group, "wrong", at=joined),
                member_event("member.joined", group, "late", at=late),
                member_event("member.joined", group, "leaver", at=joined),
            ],
        )

        def all_muted() -> dict[str, dict[str, Any]] | None:
            got = actions(kafka_bootstrap, topic, expect=4, timeout=5)
            found = {a["member_id"]: a for a in got if a["action"] == "mute"}
            return found if set(found) == {"right", "wrong", "late", "leaver"} else None

        mutes = wait_until(all_muted, timeout=30)
        assert mutes
        assert mutes["right"]["text"].startswith("@小红 请在 20 秒 内发送 ")
        assert mutes["right"]["mentions"] == ["right"]
        codes = {m: code_of(a) for m, a in mutes.items()}
        wrong_code = f"{(int(codes['wrong']) + 1) % 10000:04d}"
        produce_events(
            producer,
            settings.topic_events,
            [
                # Full-width digits count: NFKC reads them as the code.
                message(group, "right", "验证码 " + codes["right"].translate(FULL_WIDTH)),
                message(group, "wrong", f"验证码 {wrong_code}"),
                message(group, "late", codes["late"]),
                member_event("member.left", group, "leaver"),
            ],
        )
        assert wait_until(lambda: not roster_knows(settings, group, "leaver"), timeout=20)
    # The process stops before the deadline; another finds it in the database.
    assert datetime.now(UTC) < deadline
    with run_app(create_app(settings)) as client:
        got = actions(kafka_bootstrap, topic, expect=7, timeout=30, settle=2)
        cases = client.get(f"/v1/groups/{group}/cases?member_id=wrong", headers=admin).json()
    after = sorted((a["member_id"], a["action"]) for a in got if a["action"] != "mute")
    assert after == [("late", "kick"), ("right", "unmute"), ("wrong", "kick")]
    assert [c["action"] for c in cases["cases"]] == ["kick", "mute"]


FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
