"""Benchmark of the metrics service: consumer throughput, Redis memory and query latency.

- consumer: events/s one metrics ConsumerRunner applies (decode + Lua apply + commit),
  beside the raw kafka-python consume rate of the same topic, measured in the same run;
- memory: Redis bytes held by one group of 100,000 members active over 90 days, filled
  straight through the apply script in big pipelines (not through Kafka);
- latency: a 90-day day-cohort retention query (30 periods, both modes), DAU/WAU/MAU,
  a 30-day leaderboard, a dormant page, channels and inviters on that group (its members
  join through 8 channels, half of them invited by an earlier member), and the overview
  over 1,000 groups of 20 members;
- acquisition memory: the channel/inviter keys (`jn`, `ch`, `ac:*`, `ai:*`) of that group.
"""

from __future__ import annotations

import random
import time
import uuid
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import orjson
import redis

from services.common.kafka.admin import ensure_topics
from services.common.redis_client import make_redis
from services.common.settings import Settings
from services.metrics import acquisition, cohorts, overview, queries
from services.metrics.apply import Applier
from services.metrics.consumer import handle_events
from services.metrics.keys import GroupKeys, start_of_day_ms, today
from tools.bench_metrics_fill import UTC_ZONE, fill_group, fill_groups, group_memory
from tools.bench_raw import (
    consumer_rate,
    median,
    ratio_of,
    raw_consume_rate,
    raw_produce_rate,
    row,
)


def _payloads(count: int, *, groups: int, members: int) -> list[tuple[bytes | None, bytes]]:
    """Return keyed event records of live traffic: 90% messages, 5% joins, 5% leaves,
    in time order over the last hour (a few late ones up to a day back)."""
    run = uuid.uuid4().hex[:8]
    rng = random.Random(count)
    now = datetime.now(UTC)
    out: list[tuple[bytes | None, bytes]] = []
    for n in range(count):
        group = f"bench:{run}:{rng.randrange(groups)}"
        member = f"u:{rng.randrange(members)}"
        late = rng.random() < 0.02
        back = rng.randrange(86400) if late else (count - n) * 3600 / count
        at = (now - timedelta(seconds=back)).isoformat()
        roll = rng.random()
        body: dict[str, Any] = {
            "id": f"{run}-{n}",
            "source": "bench",
            "group_id": group,
            "member_id": member,
            "occurred_at": at,
        }
        if roll < 0.9:
            body |= {"type": "message.created", "data": {"message_id": f"m{n}", "text": "你好 hi"}}
        elif roll < 0.95:
            body |= {"type": "member.joined", "data": {"method": "link"}}
        else:
            body |= {"type": "member.left", "data": {"reason": "left"}}
        out.append((group.encode(), orjson.dumps(body)))
    return out


def _redis_cpu_seconds(client: redis.Redis) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def consumer_rates(
    *, bootstrap: str, redis_url: str, events: int
) -> tuple[float, float, dict[str, float]]:
    """Produce a fresh topic; return (metrics consumer events/s, raw consume records/s, CPU).

    CPU, in µs per event: `consumer` (this process while the consumer ran: its thread does
    the work, the others wait), `redis` (the server's, from INFO cpu) and `raw` (this process
    while the raw consumer read the topic). On a shared machine they are steadier than rates.
    """
    run = uuid.uuid4().hex[:8]
    settings = Settings(
        kafka_bootstrap_servers=bootstrap,
        redis_url=redis_url,
        topic_events=f"bench.metrics.{run}",
        topic_deadletter=f"bench.metrics.dlq.{run}",
        consumer_group_prefix=f"bench-{run}-",
        kafka_session_timeout_ms=6000,
    )
    ensure_topics(settings, [settings.topic_events, settings.topic_deadletter])
    raw_produce_rate(
        bootstrap=bootstrap,
        topic=settings.topic_events,
        payloads=_payloads(events, groups=50, members=2000),
    )
    started = time.process_time()
    raw = raw_consume_rate(bootstrap=bootstrap, topic=settings.topic_events, expect=events)
    cpu = {"raw": (time.process_time() - started) / events * 1e6}
    client = make_redis(redis_url)
    applier = Applier(client, tz=UTC_ZONE, history_days=settings.metrics_history_days)
    try:
        redis_before, started = _redis_cpu_seconds(client), time.process_time()
        # Raw records and overlap=True, as services/metrics/app.py runs it.
        rate = consumer_rate(
            settings=settings,
            group="metrics",
            handler=partial(handle_events, applier=applier),
            expect=events,
            timeout=180,
            records=True,
            overlap=True,
        )
        cpu["consumer"] = (time.process_time() - started) / events * 1e6
        cpu["redis"] = (_redis_cpu_seconds(client) - redis_before) / events * 1e6
    finally:
        client.close()
    return rate, raw, cpu


