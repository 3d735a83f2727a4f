"""Shared blocklists and the membership routes' bad input: real broker, Redis and database.

A listed member is banned where they are (subscribed groups only), banned when they join,
declined when they ask to join; a group's bans are shared into its `share_bans_to` list
and from there reach the other subscribed groups. Only `["*"]` tokens touch the lists.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.common.contracts.events import parse_event
from services.moderation.app import create_app
from tests.conftest import LIMITED_GROUP, auth, produce_events
from tests.moderation.conftest import actions, member_event, roster_knows, wait_until


def join_request(group: str, member: str, answer: str = "", ref: str | None = None):
    return parse_event(
        {
            "id": f"req-{group}-{member}",
            "source": "test",
            "type": "member.join_requested",
            "group_id": group,
            "member_id": member,
            "occurred_at": datetime.now(UTC).isoformat(),
            "data": {"answer": answer, "request_ref": ref or f"{group}:{member}"},
        }
    )


def test_bad_input_is_a_4xx_naming_the_field(settings, run_app, tokens, unique):
    group, name = unique("grp:bad"), unique("spam")
    admin, limited, reader = auth(tokens.admin), auth(tokens.limited), auth(tokens.reader)
    with run_app(create_app(settings)) as client:
        # Blocklists span groups: a token limited to some groups may not touch them.
        assert client.get("/v1/blocklists", headers=limited).status_code == 403
        assert (
            client.post("/v1/blocklists", json={"name": name}, headers=limited).status_code == 403
        )
        assert client.post("/v1/blocklists", json={"name": name}, headers=reader).status_code == 403
        assert client.get("/v1/blocklists").status_code == 401
        assert client.post("/v1/blocklists", json={"name": name}, headers=admin).status_code == 201
        again = client.post("/v1/blocklists", json={"name": name}, headers=admin)
        assert again.status_code == 409 and name in again.json()["detail"]
        unknown = unique("nope")
        for method, url, body in [
            ("GET", f"/v1/blocklists/{unknown}/entries", None),
            ("POST", f"/v1/blocklists/{unknown}/entries", {"member_id": "m"}),
            ("DELETE", f"/v1/blocklists/{unknown}/entries/m", None),
            ("DELETE", f"/v1/blocklists/{name}/entries/never-listed", None),
        ]:
            assert client.request(method, url, json=body, headers=admin).status_code == 404, url
        bad_policy = client.put(
            f"/v1/groups/{group}/policy",
            json={"blocklists": [name, unknown], "share_bans_to": unknown},
            headers=admin,
        )
        assert bad_policy.status_code == 422
        assert [e["loc"] for e in bad_policy.json()["detail"]] == [
            ["body", "blocklists", 1],
            ["body", "share_bans_to"],
        ]
        for body, field in [
            ({"inactive_days": 0}, "inactive_days"),
            ({"inactive_days": 401}, "inactive_days"),
            ({"per_minute": 0}, "per_minute"),
            ({"per_minute": -5}, "per_minute"),
        ]:
            got = client.post(f"/v1/groups/{group}/cleanups", json=body, headers=admin)
            assert got.status_code == 422 and got.json()["detail"][0]["loc"] == ["body", field]
        assert (
            client.get(f"/v1/groups/{group}/cleanups/cleanup_x", headers=admin).status_code == 404
        )
        decide = client.post(f"/v1/groups/{group}/join-requests/join_x/approve", headers=admin)
        assert decide.status_code == 404
        bad_status = client.get(f"/v1/groups/{group}/join-requests?status=maybe", headers=admin)
        assert bad_status.status_code == 422
        other = client.get(f"/v1/groups/{group}/join-requests", headers=limited)
        assert other.status_code == 403
        mine = client.get(f"/v1/groups/{LIMITED_GROUP}/join-requests", headers=limited)
        assert mine.json() == {"join_requests": [], "next_cursor": None}
        verification = {"verification": {"enabled": True, "within_seconds": 5}}
        short = client.put(f"/v1/groups/{group}/policy", json=verification, headers=admin)
        assert short.json()["detail"][0]["loc"] == ["body", "verification", "within_seconds"]


def test_listed_members_are_banned_where_they_are_when_they_join_and_ask(
    settings, run_app, tokens, unique, producer, kafka_bootstrap
):
    name = unique("spam")
    subscribed, other, sharing = unique("grp:sub"), unique("grp:other"), unique("grp:share")
    admin = auth(tokens.admin)
    topic = settings.topic_moderation_actions
    with run_app(create_app(settings)) as client:
        assert client.post("/v1/blocklists", json={"name": name}, headers=admin).is_success
        for group, policy in [
            (subscribed, {"blocklists": [name]}),
            (sharing, {"share_bans_to": name}),
        ]:
            put = client.put(f"/v1/groups/{group}/policy", json=policy, headers=admin)
            assert put.status_code == 200 and put.json() | policy == put.json()
        earlier = datetime.now(UTC) - timedelta(hours=1)
        produce_events(
            producer,
            settings.topic_events,
            [
                member_event("member.joined", g, m, at=earlier)
                for g, m in [(subscribed, "spammer"), (other, "spammer"), (subscribed, "shared")]
            ],
        )

        def entry(member: str, reason: str = "广告号"):
            return client.post(
                f"/v1/blocklists/{name}/entries",
                json={"member_id": member, "reason": reason},
                headers=admin,
            )

        # The roster knows the joins once the consumer read them.
        assert wait_until(lambda: roster_knows(settings, subscribed, "shared"), timeout=30)
        added = entry("spammer")
        assert added.status_code == 201, added.text
        assert added.json()["banned_in"] == [subscribed]
        assert entry("spammer").status_code == 409
        # Listed before they come: a join is banned, a join request declined.
        assert entry("newcomer").json()["banned_in"] == []
        assert entry("asker").status_code == 201
        produce_events(
            producer,
            settings.topic_events,
            [
                member_event("member.joined", subscribed, "newcomer"),
                member_event("member.joined", other, "newcomer"),
                join_request(subscribed, "asker", answer="hi"),
            ],
        )
        # A ban by hand in the sharing group lists the member, and the list bans them in
        # the subscribed group where they are.
        manual = client.post(
            f"/v1/groups/{sharing}/actions",
            json={"member_id": "shared", "action": "ban", "reason": "骗子"},
            headers=admin,
        )
        assert manual.status_code == 201, manual.text
        got = actions(kafka_bootstrap, topic, expect=5, timeout=30, settle=2)
        seen = sorted((a["group_id"], a["member_id"], a["action"]) for a in got)
        assert seen == sorted(
            [
                (subscribed, "spammer", "ban"),
                (subscribed, "newcomer", "ban"),
                (subscribed, "asker", "decline_join"),
                (sharing, "shared", "ban"),
                (subscribed, "shared", "ban"),
            ]
        )
        decline = next(a for a in got if a["action"] == "decline_join")
        assert decline["request_ref"] == f"{subscribed}:asker"
        listed = client.get(f"/v1/blocklists/{name}/entries?limit=2", headers=admin).json()
        assert [e["member_id"] for e in listed["entries"]] == ["asker", "newcomer"]
        rest = client.get(
            f"/v1/blocklists/{name}/entries?cursor={listed['next_cursor']}", headers=admin
        ).json()
        assert [(e["member_id"], e["added_by"]) for e in rest["entries"]] == [
            ("shared", f"share:{sharing}"),
            ("spammer", "admin"),
        ]
        requests = client.get(f"/v1/groups/{subscribed}/join-requests", headers=admin).json()
        [asked] = requests["join_requests"]
        assert (asked["status"], asked["decided_by"]) == ("declined", "blocklist")
        cases = client.get(f"/v1/groups/{subscribed}/cases?member_id=newcomer", headers=admin)
        [case] = cases.json()["cases"]
        assert case["action"] == "ban" and case["rule_ids"] == []
        assert (
            client.delete(f"/v1/blocklists/{name}/entries/asker", headers=admin).status_code == 204
        )
        assert (
            client.get(f"/v1/blocklists/{name}/entries", headers=admin).json()["entries"][0][
                "member_id"
            ]
            == "newcomer"
        )
