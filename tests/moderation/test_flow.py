"""The moderation consumer end to end: real broker, Redis and database."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

from sqlmodel import Session

from services.common.contracts.events import encode_event
from services.common.db import make_engine
from services.common.kafka.consumer import ConsumedEvent, Record
from services.common.kafka.producer import ProducerHandle
from services.common.redis_client import make_redis
from services.moderation import rulesets
from services.moderation.app import create_app
from services.moderation.consumer import handle_batch
from services.moderation.rule_bodies import RuleCreate
from services.moderation.rulebook_cache import RulebookCache, announce_change
from services.moderation.sources import SourceTracker
from services.moderation.tracking import Tracker
from tests.conftest import auth, produce_events
from tests.moderation.conftest import actions, add_rule, member_event, message, qr_png, wait_until


def cases_of(client, token, group, member=None):
    query = f"?member_id={member}" if member else ""
    return client.get(f"/v1/groups/{group}/cases{query}", headers=auth(token)).json()["cases"]


def test_ladder_escalates_and_reverse_lifts_the_mute(
    settings, run_app, tokens, unique, producer, kafka_bootstrap
):
    group, h = unique("grp:ladder"), auth(tokens.admin)
    with run_app(create_app(settings)) as client:
        rule = add_rule(
            client,
            tokens.admin,
            group,
            name="ads",
            kind="keywords",
            params={"keywords": ["加微信"]},
            action="warn",
            delete_message=False,  # the ladder alone (rules that delete: test_meaning.py)
        )
        client.put(
            f"/v1/groups/{group}/policy",
            headers=h,
            json={
                "strike_window_days": 7,
                "ladder": [
                    {"strikes": 2, "action": "mute", "mute_seconds": 600},
                    {"strikes": 3, "action": "kick"},
                ],
            },
        )
        now = datetime.now(UTC)
        old = message(group, "m", "加微信", at=now - timedelta(days=10))
        recent = [
            message(group, "m", f"{i} 加 微 信", at=now - timedelta(minutes=3 - i))
            for i in range(3)
        ]
        produce_events(producer, settings.topic_events, [old, *recent])
        got = actions(kafka_bootstrap, settings.topic_moderation_actions, expect=6, timeout=40)
        assert [(a["event_id"], a["action"]) for a in got] == [
            (old.id, "warn"),
            (recent[0].id, "warn"),
            (recent[1].id, "warn"),
            (recent[1].id, "mute"),
            (recent[2].id, "warn"),
            (recent[2].id, "kick"),
        ]
        mute = got[3]
        assert mute["duration_seconds"] == 600 and mute["group_id"] == group
        assert mute["member_id"] == "m" and mute["rule_id"] == rule["id"]
        assert {"id", "message_id", "reason", "created_at"} <= mute.keys()
        assert len({a["id"] for a in got}) == 6

        cases = cases_of(client, tokens.admin, group, "m")
        assert len(cases) == 4
        muted_case = next(c for c in cases if c["event_id"] == recent[1].id)
        assert muted_case["escalation"]["action"] == "mute" and muted_case["rule_ids"] == [
            rule["id"]
        ]
        reversed_ = client.post(f"/v1/groups/{group}/cases/{muted_case['id']}/reverse", headers=h)
        assert reversed_.status_code == 200 and reversed_.json()["reversed"] is True
        again = client.post(f"/v1/groups/{group}/cases/{muted_case['id']}/reverse", headers=h)
        assert again.status_code == 409
        got = actions(
            kafka_bootstrap, settings.topic_moderation_actions, expect=7, timeout=20, settle=1.0
        )
        assert len(got) == 7
        assert (got[6]["action"], got[6]["member_id"], got[6]["case_id"]) == (
            "unmute",
            "m",
            muted_case["id"],
        )

        # The reversed strike no longer counts: one more warn is strike 3 of 4, not the 4th.
        test = client.post(
            f"/v1/groups/{group}/rules/test", headers=h, json={"text": "加微信", "member_id": "m"}
        ).json()
        assert test["strikes"] == 3


def test_shadow_rules_record_cases_exempt_members_are_skipped(
    settings, run_app, tokens, unique, producer, kafka_bootstrap
):
    group, h = unique("grp:shadow"), auth(tokens.admin)
    with run_app(create_app(settings)) as client:
        shadow = add_rule(
            client,
            tokens.admin,
            group,
            name="try",
            kind="keywords",
            params={"keywords": ["团购"]},
            action="ban",
            mode="shadow",
        )
        enforced = add_rule(
            client,
            tokens.admin,
            group,
            name="links",
            kind="links",
            params={"allowed_domains": ["example.org"]},
            action="delete",
        )
        client.put(f"/v1/groups/{group}/policy", headers=h, json={"exempt_members": ["admin"]})
        events = [
            message(group, "m1", "周末团购面膜"),
            message(group, "admin", "团购见 spam.com"),
            message(group, "m2", "看 https://example.org/ok"),
            message(group, "m3", "看 spam.com/x"),
        ]
        produce_events(producer, settings.topic_events, events)
        got = actions(
            kafka_bootstrap, settings.topic_moderation_actions, expect=1, timeout=40, settle=1.5
        )
        assert [(a["member_id"], a["action"]) for a in got] == [("m3", "delete")]
        cases = wait_until(
            lambda: (
                len(cases_of(client, tokens.admin, group)) == 2
                and cases_of(client, tokens.admin, group)
            )
        )
        by_member = {c["member_id"]: c for c in cases}
        assert set(by_member) == {"m1", "m3"}
        assert by_member["m1"]["shadow"] is True and by_member["m1"]["rule_ids"] == [shadow["id"]]
        assert by_member["m3"]["shadow"] is False
        assert by_member["m3"]["rule_ids"] == [enforced["id"]]
        metrics = client.get("/metrics").text
        assert (
            'qunyun_moderation_decisions_total{action="ban",mode="shadow",rule_kind="keywords"}'
            in metrics
        )


def test_redelivered_event_gives_no_second_case_or_action(
    settings, run_app, tokens, unique, producer, kafka_bootstrap
):
    group = unique("grp:redeliver")
    with run_app(create_app(settings)) as client:
        add_rule(
            client,
            tokens.admin,
            group,
            name="kinds",
            kind="message_kinds",
            params={"kinds": ["miniprogram"]},
            action="delete",
        )
        event = message(group, "m", "", kind="miniprogram")
        produce_events(producer, settings.topic_events, [event, event])
        produce_events(producer, settings.topic_events, [event])
        got = actions(
            kafka_bootstrap, settings.topic_moderation_actions, expect=1, timeout=40, settle=2.0
        )
        assert len(got) == 1 and got[0]["event_id"] == event.id
        assert len(cases_of(client, tokens.admin, group)) == 1


def test_handler_replay_after_a_crash_adds_nothing(
    settings, migrated, redis_url, unique, kafka_bootstrap
):
    """The same batch handled twice (crash before the offset commit) adds no case or action."""
    group = unique("grp:replay")
    db = make_engine(migrated)
    client = make_redis(settings.redis_url, cluster=settings.redis_cluster)
    producer = ProducerHandle(settings)
    with Session(db) as session:
        rulesets.create_rule(
            session=session,
            group_id=group,
            rule_in=RuleCreate(
                name="flood", kind="flood", params={"max_messages": 1, "seconds": 60}, action="mute"
            ),
        )
        session.commit()
    now = datetime.now(UTC)
    batch = [
        ConsumedEvent(Record(settings.topic_events, 0, i, None, encode_event(e)), e)
        for i, e in enumerate(
            message(group, "m", f"hi {i}", at=now + timedelta(seconds=i)) for i in range(3)
        )
    ]
    handler_kwargs = dict(
        db=db,
        settings=settings,
        producer=producer,
        rulebooks=RulebookCache(db=db, client=client),
        tracker=Tracker(client),
        sources=SourceTracker(),
    )
    try:
        handle_batch(batch, **handler_kwargs)
        handle_batch(batch, **handler_kwargs)
        got = actions(
            kafka_bootstrap, settings.topic_moderation_actions, expect=3, timeout=10, settle=1.0
        )
        # The second message is deleted and mutes; the third, same burst, is only deleted.
        assert [(a["event_id"], a["action"]) for a in got] == [
            (batch[1].event.id, "delete"),
            (batch[1].event.id, "mute"),
            (batch[2].event.id, "delete"),
        ]
    finally:
        producer.close()
        db.dispose()


def test_stateful_rules_and_rule_changes_from_another_replica(
    settings, run_app, tokens, unique, producer, kafka_bootstrap, redis_url
):
    group, h = unique("grp:state"), auth(tokens.admin)
    with run_app(create_app(settings)) as client:
        flood = add_rule(
            client,
            tokens.admin,
            group,
            name="flood",
            kind="flood",
            params={"max_messages": 3, "seconds": 10},
            action="delete",
        )
        dup = add_rule(
            client,
            tokens.admin,
            group,
            name="dup",
            kind="duplicates",
            params={"max_repeats": 2, "seconds": 60},
            action="flag",
        )
        newcomer = add_rule(
            client,
            tokens.admin,
            group,
            name="new",
            kind="newcomer",
            params={"within_seconds": 3600, "links": True},
            action="delete",
        )
        name = add_rule(
            client,
            tokens.admin,
            group,
            name="name",
            kind="display_name",
            params={"pattern": "[^-]+-[^-]+-[^-]+"},
            action="warn",
        )
        qr = add_rule(
            client, tokens.admin, group, name="qr", kind="qr_code", params={}, action="delete"
        )
        now = datetime.now(UTC)
        image = base64.b64encode(qr_png("https://spam.example.com/join")).decode()
        events = [
            *[
                message(group, "flooder", f"第{i}条", at=now + timedelta(seconds=i))
                for i in range(5)
            ],
            *[
                message(group, "repeater", t, at=now + timedelta(seconds=20 * i))
                for i, t in enumerate(["买 面膜", "买面膜", "買.面.膜"])
            ],
            member_event(
                "member.joined",
                group,
                "old",
                at=now - timedelta(days=2),
                display_name="老王-北京-油皮",
            ),
            member_event("member.joined", group, "newbie", at=now, display_name="小新-上海-干皮"),
            message(group, "newbie", "看 abc.com", at=now + timedelta(seconds=30)),
            message(group, "old", "看 abc.com", at=now + timedelta(seconds=30)),
            member_event("member.joined", group, "badname", at=now, display_name="推广号"),
            member_event("member.updated", group, "old", at=now, display_name="改名了"),
            message(group, "talker", "大家好", display_name="小美-上海-油皮"),
            message(group, "talker", "在吗", display_name="广告位招租"),
            message(group, "talker", "在吗在吗", display_name="广告位招租"),
            message(
                group, "poster", "", kind="image", attachments=[{"kind": "image", "data": image}]
            ),
        ]
        produce_events(producer, settings.topic_events, events)

        def settled():
            found = cases_of(client, tokens.admin, group)
            return found if any(c["rule_ids"] == [qr["id"]] for c in found) else None

        found = wait_until(settled, timeout=40)
        assert found, cases_of(client, tokens.admin, group)
        by_rule: dict[str, list[str]] = {}
        for case in found:
            for rule_id in case["rule_ids"]:
                by_rule.setdefault(rule_id, []).append(case["member_id"])
        assert sorted(by_rule[flood["id"]]) == ["flooder", "flooder"]
        assert by_rule[dup["id"]] == ["repeater"]
        assert by_rule[newcomer["id"]] == ["newbie"]
        # A name is judged on join and rename, and on a message when it changed (once).
        assert sorted(by_rule[name["id"]]) == ["badname", "old", "talker"]
        assert by_rule[qr["id"]] == ["poster"]

        # Another replica changes the rules: only the database and the version in Redis move.
        db = make_engine(settings.database_url)
        with Session(db) as session:
            rulesets.create_rule(
                session=session,
                group_id=group,
                rule_in=RuleCreate(
                    name="late", kind="mentions", params={"max_mentions": 1}, action="flag"
                ),
            )
            session.commit()
        announce_change(
            client=make_redis(settings.redis_url, cluster=settings.redis_cluster), group_id=group
        )
        db.dispose()
        produce_events(
            producer,
            settings.topic_events,
            [message(group, "shouter", "hi", mentions=["a", "b", "c"])],
        )
        assert wait_until(
            lambda: any(c["member_id"] == "shouter" for c in cases_of(client, tokens.admin, group)),
            timeout=15,
        )
        assert client.get(f"/v1/groups/{group}/rules", headers=h).status_code == 200


def test_actions_left_pending_by_a_crash_are_published_once(
    settings, migrated, unique, kafka_bootstrap
):
    """Cases committed but not yet sent (crash before publishing) are sent once, later."""
    from services.moderation.cases import Decision, record_decisions
    from services.moderation.outbox import publish_actions
    from services.moderation.rulebook import Rulebook
    from services.moderation.specs import PolicySpec, RuleSpec, Subject

    group = unique("grp:outbox")
    db = make_engine(migrated)
    producer = ProducerHandle(settings)
    rulebook = Rulebook(
        [
            RuleSpec.of(
                id="r1",
                name="kinds",
                kind="message_kinds",
                params={"kinds": ["card"]},
                action="kick",
            )
        ]
    )
    event = message(group, "m", "", kind="card")
    subject = Subject.of(event)
    assert subject is not None
    verdict = rulebook.evaluate(subject)
    try:
        topic = settings.topic_moderation_actions
        with Session(db, expire_on_commit=False) as session:
            created = record_decisions(
                session=session, decisions=[Decision(event, verdict, PolicySpec())], topic=topic
            )
            session.commit()
        assert len(created) == 1
        assert publish_actions(db=db, producer=producer) >= 1
        assert publish_actions(db=db, producer=producer) == 0
        got = actions(kafka_bootstrap, topic, expect=2, timeout=10, settle=0.5)
        case_id = created[0].id
        assert [(a["id"], a["action"]) for a in got] == [
            (f"{case_id}-delete", "delete"),
            (case_id, "kick"),
        ]
    finally:
        producer.close()
        db.dispose()
