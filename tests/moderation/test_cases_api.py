"""Cases as operators query them (filters that really filter, 422s naming the parameter),
reversals that say who and why and which lift they queued, the reports API, and two
replicas on the same report batch acting once. Real broker, Redis and database."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import redis

from services.common.contracts.events import encode_event
from services.common.db import make_engine
from services.common.kafka.consumer import ConsumedEvent, Record
from services.common.kafka.producer import ProducerHandle
from services.moderation.app import create_app
from services.moderation.consumer import handle_batch
from services.moderation.rulebook_cache import RulebookCache
from services.moderation.sources import SourceTracker
from services.moderation.tracking import Tracker
from tests.conftest import auth, produce_events
from tests.moderation.conftest import actions, add_rule, message, wait_until


def listed(client, token, group, **query):
    return client.get(f"/v1/groups/{group}/cases", headers=auth(token), params=query)


def ids(response) -> list[str]:
    assert response.status_code == 200, response.text
    return [c["id"] for c in response.json()["cases"]]


def test_cases_filter_by_member_action_rule_and_time_and_reversals_say_who_and_why(
    settings, run_app, tokens, unique, producer
):
    group, h = unique("grp:filters"), auth(tokens.admin)
    with run_app(create_app(settings)) as client:
        ads = add_rule(client, tokens.admin, group, name="广告", kind="keywords",
                       params={"keywords": ["加微信"]}, action="warn")  # fmt: skip
        spam = add_rule(client, tokens.admin, group, name="刷屏词", kind="keywords",
                        params={"keywords": ["顶顶顶"]}, action="mute",
                        mute_seconds=600)  # fmt: skip
        before = datetime.now(UTC) - timedelta(seconds=1)
        produce_events(producer, settings.topic_events, [
            message(group, "m1", "加微信"), message(group, "m2", "顶顶顶"),
        ])  # fmt: skip
        assert wait_until(lambda: len(ids(listed(client, tokens.admin, group))) == 2, timeout=30)
        manual = {"member_id": "m3", "action": "kick", "reason": "广告号"}
        kick = client.post(f"/v1/groups/{group}/actions", headers=h, json=manual)
        assert kick.status_code == 201, kick.text
        after = datetime.now(UTC) + timedelta(seconds=1)

        everything = listed(client, tokens.admin, group).json()["cases"]
        by_member = {c["member_id"]: c for c in everything}
        warned, muted = by_member["m1"], by_member["m2"]
        assert warned["rule_names"] == ["广告"] and muted["rule_names"] == ["刷屏词"]
        assert by_member["m3"]["rule_names"] == [] and by_member["m3"]["by"] == "admin"
        assert ids(listed(client, tokens.admin, group, action="warn")) == [warned["id"]]
        assert ids(listed(client, tokens.admin, group, action="mute")) == [muted["id"]]
        assert ids(listed(client, tokens.admin, group, action="kick")) == [kick.json()["id"]]
        assert ids(listed(client, tokens.admin, group, action="ban")) == []
        assert ids(listed(client, tokens.admin, group, rule_id=ads["id"])) == [warned["id"]]
        assert ids(listed(client, tokens.admin, group, rule_id=spam["id"])) == [muted["id"]]
        assert ids(listed(client, tokens.admin, group, rule_id="rule_x")) == []
        assert ids(listed(client, tokens.admin, group, member_id="m1", action="mute")) == []
        window = {"from": before.isoformat(), "to": after.isoformat()}
        assert len(ids(listed(client, tokens.admin, group, **window))) == 3
        assert ids(listed(client, tokens.admin, group, **{"from": after.isoformat()})) == []
        assert ids(listed(client, tokens.admin, group, to=before.isoformat())) == []

        for bad, named in (
            ({"action": "nuke"}, "action"),
            ({"from": "yesterday"}, "from"),
            ({"from": "2026-12-01T08:00:00"}, "from"),  # no time zone
            ({"from": after.isoformat(), "to": before.isoformat()}, "to"),
            ({"rule_id": "r" * 41}, "rule_id"),
        ):
            refused = listed(client, tokens.admin, group, **bad)
            assert refused.status_code == 422, (bad, refused.text)
            assert refused.json()["detail"][0]["loc"] == ["query", named], refused.text

        url = f"/v1/groups/{group}/cases/{muted['id']}/reverse"
        reversed_ = client.post(url, headers=h, json={"reason": "误判：在讨论广告"})
        assert reversed_.status_code == 200, reversed_.text
        body = reversed_.json()
        assert body["reversed"] is True and body["reversed_by"] == "admin"
        assert body["reversal_reason"] == "误判：在讨论广告"
        assert body["lifts"] == [
            {"id": f"{muted['id']}-lift", "action": "unmute", "member_id": "m2"}
        ]
        again = client.get(f"/v1/groups/{group}/cases/{muted['id']}", headers=h).json()
        assert (again["reversed_by"], again["reversal_reason"]) == ("admin", "误判：在讨论广告")
        # Nothing running to lift (a warn), and no body: no reason.
        plain = client.post(f"/v1/groups/{group}/cases/{warned['id']}/reverse", headers=h)
        assert plain.status_code == 200, plain.text
        assert plain.json()["lifts"] == [] and plain.json()["reversal_reason"] is None
        long = client.post(f"/v1/groups/{group}/cases/{kick.json()['id']}/reverse", headers=h,
                           json={"reason": "x" * 1001})  # fmt: skip
        assert long.status_code == 422 and long.json()["detail"][0]["loc"] == ["body", "reason"]


def test_report_settings_and_the_reports_list_refuse_bad_values(settings, run_app, tokens, unique):
    group, h = unique("grp:reports"), auth(tokens.admin)
    with run_app(create_app(settings)) as client:
        url = f"/v1/groups/{group}/policy"
        for threshold in (0, -3):
            bad = {"reports": {"keywords": ["举报"], "threshold": threshold, "action": "delete"}}
            refused = client.put(url, headers=h, json=bad)
            assert refused.status_code == 422, refused.text
            assert refused.json()["detail"][0]["loc"] == ["body", "reports", "threshold"]
        unknown = {"reports": {"keywords": ["举报"], "threshold": 2, "action": "explode"}}
        assert client.put(url, headers=h, json=unknown).status_code == 422
        off = client.put(url, headers=h, json={}).json()
        assert off["reports"] is None
        reports = f"/v1/groups/{group}/reports"
        assert client.get(reports, headers=h).json() == {"reports": [], "next_cursor": None}
        wrong = client.get(reports, headers=h, params={"status": "closed"})
        assert wrong.status_code == 422 and wrong.json()["detail"][0]["loc"] == ["query", "status"]
        assert client.get(reports).status_code == 401


def test_two_replicas_on_the_same_report_batch_act_once(
    settings, run_app, tokens, unique, redis_url, kafka_bootstrap
):
    """A rebalance hands the same batch to two replicas at once: one case, one deletion."""
    group = unique("grp:replicas")
    with run_app(create_app(settings)) as client:  # migrates, and serves the policy route
        policy = {"reports": {"keywords": ["举报"], "threshold": 2, "action": "delete"}}
        put = client.put(f"/v1/groups/{group}/policy", headers=auth(tokens.admin), json=policy)
        assert put.status_code == 200, put.text
    at = datetime.now(UTC) - timedelta(seconds=10)
    ad = message(group, "spammer", "加我", message_id="m1", at=at)
    events = [
        ad,
        *(
            message(
                group,
                who,
                "举报",
                message_id=f"r{i}",
                reply_to="m1",
                at=at + timedelta(seconds=i + 1),
            )  # fmt: skip
            for i, who in enumerate(("a", "b"))
        ),
    ]
    batch = [
        ConsumedEvent(Record(settings.topic_events, 0, i, None, encode_event(e)), e)
        for i, e in enumerate(events)
    ]
    db = make_engine(settings.database_url)
    producers = [ProducerHandle(settings), ProducerHandle(settings)]
    failures: list[BaseException] = []

    def replica(producer: ProducerHandle) -> None:
        client = redis.Redis.from_url(redis_url)
        try:
            handle_batch(
                batch, db=db, settings=settings, producer=producer,
                rulebooks=RulebookCache(db=db, client=client), tracker=Tracker(client),
                sources=SourceTracker(),
            )  # fmt: skip
        except BaseException as exc:  # a losing replica may fail; its batch is retried
            failures.append(exc)

    try:
        threads = [threading.Thread(target=replica, args=(p,)) for p in producers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        if failures:  # the consumer loop retries a failed batch: so do we, once
            replica(producers[0])
        got = actions(
            kafka_bootstrap, settings.topic_moderation_actions, expect=1, timeout=15, settle=1.5
        )
    finally:
        for producer in producers:
            producer.close()
        db.dispose()
    assert [(a["action"], a["member_id"], a["message_id"]) for a in got] == [
        ("delete", "spammer", "m1")
    ]
