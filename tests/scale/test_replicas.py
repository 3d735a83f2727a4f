"""Two processes of every service on one 6-partition topic per flow (docs/scaling.md).

One stack serves the module: two ingest processes (one Redis: they share the dedup
claims), and two processes each of metrics, moderation, campaigns and delivery, each pair
in one consumer group. The simulator's traffic is sent to BOTH ingest processes at once,
the same batches racing; campaign notices for Telegram chats on the platform double go
straight onto campaigns.notifications.v1 for delivery. Mid-stream the second process of
each consumer is SIGKILLed and not restarted, so its partitions must pass to the first.
Then:
- both processes of each consumer held partitions before the kill, and the survivor holds
  all of them after it (each process's own lag gauges: the partitions it consumes);
- every metrics number, case, action and grant equals the ground truth (the fault
  harness's checks), and delivery gave each notice one receipt, posted it, and repeated a
  call only where the kill left its outcome unknown;
- each event is on community.events.v1 once, and the two ingest processes together
  accepted each event once and answered every other copy as a duplicate.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from kafka import KafkaProducer
from kafka.partitioner.default import murmur2

from services.common.auth import token_entry
from services.common.kafka.admin import ensure_topics
from services.common.settings import QunyunConfig, Settings, Source, write_config
from tests.faults.harness import (
    SECRET,
    SOURCE,
    TIMEZONE,
    Api,
    Scale,
    Services,
    Streamer,
    Truth,
    Verdict,
    ground_truth,
    message,
    post_events,
    set_up_operations,
    settle_and_verify,
)
from tests.faults.harness.delivery import CallAudit, Planned, audit_calls
from tests.faults.harness.processes import consumer_lag as exported_lag
from tests.support import read_topic, wait_until
from tools.platform_double import DoubleConfig, DoubleHandle, start_double
from tools.stack import HTTP, consumer_lag, replicas, service_stack

# One stack of ten processes serves the module; on a busy 2-core machine it may take minutes
# to start, which the first test's timeout (the fixture's setup is part of it) must allow.
pytestmark = pytest.mark.timeout(600)
PARTITIONS = 6
SEED = 20261220
SCALE = Scale("replicas", groups=PARTITIONS, members=40, days=3, messages_per_member=0.9,
              stream_seconds=16, kills_per_consumer=1)  # fmt: skip
NOTICES, CHATS = 240, 24
# Each consuming service: its consumer group on the flow and the topic its partitions are.
FLOWS = {
    "metrics": ("metrics", "topic_events"),
    "moderation": ("moderation", "topic_events"),
    "campaigns": ("campaigns", "topic_events"),
    "delivery": ("delivery", "topic_campaign_notifications"),
}
NAMES = tuple(n for s in ("ingest", *FLOWS) for n in replicas(s, 2))
LAG_LINE = re.compile(r"^qunyun_consumer_lag_messages\{([^}]*)\}")


def partition_of(key: str) -> int:
    """The partition kafka-python's default partitioner gives a key on a 6-partition topic."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % PARTITIONS


def spread_prefix() -> str:
    """A group prefix whose six simulated groups land on six different partitions, so each
    process of a pair is sure to hold some of the traffic."""
    for attempt in range(100_000):
        prefix = f"replicas-{uuid.uuid4().hex[:6]}-{attempt}"
        if len({partition_of(f"{prefix}:g{g}") for g in range(PARTITIONS)}) == PARTITIONS:
            return prefix
    raise AssertionError("no prefix spreads the groups over every partition")


def spread_chats(count: int) -> list[str]:
    """Telegram chat ids whose groups (`telegram:<chat>`) fill every partition evenly."""
    per_partition: dict[int, list[str]] = defaultdict(list)
    chat = 810_000_000
    while sum(len(v) for v in per_partition.values()) < count:
        chat += 1
        slot = per_partition[partition_of(f"telegram:-{chat}")]
        if len(slot) < count // PARTITIONS:
            slot.append(f"-{chat}")
    return [c for chats in per_partition.values() for c in chats]


