"""The moderation REST API: rules CRUD, policy, rules/test without side effects, auth."""

from __future__ import annotations

import base64

from services.moderation.app import create_app
from services.moderation.examples import (
    CREATE_EXAMPLES,
    POLICY_EXAMPLES,
    SAMPLE_EXAMPLES,
    UPDATE_EXAMPLES,
)
from services.moderation.params import PARAMS, validate_params
from tests.conftest import LIMITED_GROUP, auth, read_topic
from tests.moderation.conftest import add_rule, qr_png, wait_until


def test_rules_crud_with_validation_and_404(settings, run_app, tokens, unique):
    group = unique("grp:crud")
    with run_app(create_app(settings)) as client:
        h = auth(tokens.admin)
        created = add_rule(
            client,
            tokens.admin,
            group,
            name="ads",
            kind="keywords",
            params={"keywords": ["加微信"]},
            action="warn",
        )
        assert set(created) >= {
            "id",
            "name",
            "kind",
            "params",
            "action",
            "mute_seconds",
            "mode",
            "enabled",
            "created_at",
            "updated_at",
        }
        assert created["params"] == {"keywords": ["加微信"], "allow": [], "match": "substring"}
        assert created["mode"] == "enforce" and created["enabled"] is True
        muting = add_rule(
            client,
            tokens.admin,
            group,
            name="flood",
            kind="flood",
            params={"max_messages": 5, "seconds": 10},
            action="mute",
        )
        assert muting["mute_seconds"] == 600

        bad = client.post(
            f"/v1/groups/{group}/rules",
            headers=h,
            json={"name": "bad", "kind": "regex", "params": {"pattern": "(oops"}, "action": "flag"},
        )
        assert bad.status_code == 422
        assert bad.json()["detail"][0]["loc"] == ["body", "params", "pattern"]
        too_long = client.post(
            f"/v1/groups/{group}/rules",
            headers=h,
            json={
                "name": "bad",
                "kind": "regex",
                "params": {"pattern": "a" * 600},
                "action": "flag",
            },
        )
        assert too_long.status_code == 422
        unknown_kind = client.post(
            f"/v1/groups/{group}/rules",
            headers=h,
            json={"name": "x", "kind": "telepathy", "params": {}, "action": "flag"},
        )
        assert unknown_kind.status_code == 422
        assert unknown_kind.json()["detail"][0]["loc"] == ["body", "kind"]

        rid = created["id"]
        patched = client.patch(
            f"/v1/groups/{group}/rules/{rid}",
            headers=h,
            json={"mode": "shadow", "params": {"keywords": ["代购"]}},
        )
        assert patched.status_code == 200, patched.text
        assert patched.json()["mode"] == "shadow"
        assert patched.json()["params"]["keywords"] == ["代购"]
        wrong = client.patch(f"/v1/groups/{group}/rules/{rid}", headers=h, json={"kind": "regex"})
        assert wrong.status_code == 422
        assert wrong.json()["detail"][0]["loc"][:2] == ["body", "params"]

        page1 = client.get(f"/v1/groups/{group}/rules?limit=1", headers=h).json()
        assert [r["id"] for r in page1["rules"]] == [rid]
        page2 = client.get(
            f"/v1/groups/{group}/rules?limit=1&cursor={page1['next_cursor']}", headers=h
        ).json()
        assert [r["id"] for r in page2["rules"]] == [muting["id"]]
        assert page2["next_cursor"] is None

        assert client.get(f"/v1/groups/other/rules/{rid}", headers=h).status_code == 404
        assert client.delete(f"/v1/groups/{group}/rules/{rid}", headers=h).status_code == 204
        assert client.get(f"/v1/groups/{group}/rules/{rid}", headers=h).status_code == 404
        assert client.delete(f"/v1/groups/{group}/rules/{rid}", headers=h).status_code == 404
        assert client.get(f"/v1/groups/{group}/cases/nope", headers=h).status_code == 404
        assert client.post(f"/v1/groups/{group}/cases/nope/reverse", headers=h).status_code == 404


