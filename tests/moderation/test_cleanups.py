"""A clean-up's preview agrees with metrics' dormant list: one event stream, both services.

Moderation keeps its own roster (services never import each other); for the same group
and day its preview is metrics' `members/dormant?days=N`, less the members who joined on
the last N days and the exempt ones — with the same join and last-message times.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from services.metrics.app import create_app as create_metrics
from services.moderation.app import create_app
from tests.conftest import auth, produce_events
from tests.moderation.conftest import member_event, message, roster_knows, wait_until


def dormant(client: Any, token: str, group: str, days: int) -> dict[str, dict[str, Any]]:
    """Every member of metrics' dormant list by member id (following the cursor); {} if unseen."""
    found: dict[str, dict[str, Any]] = {}
    cursor = ""
    while True:
        url = f"/v1/groups/{group}/members/dormant?days={days}&limit=7{cursor}"
        response = client.get(url, headers=auth(token))
        if response.status_code == 404:  # metrics has not seen the group's first event yet
            return found
        assert response.status_code == 200, response.text
        page = response.json()
        found.update({m["member_id"]: m for m in page["members"]})
        if page["next_cursor"] is None:
            return found
        cursor = f"&cursor={page['next_cursor']}"


def test_the_preview_is_metrics_dormant_list_less_newcomers_and_exempt(
    settings, run_app, tokens, unique, producer
):
    group = unique("grp:lurkers")
    admin = auth(tokens.admin)
    now = datetime.now(UTC).replace(microsecond=0)
    day = timedelta(days=1)
    events = []
    for i in range(12):  # joined 40 days ago; the even ones spoke 35 days ago
        events.append(member_event("member.joined", group, f"lurker-{i:02}", at=now - 40 * day))
        if i % 2 == 0:
            events.append(message(group, f"lurker-{i:02}", "早", at=now - 35 * day))
    events += [
        member_event("member.joined", group, "active", at=now - 40 * day),
        message(group, "active", "hi", at=now - 2 * day),
        member_event("member.joined", group, "newcomer", at=now - 3 * day, display_name="新人"),
        member_event("member.joined", group, "admin", at=now - 40 * day),
        member_event("member.joined", group, "gone", at=now - 40 * day),
        member_event("member.left", group, "gone", at=now - 10 * day),
        message(group, "old-timer", "我一直在", at=now - 50 * day, display_name="老王"),
        member_event("member.joined", group, "back", at=now - 40 * day),
        member_event("member.left", group, "back", at=now - 20 * day),
        member_event("member.joined", group, "back", at=now - 5 * day),
        member_event("member.updated", group, "renamed-only", display_name="路人"),
    ]
    with run_app(create_app(settings)) as moderation, run_app(create_metrics(settings)) as metrics:
        assert moderation.put(
            f"/v1/groups/{group}/policy", json={"exempt_members": ["admin"]}, headers=admin
        ).is_success
        produce_events(producer, settings.topic_events, events)
        assert wait_until(lambda: roster_knows(settings, group, "back"), timeout=40)
        listed = wait_until(
            lambda: len(found := dormant(metrics, tokens.admin, group, 30)) == 16 and found,
            timeout=40,
        )
        assert listed, dormant(metrics, tokens.admin, group, 30)
        body = {"inactive_days": 30, "never_spoke_only": False, "per_minute": 10}
        preview = moderation.post(f"/v1/groups/{group}/cleanups", json=body, headers=admin)
        assert preview.status_code == 201, preview.text
        members = {m["member_id"]: m for m in preview.json()["members"]}
        # Metrics lists the newcomer (joined 3 days ago), the re-joiner (5 days ago) and
        # the exempt admin too; the clean-up spares them.
        assert set(listed) - set(members) == {"newcomer", "back", "admin"}
        assert set(members) <= set(listed) and preview.json()["count"] == len(members) == 13
        for member_id, mine in members.items():
            theirs = listed[member_id]
            for field in ("display_name", "joined_at", "last_active_at"):
                assert _same(mine[field], theirs[field]), (member_id, field, mine, theirs)
        spoke_never = moderation.post(
            f"/v1/groups/{group}/cleanups",
            json={"inactive_days": 30, "never_spoke_only": True},
            headers=admin,
        ).json()
        assert {m["member_id"] for m in spoke_never["members"]} == {
            f"lurker-{i:02}" for i in range(1, 12, 2)
        }
        url = f"/v1/groups/{group}/cleanups/{spoke_never['id']}"
        assert moderation.post(f"{url}/cancel", headers=admin).json()["status"] == "cancelled"
        assert moderation.post(f"{url}/start", headers=admin).status_code == 409
        assert moderation.post(f"{url}/cancel", headers=admin).status_code == 409


def _same(mine: Any, theirs: Any) -> bool:
    if mine is None or theirs is None or not isinstance(mine, str) or "T" not in mine:
        return bool(mine == theirs)
    return datetime.fromisoformat(mine) == datetime.fromisoformat(theirs)


def test_the_groups_cleanups_are_listed_newest_first_without_their_members(
    settings, run_app, tokens, unique
):
    group = unique("grp:cleanup-list")
    admin, reader = auth(tokens.admin), auth(tokens.reader)
    base = f"/v1/groups/{group}/cleanups"
    with run_app(create_app(settings)) as moderation:
        made = []
        for days in (10, 20, 30):  # nobody is in the group: each preview lists no one
            created = moderation.post(base, json={"inactive_days": days}, headers=admin)
            assert created.status_code == 201, created.text
            made.append(created.json()["id"])
        kept, started, cancelled = made
        assert moderation.post(f"{base}/{started}/start", headers=admin).json()["status"] == "done"
        moderation.post(f"{base}/{cancelled}/cancel", headers=admin).raise_for_status()

        listed = moderation.get(base, headers=reader).json()
        assert [c["id"] for c in listed["cleanups"]] == [cancelled, started, kept]
        assert [c["status"] for c in listed["cleanups"]] == ["cancelled", "done", "preview"]
        assert [c["inactive_days"] for c in listed["cleanups"]] == [30, 20, 10]
        assert all("members" not in c for c in listed["cleanups"])
        assert listed["next_cursor"] is None

        first = moderation.get(base, params={"limit": 2}, headers=reader).json()
        assert [c["id"] for c in first["cleanups"]] == [cancelled, started]
        rest = moderation.get(
            base, params={"limit": 2, "cursor": first["next_cursor"]}, headers=reader
        ).json()
        assert rest == {"cleanups": [listed["cleanups"][2]], "next_cursor": None}

        done = moderation.get(base, params={"status": "done"}, headers=reader).json()
        assert [c["id"] for c in done["cleanups"]] == [started]
        running = moderation.get(base, params={"status": "running"}, headers=reader).json()
        assert running == {"cleanups": [], "next_cursor": None}
        bad = moderation.get(base, params={"status": "finished"}, headers=reader)
        assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "status"]
        other = moderation.get(f"/v1/groups/{unique('grp:none')}/cleanups", headers=reader)
        assert other.json() == {"cleanups": [], "next_cursor": None}