def held_partitions(url: str, group: str, topic: str) -> set[int]:
    """The partitions one process consumes for its group: those it exports a lag for (the
    consumer loop drops a partition's gauge when another process takes it over)."""
    try:
        text = HTTP.get(f"{url}/metrics", timeout=5).text
    except httpx.HTTPError:
        return set()
    held = set()
    for line in text.splitlines():
        if m := LAG_LINE.match(line):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
            if labels["group"] == group and labels["topic"] == topic:
                held.add(int(labels["partition"]))
    return held


def survivor_holds(services: Services, settings: Settings, service: str) -> set[int]:
    """The partitions the first process of a pair holds once it holds all (or after 30 s)."""
    group, topic_field = FLOWS[service]
    name, topic = settings.consumer_group_prefix + group, getattr(settings, topic_field)

    def held() -> set[int]:
        return held_partitions(services.url(service), name, topic)

    wait_until(lambda: held() == set(range(PARTITIONS)), timeout=30)
    return held()


def notice(chat: str, n: int, run: str) -> Planned:
    """A campaign notice for a Telegram chat on the double, with a text found nowhere else."""
    record = {
        "id": f"scale-{run}:notice:{n}",
        "group_id": f"telegram:{chat}",
        "source": "tg-scale",
        "campaign_id": f"scale-{run}",
        "kind": "broadcast",
        "text": f"scale notice {run} {n}",
        "created_at": datetime.now(UTC).isoformat(),
    }
    return Planned(record, "warn", chat, (("sendMessage", record["text"]),))


def produce_paced(producer: KafkaProducer, topic: str, planned: list[Planned], seconds: float):
    """Put the notices on the topic evenly over `seconds`, keyed by group, waiting for acks."""
    started, steps = time.monotonic(), 20
    futures = []
    for i in range(steps):
        for p in planned[i::steps]:
            value = orjson.dumps(p.record)
            futures.append(producer.send(topic, key=p.record["group_id"].encode(), value=value))
        producer.flush(timeout=30)
        time.sleep(max(0.0, started + seconds * (i + 1) / steps - time.monotonic()))
    for future in futures:
        future.get(timeout=30)


@dataclass
class Run:
    """What the module's one run saw."""

    settings: Settings
    truth: Truth
    verdict: Verdict
    before_kill: dict[str, tuple[set[int], set[int]]]  # service -> (first's, second's)
    survivor: dict[str, set[int]]
    ingest_stats: list[dict[str, Any]]
    events_on_topic: Counter[str]
    sent_ids: set[str]
    planned: list[Planned]
    receipts: list[dict[str, Any]]
    audit: CallAudit
    figures: dict[str, Any] = field(default_factory=dict)


@pytest.fixture(scope="module")
def double() -> Iterator[DoubleHandle]:
    handle = start_double(DoubleConfig())
    yield handle
    handle.stop()


@pytest.fixture(scope="module")
def scale_settings(
    tmp_path_factory: pytest.TempPathFactory,
    kafka_bootstrap: str,
    redis_url: str,
    redis_cluster: bool,
    database_url: str,
    tokens: Any,
    double: DoubleHandle,
) -> Settings:
    """Settings on the session servers: private 6-partition topics and consumer groups, the
    generic test source and a Telegram source on the double, and a short delivery lease (a
    killed process's claims pass to the survivor after it)."""
    c = double.state.config
    config = QunyunConfig(
        sources=[
            Source(id=SOURCE, platform="generic", secret=SECRET),
            Source(id="tg-scale", platform="telegram", secret="s", bot_token=c.telegram_token,
                   api_base=double.base_url, rate_per_second=5000.0,
                   rate_per_group_per_minute=60000.0),
        ],
        tokens=[token_entry("admin", tokens.admin, ["*"], ["read", "write"])],
    )  # fmt: skip
    path = write_config(tmp_path_factory.mktemp("scale") / "qunyun.toml", config)
    run = uuid.uuid4().hex[:8]
    settings = Settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        redis_url=redis_url,
        redis_cluster=redis_cluster,
        database_url=database_url,
        qunyun_config=str(path),
        qunyun_timezone=TIMEZONE,
        kafka_partitions=PARTITIONS,
        kafka_session_timeout_ms=6000,
        delivery_lease_seconds=12.0,
        consumer_group_prefix=f"s{run}-",
        **{
            name: f"{Settings.model_fields[name].default}.{run}"
            for name in Settings.model_fields
            if name.startswith("topic_")
        },
    )
    ensure_topics(settings)
    return settings


