"""Membership end to end with delivery and the platform double (a fake Telegram group):
a join request answered with the keyword is approved there, a blocklisted member who
joins is banned there, and a clean-up of 50 lurkers run by two moderation replicas kicks
exactly the previewed members there — once each, none exempt, at the pace."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
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
from tests.moderation.conftest import actions, member_event, message, roster_knows, wait_until


def telegram(event: Any) -> Any:
    """The event as it comes from the Telegram source `tg` the delivery harness knows."""
    return event.model_copy(update={"source": "tg"})


def test_join_request_approved_and_blocklisted_joiner_banned_at_the_double(
    delivery,  # noqa: F811
    make_settings,
    run_app,
    tokens,
    unique,
    producer,
):
    admin = auth(tokens.admin)
    chat = f"-{chat_number()}"
    group, name = f"telegram:{chat}", unique("spam")
    with delivery() as h:
        fake = h.group("telegram", chat)
        with h.double.state.lock:
            fake.join_requests["77"] = "pending"
            fake.members.add("66")  # the platform let them in; moderation bans them
        settings = make_settings(
            share_with=h.settings, topic_delivery_receipts=h.settings.topic_delivery_receipts
        )
        with run_app(create_app(settings)) as client:
            assert client.post("/v1/blocklists", json={"name": name}, headers=admin).is_success
            listed = {"member_id": "telegram:66", "reason": "广告号"}
            added = client.post(f"/v1/blocklists/{name}/entries", json=listed, headers=admin)
            assert added.status_code == 201
            policy = {
                "join_requests": {"mode": "auto", "answer_keywords": ["运营"]},
                "blocklists": [name],
                "notices": {"ban": "{member} 已被移出（{reason}）"},
            }
            assert client.put(f"/v1/groups/{group}/policy", json=policy, headers=admin).is_success
            request = parse_event(
                {
                    "id": "tg-join-request-77",
                    "source": "tg",
                    "type": "member.join_requested",
                    "group_id": group,
                    "member_id": "telegram:77",
                    "occurred_at": datetime.now(UTC).isoformat(),
                    "data": {"answer": "我做社群運營", "request_ref": f"{chat}:77"},
                }
            )
            joined = telegram(member_event("member.joined", group, "telegram:66"))
            produce_events(producer, settings.topic_events, [request, joined])
            assert wait_until(lambda: fake.join_requests.get("77") == "approved", timeout=40)
            assert wait_until(lambda: "66" in fake.banned, timeout=40)
            assert "66" not in fake.members
    [post] = fake.posts()
    assert "已被移出（blocklist " in post.text and post.mentions == ["66"]


def test_a_cleanup_of_50_lurkers_kicks_exactly_the_preview_once_at_the_pace(
    delivery,  # noqa: F811
    make_settings,
    run_app,
    tokens,
    producer,
    kafka_bootstrap,
):
    admin = auth(tokens.admin)
    chat = f"-{chat_number()}"
    group = f"telegram:{chat}"
    now = datetime.now(UTC).replace(microsecond=0)
    lurkers = [f"telegram:{1000 + i}" for i in range(50)]
    staying = ["telegram:1", "telegram:2", "telegram:3"]  # active, new, exempt
    long_ago = now - timedelta(days=40)
    events = [member_event("member.joined", group, m, at=long_ago) for m in lurkers]
    events += [message(group, m, "早", at=now - timedelta(days=35)) for m in lurkers[::2]]
    events += [
        member_event("member.joined", group, "telegram:1", at=long_ago),
        message(group, "telegram:1", "今天好", at=now - timedelta(days=2)),
        member_event("member.joined", group, "telegram:2", at=now - timedelta(days=3)),
        member_event("member.joined", group, "telegram:3", at=long_ago),
    ]
    with delivery() as h:
        fake = h.group("telegram", chat)
        with h.double.state.lock:
            fake.members.update(m.split(":")[1] for m in lurkers + staying)
        settings = make_settings(
            share_with=h.settings, topic_delivery_receipts=h.settings.topic_delivery_receipts
        )
        # Two replicas: both timer loops see the running clean-up; each member is kicked once.
        with run_app(create_app(settings)) as one, run_app(create_app(settings)) as two:
            policy = {"exempt_members": ["telegram:3"]}
            assert one.put(f"/v1/groups/{group}/policy", json=policy, headers=admin).is_success
            produce_events(producer, settings.topic_events, [telegram(e) for e in events])
            assert wait_until(lambda: roster_knows(settings, group, "telegram:3"), timeout=40)
            body = {"inactive_days": 30, "per_minute": 1200}
            preview = one.post(f"/v1/groups/{group}/cleanups", json=body, headers=admin).json()
            assert preview["status"] == "preview" and preview["count"] == 50
            assert sorted(m["member_id"] for m in preview["members"]) == sorted(lurkers)
            # Never-spoke members first, then the longest silent.
            assert [m["last_active_at"] is None for m in preview["members"]] == [True] * 25 + [
                False
            ] * 25
            url = f"/v1/groups/{group}/cleanups/{preview['id']}"
            started = two.post(f"{url}/start", headers=admin).json()
            assert started["status"] == "running"
            assert one.post(f"{url}/start", headers=admin).status_code == 409
            done = wait_until(
                lambda: (c := one.get(url, headers=admin).json())["status"] == "done" and c,
                timeout=40,
            )
            assert done and (done["kicked"], done["skipped"]) == (50, 0)
            assert wait_until(lambda: fake.members == {"1", "2", "3"}, timeout=40)
            assert one.post(f"{url}/cancel", headers=admin).status_code == 409
    kicks = actions(kafka_bootstrap, settings.topic_moderation_actions, expect=50, settle=2)
    assert sorted(a["member_id"] for a in kicks) == sorted(lurkers)
    assert {(a["action"], a["reason"], a["text"]) for a in kicks} == {("kick", "cleanup", None)}
    # Kick k is not made before k·60/per_minute seconds after the start.
    start = datetime.fromisoformat(started["started_at"])
    times = sorted(datetime.fromisoformat(a["created_at"]) for a in kicks)
    for k, at in enumerate(times):
        assert at >= start + timedelta(seconds=k * 0.05), (k, at - start)