def _latency_ms(call: Any, repeats: int) -> float:
    call()  # warm-up
    samples = []
    for _ in range(max(repeats, 3)):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return median(samples)


def _consumer_row(bootstrap: str, redis_url: str, smoke: bool, repeats: int) -> dict[str, Any]:
    events = 2000 if smoke else 50_000
    if not smoke:  # warm-up
        consumer_rates(bootstrap=bootstrap, redis_url=redis_url, events=5000)
    measured = [
        consumer_rates(bootstrap=bootstrap, redis_url=redis_url, events=events)
        for _ in range(1 if smoke else repeats)
    ]
    applied, raw = median([m[0] for m in measured]), median([m[1] for m in measured])
    cpu = {k: median([m[2][k] for m in measured]) for k in ("consumer", "redis", "raw")}
    return row(
        name="metrics consumer apply rate",
        value=applied,
        unit="events/s",
        raw_name="raw kafka-python consume rate (same topic)",
        raw_value=raw,
        ratio=ratio_of(applied, raw),
        target=None if smoke else ">= 0.25",
        met=None if smoke else ratio_of(applied, raw) >= 0.25,
        notes=f"{events} events (90% messages; live order over the last hour, 2% up to a "
        "day late), 50 groups, 6 partitions, one ConsumerRunner from first batch to last "
        "event; ratio = value / raw; CPU per event: consumer process "
        f"{cpu['consumer']:.1f} µs + Redis {cpu['redis']:.1f} µs (raw consume "
        f"{cpu['raw']:.1f} µs per record)",
    )


def _memory_rows(
    client: redis.Redis, group: str, members: int, smoke: bool
) -> list[dict[str, Any]]:
    days, active_days = 90, 10
    before = int(client.info("memory")["used_memory"])
    started = time.perf_counter()
    applied = fill_group(
        client, group_id=group, members=members, days=days, active_days=active_days
    )
    fill_seconds = time.perf_counter() - started
    after = int(client.info("memory")["used_memory"])
    total, dedup, acquired, keys = group_memory(client, group)
    mb, per_100k = total / 1e6, acquired / 1e6 * 100_000 / members
    return [
        row(
            name=f"redis memory, {members} members over {days} days",
            value=mb,
            unit="MB",
            target=None if smoke else "< 100 MB",
            met=None if smoke else mb < 100,
            notes=f"{applied} events ({active_days} active days per member, 1 message "
            f"each, joins spread over the {days} days); MEMORY USAGE over {keys} keys; "
            f"of which dedup {dedup / 1e6:.1f} MB; INFO used_memory delta "
            f"{(after - before) / 1e6:.1f} MB; direct script fill "
            f"{applied / fill_seconds:.0f} events/s",
        ),
        row(
            name="redis memory, channel and inviter data",
            value=per_100k,
            unit="MB per 100,000 members",
            target=None if smoke else "< 10 MB",
            met=None if smoke else per_100k < 10,
            notes=f"jn, ch, ac:*, ai:* of the {members}-member group: {acquired / 1e6:.2f} MB "
            "(8 channels, half the members invited by an earlier one)",
        ),
    ]