@pytest.fixture(scope="module")
def replica_run(
    scale_settings: Settings,
    tokens: Any,
    double: DoubleHandle,
    kafka_bootstrap: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Run:
    settings = scale_settings
    prefix = spread_prefix()
    events = SCALE.traffic(seed=SEED, group_prefix=prefix)
    run = uuid.uuid4().hex[:6]
    chats = spread_chats(CHATS)
    planned = [notice(chats[n % CHATS], n, run) for n in range(NOTICES)]
    logs: Path = tmp_path_factory.mktemp("scale-logs")
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", linger_ms=2)
    with service_stack(settings, logs, names=NAMES, ready_timeout=240) as stack:
        services = Services(stack, settings)
        api = Api(services, tokens.admin)
        start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=SCALE.days)
        ops = set_up_operations(
            api,
            services=services,
            groups=sorted({e["group_id"] for e in events}),
            starts_at=start - timedelta(hours=1),
            tag=prefix,
        )
        # The same batches to both ingest processes at once: every id is raced across them.
        streamers = [
            Streamer(url=services.url(name), events=events, seconds=SCALE.stream_seconds)
            for name in replicas("ingest", 2)
        ]
        notices = threading.Thread(
            target=produce_paced,
            args=(producer, settings.topic_campaign_notifications, planned, SCALE.stream_seconds),
        )
        for thread in (*streamers, notices):
            thread.start()
        before_kill: dict[str, tuple[set[int], set[int]]] = {}
        kills: dict[str, float] = {}
        for service, (group, topic_field) in FLOWS.items():
            first, second = replicas(service, 2)
            name, topic = settings.consumer_group_prefix + group, getattr(settings, topic_field)

            def both_hold(f: str = first, s: str = second, g: str = name, t: str = topic):
                pair = (
                    held_partitions(services.url(f), g, t),
                    held_partitions(services.url(s), g, t),
                )
                return pair if all(pair) and not pair[0] & pair[1] else None

            before_kill[service] = wait_until(both_hold, timeout=30, interval=0.1) or (
                held_partitions(services.url(first), name, topic),
                held_partitions(services.url(second), name, topic),
            )
            # Busy (a backlog to work through), so the kill most likely lands mid-batch.
            wait_until(
                lambda s=second, g=name: (exported_lag(services.url(s), g) or 0) > 0, 2, 0.05
            )
            kills[service] = time.time()
            services.kill(second)
        ingest_stats = [s.finish(timeout=SCALE.stream_seconds + 180) for s in streamers]
        notices.join(60)
        # A last record on every partition of each flow: the survivor, once the broker has
        # handed it the killed process's partitions, consumes (and exports) all six.
        groups = sorted(ops.rules)
        tail = [message(g, f"{g}:tail", "收到", event_id=f"{prefix}-{g}-tail") for g in groups]
        assert post_events(services.url("ingest"), tail).status_code == 202
        last = [notice(chat, NOTICES + i, run) for i, chat in enumerate(chats[::4])]
        produce_paced(producer, settings.topic_campaign_notifications, last, 0)
        planned += last
        producer.close(timeout=10)
        acknowledged = streamers[0].acknowledged.snapshot() + streamers[1].acknowledged.snapshot()
        truth = ground_truth(
            acknowledged + ops.canaries + tail, tz=settings.tz, now=datetime.now(UTC)
        )
        # The broker's view: every partition of every flow committed up to its end.
        caught_up = wait_until(
            lambda: set(consumer_lag(settings, FLOWS).values()) == {0}, timeout=90, interval=1
        )
        assert caught_up, consumer_lag(settings, FLOWS)
        verdict = settle_and_verify(
            api=api,
            services=services,
            settings=settings,
            truth=truth,
            ops=ops,
            bootstrap=settings.kafka_bootstrap_servers,
        )
        survivor = {service: survivor_holds(services, settings, service) for service in FLOWS}
        api.close()
    # Both topics at once: each read keeps reading 2 s after its count to catch extras.
    with ThreadPoolExecutor(2) as pool:
        reading_events = pool.submit(
            read_topic,
            settings.kafka_bootstrap_servers,
            settings.topic_events,
            expect=len(events) + len(ops.canaries) + len(tail),
            timeout=60,
            settle=2,
        )
        reading_receipts = pool.submit(
            read_topic,
            settings.kafka_bootstrap_servers,
            settings.topic_delivery_receipts,
            expect=len(planned),
            timeout=60,
            settle=2,
        )
        on_topic, receipts = reading_events.result(), reading_receipts.result()
    return Run(
        settings=settings,
        truth=truth,
        verdict=verdict,
        before_kill=before_kill,
        survivor=survivor,
        ingest_stats=ingest_stats,
        events_on_topic=Counter(orjson.loads(r.value)["id"] for r in on_topic),
        sent_ids={e["id"] for e in events},
        planned=planned,
        receipts=[orjson.loads(r.value) for r in receipts],
        audit=audit_calls(double.state, planned, [kills["delivery"]]),
    )


