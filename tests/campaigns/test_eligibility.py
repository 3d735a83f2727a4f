"""Check-in matching and lottery eligibility through the real broker: a check-in is a message
that IS the keyword (or starts with it under `prefix`); a lottery's participants are its
entrants only; members muted, kicked or banned by moderation during the lottery
(moderation.actions.v1, consumer group campaigns-actions) or excluded by an operator are
not drawn, and an `unmute` or a readmission makes them eligible again."""

from __future__ import annotations

import uuid
from typing import Any

from kafka import KafkaProducer

from services.campaigns.app import create_app
from services.common.contracts.actions import ModerationAction
from services.common.settings import Settings
from tests.campaigns.helpers import campaign_body, message, now, read_group, wait_until
from tests.conftest import auth, produce_events


def _members(client: Any, base: str, headers: dict[str, str], what: str) -> list[str]:
    r = client.get(f"{base}/{what}", headers=headers)
    assert r.status_code == 200, r.text
    return [p["member_id"] for p in r.json()[what]]


def test_checkin_exact_by_default_and_prefix_when_asked(
    settings, run_app, tokens, unique, producer, kafka_bootstrap
):
    exact_group, prefix_group = unique("g-exact"), unique("g-prefix")
    admin = auth(tokens.admin)
    inside = now()
    texts = {
        "owner": "每天记得#打卡 哦～",
        "forgot": "我今天忘记打卡了",
        "plain": "打卡！",
        "tagged": "#打卡 ✅",
        "day3": "打卡 第3天",
    }
    events = [
        message(g, m, t, inside) for g in (exact_group, prefix_group) for m, t in texts.items()
    ]
    with run_app(create_app(settings)) as client:
        ids = {}
        for group, params in ((exact_group, {}), (prefix_group, {"match": "prefix"})):
            body = campaign_body("checkin", start_in=-60, end_in=600, params=params)
            r = client.post(f"/v1/groups/{group}/campaigns", json=body, headers=admin)
            assert r.status_code == 201, r.text
            ids[group] = r.json()["id"]
        produce_events(producer, settings.topic_events, events)
        grants = {
            g: read_group(kafka_bootstrap, settings.topic_campaign_rewards, g, expect=n, settle=1)
            for g, n in ((exact_group, 2), (prefix_group, 3))
        }
        listed = {
            g: _members(client, f"/v1/groups/{g}/campaigns/{c}", admin, "participants")
            for g, c in ids.items()
        }
    assert sorted(g["member_id"] for g in grants[exact_group]) == ["plain", "tagged"]
    assert sorted(g["member_id"] for g in grants[prefix_group]) == ["day3", "plain", "tagged"]
    assert listed == {exact_group: ["plain", "tagged"], prefix_group: ["day3", "plain", "tagged"]}


def _action(group: str, member_id: str, name: str) -> ModerationAction:
    case = uuid.uuid4().hex
    return ModerationAction(
        id=case,
        case_id=case,
        group_id=group,
        member_id=member_id,
        event_id=None,
        message_id=None,
        action=name,  # type: ignore[arg-type]
        duration_seconds=600 if name == "mute" else None,
        rule_id=None,
        reason=f"test {name}",
        created_at=now(),
    )


def _publish(producer: KafkaProducer, settings: Settings, actions: list[ModerationAction]) -> None:
    topic = settings.topic_moderation_actions
    for a in actions:
        producer.send(topic, key=a.group_id.encode(), value=a.model_dump_json().encode())
    producer.flush(timeout=30)


def test_lottery_entrants_and_exclusions_by_moderation_and_by_hand(
    settings, run_app, tokens, unique, producer, kafka_bootstrap
):
    group = unique("g-eligible")
    admin = auth(tokens.admin)
    params = {"entry_keyword": "抽奖", "prizes": [{"name": "杯子", "quantity": 10}]}
    body = campaign_body(
        "lottery", start_in=-5, end_in=6, params={**params, "draw_delay_seconds": 1}
    )
    inside = now()
    entrants = ["ann", "bob", "cat", "dan", "fay", "gus"]
    events = [message(group, m, "我要抽奖", inside) for m in entrants]
    events.append(message(group, "eve", "hello", inside))  # talks, never enters
    with run_app(create_app(settings)) as client:
        r = client.post(f"/v1/groups/{group}/campaigns", json=body, headers=admin)
        assert r.status_code == 201, r.text
        base = f"/v1/groups/{group}/campaigns/{r.json()['id']}"
        checkin = client.post(
            f"/v1/groups/{group}/campaigns",
            json=campaign_body("checkin", start_in=-5, end_in=600),
            headers=admin,
        ).json()["id"]
        produce_events(producer, settings.topic_events, events)
        _publish(
            producer,
            settings,
            [
                _action(group, "bob", "mute"),
                _action(group, "dan", "mute"),
                _action(group, "dan", "unmute"),  # lifted (a reversal, a verified newcomer)
                _action(group, "fay", "kick"),
                _action(group, "ann", "warn"),  # a warning alone excludes nobody
            ],
        )
        excluded = client.post(
            f"{base}/exclusions", json={"member_id": "cat", "reason": "刷屏"}, headers=admin
        )
        assert excluded.status_code == 201, excluded.text
        assert (excluded.json()["cause"], excluded.json()["by"]) == ("manual", "admin")
        again = client.post(f"{base}/exclusions", json={"member_id": "gus"}, headers=admin)
        assert again.status_code == 201
        assert client.delete(f"{base}/exclusions/gus", headers=admin).status_code == 204
        assert client.delete(f"{base}/exclusions/gus", headers=admin).status_code == 404
        wrong_kind = f"/v1/groups/{group}/campaigns/{checkin}/exclusions"
        assert client.post(wrong_kind, json={"member_id": "x"}, headers=admin).status_code == 409
        reader = client.post(
            f"{base}/exclusions", json={"member_id": "x"}, headers=auth(tokens.reader)
        )
        assert reader.status_code == 403

        def causes() -> dict[str, str]:
            rows = client.get(f"{base}/exclusions", headers=admin).json()["exclusions"]
            return {e["member_id"]: e["cause"] for e in rows}

        assert wait_until(lambda: causes() == {"bob": "mute", "cat": "manual", "fay": "kick"})
        assert wait_until(lambda: len(_members(client, base, admin, "participants")) == 6)
        participants = _members(client, base, admin, "participants")
        # The lottery's started, ended and winners, and the check-in's started.
        notes = read_group(
            kafka_bootstrap, settings.topic_campaign_notifications, group, expect=4, timeout=30
        )
        winners = client.get(f"{base}/winners", headers=admin).json()["winners"]
        late = client.post(f"{base}/exclusions", json={"member_id": "ann"}, headers=admin)
    assert participants == entrants  # eve chatted but did not enter
    [drawn] = [n for n in notes if n["kind"] == "winners"]
    assert drawn["data"]["eligible"] == ["ann", "dan", "gus"]
    assert sorted(w["member_id"] for w in winners) == ["ann", "dan", "gus"]
    assert late.status_code == 409  # the winners are out