def test_policy_defaults_validation_and_replacement(settings, run_app, tokens, unique):
    group = unique("grp:policy")
    with run_app(create_app(settings)) as client:
        h = auth(tokens.admin)
        default = client.get(f"/v1/groups/{group}/policy", headers=h).json()
        assert default == {
            "group_id": group,
            "strike_window_days": 30,
            "ladder": [],
            "exempt_members": [],
            "notices": dict.fromkeys(["warn", "mute", "kick", "ban", "verify"]),
            "reports": None,
            "join_requests": None,
            "verification": None,
            "blocklists": [],
            "share_bans_to": None,
        }
        policy = {
            "strike_window_days": 7,
            "exempt_members": ["admin"],
            "ladder": [
                {"strikes": 3, "action": "kick"},
                {"strikes": 2, "action": "mute", "mute_seconds": 600},
            ],
        }
        put = client.put(f"/v1/groups/{group}/policy", headers=h, json=policy)
        assert put.status_code == 200, put.text
        assert [s["strikes"] for s in put.json()["ladder"]] == [2, 3]
        assert client.get(f"/v1/groups/{group}/policy", headers=h).json() == put.json()
        bad = client.put(
            f"/v1/groups/{group}/policy",
            headers=h,
            json={"ladder": [{"strikes": 0, "action": "mute"}]},
        )
        assert bad.status_code == 422
        assert bad.json()["detail"][0]["loc"][:3] == ["body", "ladder", 0]


def test_tokens_are_checked_per_group_and_scope(settings, run_app, tokens, unique):
    group = unique("grp:auth")
    with run_app(create_app(settings)) as client:
        assert client.get(f"/v1/groups/{group}/rules").status_code == 401
        assert client.get(f"/v1/groups/{group}/rules", headers=auth("nope")).status_code == 401
        assert (
            client.get(f"/v1/groups/{group}/rules", headers=auth(tokens.reader)).status_code == 200
        )
        rule = {"name": "x", "kind": "qr_code", "params": {}, "action": "delete"}
        denied = client.post(f"/v1/groups/{group}/rules", json=rule, headers=auth(tokens.reader))
        assert denied.status_code == 403
        other = client.get(f"/v1/groups/{group}/cases", headers=auth(tokens.limited))
        assert other.status_code == 403
        own = client.post(
            f"/v1/groups/{LIMITED_GROUP}/rules", json=rule, headers=auth(tokens.limited)
        )
        assert own.status_code == 201


def test_rules_test_reports_matches_and_changes_nothing(
    settings, run_app, tokens, unique, redis_url, kafka_bootstrap
):
    import redis

    group = unique("grp:test")
    client_redis = redis.Redis.from_url(redis_url)
    with run_app(create_app(settings)) as client:
        h = auth(tokens.admin)
        ads = add_rule(
            client,
            tokens.admin,
            group,
            name="ads",
            kind="keywords",
            params={"keywords": ["加微信"]},
            action="warn",
        )
        qr = add_rule(
            client, tokens.admin, group, name="qr", kind="qr_code", params={}, action="delete"
        )
        shadow = add_rule(
            client,
            tokens.admin,
            group,
            name="links",
            kind="links",
            params={},
            action="ban",
            mode="shadow",
        )
        add_rule(
            client,
            tokens.admin,
            group,
            name="flood",
            kind="flood",
            params={"max_messages": 1, "seconds": 60},
            action="mute",
        )
        client.put(
            f"/v1/groups/{group}/policy",
            headers=h,
            json={"ladder": [{"strikes": 1, "action": "mute", "mute_seconds": 60}]},
        )
        keys_before = sorted(client_redis.scan_iter(match=f"qy:{{{group}}}:mod:*"))
        image = base64.b64encode(qr_png("hello")).decode()
        sample = {
            "text": "加 微 信 看 abc.com",
            "member_id": "m1",
            "attachments": [{"kind": "image", "data": image}],
        }
        for _ in range(3):
            result = client.post(f"/v1/groups/{group}/rules/test", headers=h, json=sample)
            assert result.status_code == 200, result.text
            body = result.json()
            assert {m["rule_id"] for m in body["matched"]} == {ads["id"], qr["id"]}
            assert body["action"] == "warn"
            assert [m["rule_id"] for m in body["shadow_matched"]] == [shadow["id"]]
            assert body["strike"] is True and body["strikes"] == 1
            assert body["escalation"]["action"] == "mute"
        evidence = {m["rule_id"]: m["evidence"] for m in body["matched"]}
        assert evidence[ads["id"]] == "加 微 信"
        clean = client.post(f"/v1/groups/{group}/rules/test", headers=h, json={"text": "早安"})
        assert clean.json()["matched"] == [] and clean.json()["action"] is None
        assert client.get(f"/v1/groups/{group}/cases", headers=h).json() == {
            "cases": [],
            "next_cursor": None,
        }
        assert sorted(client_redis.scan_iter(match=f"qy:{{{group}}}:mod:*")) == keys_before
    assert (
        read_topic(kafka_bootstrap, settings.topic_moderation_actions, expect=1, timeout=1.5) == []
    )