@pytest.mark.parametrize("service", list(FLOWS))
def test_both_processes_held_partitions_and_the_survivor_took_them_all(replica_run, service):
    first, second = replica_run.before_kill[service]
    assert first and second, (service, first, second)
    assert not first & second, (service, first, second)  # one owner per partition
    assert replica_run.survivor[service] == set(range(PARTITIONS)), replica_run.survivor


@pytest.mark.parametrize("service", ["metrics", "moderation", "campaigns"])
def test_totals_stay_exact_through_the_kill(replica_run, service):
    comparison = getattr(replica_run.verdict, service)
    truth = replica_run.truth
    assert truth.offending and truth.checkins and truth.streaks, truth.events
    assert comparison.expected > 0
    assert comparison.exact, (service, comparison.lost, comparison.doubled, comparison.mismatches)


def test_delivery_posted_every_notice_once_through_the_kill(replica_run):
    notices = {p.record["id"] for p in replica_run.planned}
    ids_per_ref: dict[str, set[str]] = defaultdict(set)
    final: dict[str, str] = {}
    for r in replica_run.receipts:
        if r["ref_id"] in notices:
            ids_per_ref[r["ref_id"]].add(r["id"])
            final[r["ref_id"]] = r["outcome"]
    assert set(final) == notices, len(notices - set(final))
    assert all(len(ids) == 1 for ids in ids_per_ref.values())
    assert set(final.values()) == {"delivered"}, Counter(final.values())
    audit = replica_run.audit
    assert not audit.missing, audit.missing[:10]
    assert not audit.unexplained, audit.unexplained[:10]  # repeated only after the kill
    assert audit.doubled_posts <= audit.after_kill


def test_two_ingest_processes_accept_each_event_once(replica_run):
    sent = replica_run.sent_ids
    stats = replica_run.ingest_stats
    assert sum(s["accepted"] for s in stats) == len(sent), stats
    assert sum(s["duplicates"] for s in stats) == len(sent), stats
    copies = Counter(n for i, n in replica_run.events_on_topic.items() if i in sent)
    assert set(replica_run.events_on_topic) >= sent
    assert copies == Counter({1: len(sent)}), copies
