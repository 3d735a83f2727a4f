"""Benchmark of the metrics service: consumer throughput, Redis memory and query latency.

- consumer: events/s one metrics ConsumerRunner applies (decode + Lua apply + commit),
  beside the raw kafka-python consume rate of the same topic, measured in the same run;
- memory: Redis bytes held by one group of 100,000 members active over 90 days, filled
  straight through the apply script in big pipelines (not through Kafka);
- latency: a 90-day day-cohort retention query (30 periods, both modes), DAU/WAU/MAU,
  a 30-day leaderboard and a dormant page on that group.
"""

from __future__ import annotations

import random
import time
import uuid
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import redis

from services.common.kafka.admin import ensure_topics
from services.common.redis_client import make_redis
from services.common.settings import Settings
from services.metrics import cohorts, queries
from services.metrics.apply import Applier, Row, script_row
from services.metrics.consumer import handle_batch
from services.metrics.keys import GroupKeys, start_of_day_ms, today
from tools.bench_raw import (
    consumer_rate,
    median,
    ratio_of,
    raw_consume_rate,
    raw_produce_rate,
    row,
)

UTC_ZONE = ZoneInfo("UTC")


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


def consumer_rates(*, bootstrap: str, redis_url: str, events: int) -> tuple[float, float]:
    """Produce a fresh topic; return (metrics consumer events/s, raw consume records/s)."""
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
    raw = raw_consume_rate(bootstrap=bootstrap, topic=settings.topic_events, expect=events)
    client = make_redis(redis_url)
    applier = Applier(client, tz=UTC_ZONE, history_days=settings.metrics_history_days)
    try:
        rate = consumer_rate(
            settings=settings,
            group="metrics",
            handler=partial(handle_batch, applier=applier),
            expect=events,
            timeout=180,
        )
    finally:
        client.close()
    return rate, raw


def fill_group(
    client: redis.Redis, *, group_id: str, members: int, days: int, active_days: int
) -> int:
    """Apply joins and one message per active day for every member; return events applied."""
    applier = Applier(client, tz=UTC_ZONE, history_days=400)
    rng = random.Random(members)
    first = today(UTC_ZONE) - days + 1
    batch: list[Row] = []
    applied = 0
    pipe = client.pipeline(transaction=False)

    def flush() -> None:
        nonlocal batch, pipe
        if batch:
            applier.queue(pipe, group_id, batch)
            batch = []
        if len(pipe) >= 20:
            pipe.execute()
            pipe = client.pipeline(transaction=False)

    for member in range(members):
        member_id = f"u:{member:06d}"
        join_day = first + member * days // members
        ms = start_of_day_ms(join_day, UTC_ZONE) + rng.randrange(86_400_000)
        batch.append(
            script_row(
                kind="j",
                source="bench",
                event_id=f"j{member}",
                member_id=member_id,
                ts_ms=ms,
                day=join_day,
            )
        )
        span = range(join_day, first + days)
        for n, day in enumerate(rng.sample(span, min(active_days, len(span)))):
            ms = start_of_day_ms(day, UTC_ZONE) + rng.randrange(86_400_000)
            batch.append(
                script_row(
                    kind="m",
                    source="bench",
                    event_id=f"m{member}-{n}",
                    member_id=member_id,
                    ts_ms=ms,
                    day=day,
                )
            )
        applied += 1 + min(active_days, len(span))
        if len(batch) >= 5000:
            flush()
    flush()
    pipe.execute()
    return applied


def group_memory(client: redis.Redis, group_id: str) -> tuple[int, int, int]:
    """Return (bytes of all the group's keys, bytes of its dedup keys, number of keys)."""
    total = dedup = keys = 0
    prefix = GroupKeys(group_id).prefix
    for key in client.scan_iter(match=prefix + "*", count=5000):
        used = client.memory_usage(key, samples=0) or 0
        total += used
        keys += 1
        if key.startswith((prefix + "dd:").encode()):
            dedup += used
    return total, dedup, keys


def _latency_ms(call: Any, repeats: int) -> float:
    call()  # warm-up
    samples = []
    for _ in range(max(repeats, 3)):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return median(samples)