def test_every_route_refuses_missing_foreign_and_read_only_tokens(settings, run_app, tokens):
    with run_app(create_app(settings)) as client:
        paths = client.get("/openapi.json").json()["paths"]
        checked = 0
        for path, operations in paths.items():
            if not path.startswith("/v1/groups/{group_id}"):
                continue
            url = path.replace("{group_id}", "test:other").replace("{rule_id}", "x")
            url = url.replace("{case_id}", "x").replace("{request_id}", "x")
            url = url.replace("{cleanup_id}", "x")
            for method in operations:
                assert client.request(method, url, json={}).status_code == 401, (method, path)
                foreign = client.request(method, url, json={}, headers=auth(tokens.limited))
                assert foreign.status_code == 403, (method, path)
                if method != "get":
                    reader = client.request(method, url, json={}, headers=auth(tokens.reader))
                    assert reader.status_code == 403, (method, path)
                checked += 1
        assert checked == 21  # 13 of rules, cases and reports; 8 of join requests, cleanups


def test_the_outbox_relay_is_watched_by_readyz(settings, run_app):
    """The relay runs as a loop of the service's resources, so its problem reaches /readyz."""
    app = create_app(settings)
    with run_app(app) as client:
        assert wait_until(lambda: client.get("/readyz").status_code == 200, timeout=20)
        resources = app.state.resources
        names = [loop.name for loop in resources.loops]
        assert "outbox:moderation_outbox" in names
        relay = next(loop for loop in resources.loops if loop.name == "outbox:moderation_outbox")
        assert relay is resources.state.relay and relay.running
        relay.stop()
        answer = client.get("/readyz")
        assert answer.status_code == 503
        assert answer.json()["detail"]["outbox:moderation_outbox"] == "stopped"


def test_the_documented_examples_are_accepted(settings, run_app, tokens, unique):
    group = unique("grp:examples")
    with run_app(create_app(settings)) as client:
        h = auth(tokens.admin)
        for example in CREATE_EXAMPLES.values():
            created = client.post(f"/v1/groups/{group}/rules", headers=h, json=example["value"])
            assert created.status_code == 201, created.text
            kind = example["value"]["kind"]
            assert created.json()["params"] == validate_params(kind, PARAMS[kind].EXAMPLE)
        keywords = add_rule(client, tokens.admin, group, **CREATE_EXAMPLES["keywords"]["value"])
        for example in UPDATE_EXAMPLES.values():
            path = f"/v1/groups/{group}/rules/{keywords['id']}"
            patched = client.patch(path, headers=h, json=example["value"])
            assert patched.status_code == 200, patched.text
        for example in POLICY_EXAMPLES.values():
            put = client.put(f"/v1/groups/{group}/policy", headers=h, json=example["value"])
            assert put.status_code == 200, put.text
        for name, example in SAMPLE_EXAMPLES.items():
            judged = client.post(f"/v1/groups/{group}/rules/test", headers=h, json=example["value"])
            assert judged.status_code == 200, (name, judged.text)
            assert judged.json()["matched"] or judged.json()["shadow_matched"], name
