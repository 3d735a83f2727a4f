"""The traffic simulator: deterministic, realistic, valid, and accepted by a real ingest."""

from __future__ import annotations

import io
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from services.common.contracts.events import parse_event
from services.ingest.app import create_app as create_ingest
from tests.support import SOURCE_SECRETS, read_topic
from tools import simulate
from tools.simulate import WebhookRejected, generate, send_kafka, send_webhook_batches

START = datetime(2026, 10, 1, tzinfo=UTC)
ADS = ("加微信", "加V", "vx同号", "代购", "团购", "兼职日结", "扫码进群")


@pytest.fixture(scope="module")
def week() -> list[dict]:
    return list(generate(seed=42, groups=3, members=200, days=7, start=START))


def test_same_seed_gives_identical_traffic_and_another_seed_does_not(week):
    again = list(generate(seed=42, groups=3, members=200, days=7, start=START))
    other = list(generate(seed=43, groups=3, members=200, days=7, start=START))
    assert again == week
    assert [e["data"] for e in other] != [e["data"] for e in week]


def test_every_event_follows_the_contract_in_time_order(week):
    parsed = [parse_event(e) for e in week]
    assert len({e.id for e in parsed}) == len(parsed)
    times = [e.occurred_at for e in parsed]
    assert times == sorted(times)
    assert times[0] >= START and times[-1] < START + timedelta(days=7)
    assert {e.type for e in parsed} == {
        "message.created",
        "member.joined",
        "member.left",
        "member.updated",
    }


def test_members_speak_only_between_joining_and_leaving(week):
    joined, left = {}, {}
    for event in week:
        key = (event["group_id"], event["member_id"])
        if event["type"] == "member.joined":
            joined[key] = event["occurred_at"]
        elif event["type"] == "member.left":
            left[key] = event["occurred_at"]
        elif event["type"] == "message.created":
            assert key in joined and key not in left, event
    assert left, "some members leave"


def test_activity_is_heavy_tailed_with_many_lurkers(week):
    members = {(e["group_id"], e["member_id"]) for e in week if e["type"] == "member.joined"}
    sent = Counter((e["group_id"], e["member_id"]) for e in week if e["type"] == "message.created")
    counts = sorted((sent.get(m, 0) for m in members), reverse=True)
    top_tenth = sum(counts[: len(counts) // 10])
    assert top_tenth > 0.5 * sum(counts)
    assert sum(1 for c in counts if c == 0) > 0.3 * len(members)


def test_traffic_has_rule_breaking_and_check_ins(week):
    messages = [e["data"] for e in week if e["type"] == "message.created"]
    texts = [m["text"] for m in messages]
    kinds = Counter(m["kind"] for m in messages)
    assert sum(any(a in t for a in ADS) for t in texts) >= 5
    assert kinds["miniprogram"] >= 1 and kinds["link"] >= 5 and kinds["image"] >= 5
    assert sum("打卡" in t for t in texts) >= 0.03 * len(texts)
    lengths = sorted(len(t) for m, t in zip(messages, texts, strict=True) if m["kind"] == "text")
    assert 6 <= lengths[len(lengths) // 2] <= 60 and lengths[-1] > 60
    names = [e["data"]["display_name"] for e in week if e["type"] == "member.joined"]
    assert (
        sum(n.count("-") == 2 for n in names)
        > 0.7 * len(names)
        > sum(n.count("-") == 0 for n in names)
        > 0
    )


def test_floods_put_many_equal_messages_within_seconds(week):
    bursts = defaultdict(list)
    for e in week:
        if e["type"] == "message.created":
            bursts[(e["member_id"], e["data"]["text"])].append(e["occurred_at"])
    flooded = [
        times
        for times in bursts.values()
        if len(times) >= 6
        and datetime.fromisoformat(times[5]) - datetime.fromisoformat(times[0])
        < timedelta(seconds=10)
    ]
    assert flooded


def test_signed_batches_are_accepted_by_ingest_and_recorded(
    make_settings, run_app, kafka_bootstrap
):
    settings = make_settings()
    events = list(generate(seed=5, groups=2, members=40, days=2, start=START, source="x"))
    record = io.BytesIO()
    with run_app(create_ingest(settings)) as client:
        stats = send_webhook_batches(
            url="http://testserver",
            source_id="generic-test",
            secret=SOURCE_SECRETS["generic-test"][1],
            events=events,
            batch_size=100,
            record=record,
            client=client,
        )
        again = send_webhook_batches(
            url="http://testserver",
            source_id="generic-test",
            secret=SOURCE_SECRETS["generic-test"][1],
            events=events[:150],
            batch_size=150,
            client=client,
        )
        with pytest.raises(WebhookRejected, match="401"):
            send_webhook_batches(
                url="http://testserver",
                source_id="generic-test",
                secret="not-the-secret",
                events=events[:1],
                client=client,
            )
    assert stats["accepted"] == len(events) and stats["duplicates"] == 0
    assert stats["batches"] == -(-len(events) // 100)
    assert again["accepted"] == 0 and again["duplicates"] == 150
    recorded = [orjson.loads(line) for line in record.getvalue().splitlines()]
    assert recorded == events
    on_topic = read_topic(kafka_bootstrap, settings.topic_events, expect=len(events), settle=1.0)
    assert sorted(orjson.loads(r.value)["id"] for r in on_topic) == sorted(e["id"] for e in events)
    assert all(r.key == orjson.loads(r.value)["group_id"].encode() for r in on_topic)


def test_kafka_sink_produces_keyed_events_with_received_at(make_settings, kafka_bootstrap):
    settings = make_settings()
    events = list(generate(seed=9, groups=2, members=30, days=1, start=START))
    record = io.BytesIO()
    stats = send_kafka(
        bootstrap=kafka_bootstrap, topic=settings.topic_events, events=events, record=record
    )
    assert stats["accepted"] == len(events)
    on_topic = read_topic(kafka_bootstrap, settings.topic_events, expect=len(events), settle=1.0)
    values = [orjson.loads(r.value) for r in on_topic]
    assert sorted(v["id"] for v in values) == sorted(e["id"] for e in events)
    assert all(parse_event(v).received_at is not None for v in values)
    assert all(r.key == orjson.loads(r.value)["group_id"].encode() for r in on_topic)
    assert len(record.getvalue().splitlines()) == len(events)


def test_rate_limit_sends_in_small_paced_chunks(make_settings, kafka_bootstrap):
    settings = make_settings()
    events = list(generate(seed=3, groups=2, members=100, days=2, start=START))[:60]
    stats = send_kafka(
        bootstrap=kafka_bootstrap, topic=settings.topic_events, events=events, rate=100.0
    )
    assert stats["accepted"] == 60 and stats["batches"] == 6  # a tenth of a second each


def test_cli_writes_the_same_events_as_the_function(capsysbinary):
    args = ["--seed", "11", "--groups", "2", "--members", "25", "--days", "2"]
    assert simulate.main([*args, "--start", START.isoformat(), "--via", "stdout"]) == 0
    lines = capsysbinary.readouterr().out.splitlines()
    expected = list(generate(seed=11, groups=2, members=25, days=2, start=START, source="dev"))
    assert [orjson.loads(line) for line in lines] == expected