def _timed_calls(
    client: redis.Redis, group: str, groups: list[str]
) -> list[tuple[str, float, Any, str]]:
    """Return (name, target ms, call, notes) of each query timed."""
    last = today(UTC_ZONE)
    since = start_of_day_ms(last - 29, UTC_ZONE)
    span: dict[str, Any] = dict(client=client, group_id=group, first_day=last - 89, last_day=last)
    recent = span | {"first_day": last - 29}
    retention = partial(cohorts.read_retention, **span, kind="day", periods=30, today=last)
    bitops = "one pipeline of BITOP/BITCOUNT"
    return [
        ("retention query, 90 day cohorts x 30 periods, exact", 250,
         partial(retention, mode="exact"), bitops),
        ("retention query, 90 day cohorts x 30 periods, unbounded", 250,
         partial(retention, mode="unbounded"), bitops),
        ("DAU/WAU/MAU query", 250,
         partial(queries.read_active, client, group_id=group, day=last), ""),
        ("leaderboard query, 30 days, top 100", 250,
         partial(queries.read_leaderboard, **recent, limit=100), ""),
        ("dormant page, 30 days, 100 members", 250,
         partial(queries.read_dormant, client, group_id=group, silent_since_ms=since,
                 limit=100, cursor=None), ""),
        ("channels query, 90 days", 100, partial(acquisition.read_channels, **span), ""),
        ("inviters query, 90 days, top 100", 100,
         partial(acquisition.read_inviters, **span, limit=100), ""),
        (f"overview query, {len(groups)} groups", 200,
         partial(overview.read_overview, client, allowed=set(groups), day=last, sort="dau",
                 limit=100, cursor=None),
         "groups of 20 members; sorted by dau, first page of 100"),
    ]  # fmt: skip


def _latency_rows(
    client: redis.Redis, group: str, members: int, smoke: bool, repeats: int
) -> list[dict[str, Any]]:
    groups = fill_groups(client, groups=50 if smoke else 1000, members=20)
    timed = _timed_calls(client, group, groups)
    out = []
    for name, limit_ms, call, notes in timed:
        ms = _latency_ms(call, repeats)
        out.append(
            row(
                name=name,
                value=ms,
                unit="ms",
                target=None if smoke else f"< {limit_ms:.0f} ms",
                met=None if smoke else ms < limit_ms,
                notes="; ".join(
                    [
                        *([] if name.startswith("overview") else [f"{members}-member group"]),
                        *([notes] if notes else []),
                        "median",
                    ]
                ),
            )
        )
    return out


def run(
    *, bootstrap: str, redis_url: str, database_url: str, smoke: bool = False, repeats: int = 3
) -> list[dict[str, Any]]:
    """Measure the metrics service; medians of `repeats` runs after a warm-up."""
    rows = [_consumer_row(bootstrap, redis_url, smoke, repeats)]
    members = 500 if smoke else 100_000
    # The fill sends pipelines of thousands of script calls: on a busy machine one takes
    # longer than the services' bounded socket timeout, which is for requests, not this.
    client = redis.Redis.from_url(redis_url, socket_timeout=300)
    group = f"bench:memory:{uuid.uuid4().hex[:8]}"
    try:
        rows += _memory_rows(client, group, members, smoke)
        rows += _latency_rows(client, group, members, smoke, repeats)
    finally:
        for pattern in (GroupKeys(group).prefix + "*", "qy:{bench:overview:*"):
            keys_left = list(client.scan_iter(match=pattern, count=5000))
            for start in range(0, len(keys_left), 1000):
                client.unlink(*keys_left[start : start + 1000])
        client.close()
    return rows


if __name__ == "__main__":
    import argparse
    import json

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    for result in run(
        bootstrap=args.bootstrap,
        redis_url=args.redis_url,
        database_url="",
        smoke=args.smoke,
        repeats=args.repeats,
    ):
        print(json.dumps(result, ensure_ascii=False))