def run(
    *, bootstrap: str, redis_url: str, database_url: str, smoke: bool = False, repeats: int = 3
) -> list[dict[str, Any]]:
    """Measure the metrics service; medians of `repeats` runs after a warm-up."""
    rows = []
    events = 2000 if smoke else 50_000
    if not smoke:  # warm-up
        consumer_rates(bootstrap=bootstrap, redis_url=redis_url, events=5000)
    measured = [
        consumer_rates(bootstrap=bootstrap, redis_url=redis_url, events=events)
        for _ in range(1 if smoke else repeats)
    ]
    applied, raw = median([m[0] for m in measured]), median([m[1] for m in measured])
    rows.append(
        row(
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
            "event; ratio = value / raw",
        )
    )

    members, days, active_days = (500, 90, 10) if smoke else (100_000, 90, 10)
    client = make_redis(redis_url)
    group = f"bench:memory:{uuid.uuid4().hex[:8]}"
    try:
        before = int(client.info("memory")["used_memory"])
        started = time.perf_counter()
        applied_events = fill_group(
            client, group_id=group, members=members, days=days, active_days=active_days
        )
        fill_seconds = time.perf_counter() - started
        after = int(client.info("memory")["used_memory"])
        total, dedup, keys = group_memory(client, group)
        mb = total / 1e6
        rows.append(
            row(
                name=f"redis memory, {members} members over {days} days",
                value=mb,
                unit="MB",
                target="< 100 MB" if not smoke else None,
                met=mb < 100 if not smoke else None,
                notes=f"{applied_events} events ({active_days} active days per member, 1 message "
                f"each, joins spread over the {days} days); MEMORY USAGE over {keys} keys; "
                f"of which dedup {dedup / 1e6:.1f} MB; INFO used_memory delta "
                f"{(after - before) / 1e6:.1f} MB; direct script fill "
                f"{applied_events / fill_seconds:.0f} events/s",
            )
        )
        last = today(UTC_ZONE)
        first = last - days + 1
        for mode in ("exact", "unbounded"):
            ms = _latency_ms(
                lambda mode=mode: cohorts.read_retention(
                    client,
                    group_id=group,
                    kind="day",
                    mode=mode,
                    first_day=first,
                    last_day=last,
                    periods=30,
                    today=last,
                ),
                repeats,
            )
            rows.append(
                row(
                    name=f"retention query, 90 day cohorts x 30 periods, {mode}",
                    value=ms,
                    unit="ms",
                    target=None if smoke else "< 250 ms",
                    met=None if smoke else ms < 250,
                    notes=f"{members} members; one pipeline of BITOP/BITCOUNT; median",
                )
            )
        ms = _latency_ms(lambda: queries.read_active(client, group_id=group, day=last), repeats)
        rows.append(
            row(
                name="DAU/WAU/MAU query",
                value=ms,
                unit="ms",
                target=None if smoke else "< 250 ms",
                met=None if smoke else ms < 250,
                notes=f"{members} members; median",
            )
        )
        ms = _latency_ms(
            lambda: queries.read_leaderboard(
                client, group_id=group, first_day=last - 29, last_day=last, limit=100
            ),
            repeats,
        )
        rows.append(
            row(
                name="leaderboard query, 30 days, top 100",
                value=ms,
                unit="ms",
                target=None if smoke else "< 250 ms",
                met=None if smoke else ms < 250,
                notes=f"{members} members; median",
            )
        )
        since = start_of_day_ms(last - 29, UTC_ZONE)
        ms = _latency_ms(
            lambda: queries.read_dormant(
                client, group_id=group, silent_since_ms=since, limit=100, cursor=None
            ),
            repeats,
        )
        rows.append(
            row(
                name="dormant page, 30 days, 100 members",
                value=ms,
                unit="ms",
                target=None if smoke else "< 250 ms",
                met=None if smoke else ms < 250,
                notes=f"{members} members; median",
            )
        )
    finally:
        keys_left = list(client.scan_iter(match=GroupKeys(group).prefix + "*", count=5000))
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
