"""Delivery throughput: records carried out per second against the platform double.

One delivery process (`python -m services.delivery`) consumes a private actions topic; its
telegram source points at the platform double (its own process) with pacing out of the way
(very high `rate_per_second` and `rate_per_group_per_minute`). Each run produces `delete`
actions for many Telegram groups and times from the first record produced to the last
`delivered` receipt on the receipts topic: consumer → durable queue → dispatcher →
`deleteMessage` → receipt through the outbox.

The raw limit, measured in the same run against the same double: a bare
`httpx.AsyncClient` with the dispatcher's pool limits (`HTTP_LIMITS`) making the same
`deleteMessage` calls with its concurrency (`max_in_flight`), from the first call to the
last answer.

A second row is the end-to-end benchmark's delivery load without the rest of the stack:
`delete` actions produced open-loop at 100/s over 100 groups (one every second per group,
as moderation publishes them at 500 webhooks/s), and the delivery process's CPU per
record. Records trickle in, so what each costs is the per-transaction and per-round work
(no batch to share it), the figure issue 19's latency depends on.

A third row is the claim's cost as one group's backlog grows: the claim round that finds
every group's head (`claim_heads`) with 5,000 and with 50,000 rows queued behind one
group's head (and 100 other groups of one row), in a queue of its own in the same
database. Ten times the backlog may cost at most ten times as much: a claim that compared
the rows of a group with each other (PostgreSQL's hash anti-join of the old `NOT EXISTS`
query) cost about a hundred times as much, 0.5 s and then 51 s.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import tempfile
import time
import uuid
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from random import Random
from typing import Any

import httpx
import orjson
import sqlalchemy as sa
from kafka import KafkaProducer
from sqlmodel import Session, SQLModel

from services.common.db import make_engine, utcnow
from services.common.settings import QunyunConfig, write_config
from services.delivery.dispatcher import HTTP_LIMITS, Dispatcher
from services.delivery.models import Delivery
from services.delivery.store import claim_heads, insert_new
from tools.bench_e2e import (
    PIDS,
    TopicWatcher,
    cpu_seconds,
    double_calls,
    double_source,
    private_settings,
    serve_double,
    service,
    service_database,
    service_env,
)
from tools.bench_raw import median, percentile, ratio_of, row
from tools.platform_double import DoubleConfig

SOURCE = "bench-tg-fast"
TARGET_RATIO = 0.5
TRICKLE_RATE, TRICKLE_GROUPS = 100.0, 100
TARGET_TRICKLE_CPU_MS = 2.5
BACKLOGS, TARGET_CLAIM_GROWTH = (5_000, 50_000), 10.0
CONCURRENCY = int(inspect.signature(Dispatcher).parameters["max_in_flight"].default)

# One call: (chat id, message id).
Target = tuple[int, int]


def _targets(*, count: int, groups: int, seed: int) -> list[Target]:
    """`count` distinct messages spread round-robin over `groups` chats."""
    base = Random(seed).randrange(10**8, 2 * 10**9)
    return [(-(10**12) - g, base + i) for i, g in ((i, i % groups) for i in range(count))]


def _actions(targets: list[Target], run: str) -> list[tuple[str, bytes, bytes]]:
    """A `delete` action record per target: (record id, key, value)."""
    now = datetime.now(UTC).isoformat()
    out = []
    for i, (chat, message_id) in enumerate(targets):
        record_id, group = f"{run}-{i}", f"telegram:{chat}"
        value = {
            "id": record_id, "case_id": f"case-{record_id}", "group_id": group,
            "source": SOURCE, "member_id": f"telegram:{7_000_000 + i % 997}",
            "event_id": f"ev-{record_id}", "message_id": str(message_id), "action": "delete",
            "duration_seconds": None, "rule_id": None, "reason": "bench", "created_at": now,
        }  # fmt: skip
        out.append((record_id, group.encode(), orjson.dumps(value)))
    return out


def _delivery_rate(
    *, producer: KafkaProducer, topic: str, watcher: TopicWatcher, targets: list[Target]
) -> tuple[float, float]:
    """Produce a delete action per target; records/s from the first send to the last receipt,
    and the delivery process's CPU milliseconds per record."""
    records = _actions(targets, f"dl-{uuid.uuid4().hex[:8]}")
    ids = {record_id for record_id, _, _ in records}
    cpu = cpu_seconds(PIDS["delivery"])
    started = time.perf_counter()
    for _, key, value in records:
        producer.send(topic, key=key, value=value)
    producer.flush(timeout=60)
    missing = watcher.wait_for(ids, timeout=60 + len(ids) / 50)
    if missing:
        raise RuntimeError(f"delivery: {missing} of {len(ids)} receipts did not arrive")
    outcomes = {watcher.records[i].get("outcome") for i in ids}
    if outcomes != {"delivered"}:
        raise RuntimeError(f"delivery receipts were {sorted(map(str, outcomes))}, not delivered")
    cpu_ms = (cpu_seconds(PIDS["delivery"]) - cpu) * 1000 / len(ids)
    return len(ids) / (max(watcher.arrived[i] for i in ids) - started), cpu_ms


def _trickle_cpu(
    *, producer: KafkaProducer, topic: str, watcher: TopicWatcher, targets: list[Target]
) -> tuple[float, list[float]]:
    """Produce a delete action per target at TRICKLE_RATE/s (open loop); the delivery
    process's CPU milliseconds per record, from the first send to the last receipt, and
    each record's send → receipt milliseconds."""
    records = _actions(targets, f"tr-{uuid.uuid4().hex[:8]}")
    ids = {record_id for record_id, _, _ in records}
    sent: dict[str, float] = {}
    cpu = cpu_seconds(PIDS["delivery"])
    started = time.perf_counter()
    for i, (record_id, key, value) in enumerate(records):
        delay = started + i / TRICKLE_RATE - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        sent[record_id] = time.perf_counter()
        producer.send(topic, key=key, value=value)
        producer.flush(timeout=10)
    missing = watcher.wait_for(ids, timeout=60 + len(ids) / 50)
    if missing:
        raise RuntimeError(f"delivery (trickle): {missing} of {len(ids)} receipts did not arrive")
    cpu_ms = (cpu_seconds(PIDS["delivery"]) - cpu) * 1000 / len(ids)
    return cpu_ms, [(watcher.arrived[i] - at) * 1000 for i, at in sent.items()]


async def _bare_calls(url: str, targets: list[Target], concurrency: int) -> float:
    pending = iter(targets)
    async with httpx.AsyncClient(limits=HTTP_LIMITS) as http:

        async def worker() -> None:
            for chat, message_id in pending:
                resp = await http.post(url, json={"chat_id": chat, "message_id": message_id})
                if resp.status_code != 200 or resp.json().get("ok") is not True:
                    raise RuntimeError(f"bare deleteMessage answered {resp.status_code}")

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return len(targets) / (time.perf_counter() - started)


def bare_rate(*, double: str, targets: list[Target], concurrency: int = CONCURRENCY) -> float:
    """The same deleteMessage calls from a bare httpx.AsyncClient; calls/s."""
    url = f"{double}/bot{DoubleConfig().telegram_token}/deleteMessage"
    return asyncio.run(_bare_calls(url, targets, concurrency))


def _queue_rows(backlog: int, other_groups: int) -> list[dict[str, Any]]:
    now = utcnow()
    groups = ["backlog"] * backlog + [f"g{i}" for i in range(other_groups)]
    return [
        {"id": f"dl_{i}", "ref_id": f"r{i}", "ref_topic": "bench", "group_id": group,
         "source": SOURCE, "platform": "telegram", "operation": "delete",
         "payload": {"id": f"r{i}", "group_id": group, "action": "delete"},
         "state": "pending", "step": 0, "attempts": 0, "failures": 0, "detail": "",
         "next_attempt_at": now, "created_at": now, "updated_at": now}
        for i, group in enumerate(groups)
    ]  # fmt: skip


def _claim_ms(engine: sa.Engine, *, backlog: int, rounds: int) -> float:
    """Median ms of a claim round over a fresh queue with `backlog` rows behind one head."""
    table = Delivery.__table__  # type: ignore[attr-defined]
    with engine.begin() as conn:
        conn.execute(sa.delete(table))
        rows = _queue_rows(backlog, other_groups=100)
        for start in range(0, len(rows), 5_000):
            insert_new(conn, rows[start : start + 5_000])
        # No ANALYZE: the planner's statistics are those of the empty queue, as they are
        # in production right after a backlog built up.
    spent = []
    for _ in range(rounds):
        with Session(engine) as session:
            started = time.perf_counter()
            claim_heads(session, limit=64)
            spent.append((time.perf_counter() - started) * 1000)
            session.rollback()  # the same question each round
    return median(spent)


def claim_growth(database_url: str, workdir: Path, *, backlogs: tuple[int, int]) -> list[float]:
    """A claim round's ms with each backlog, in a queue of its own (a schema of its own on
    PostgreSQL, a file of its own on SQLite)."""
    url = service_database(database_url, workdir, "claims")
    base = make_engine(url)
    schema = f"bench_claims_{uuid.uuid4().hex[:8]}" if url.startswith("postgresql") else None
    try:
        if schema:
            with base.begin() as conn:
                conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        engine = base.execution_options(schema_translate_map={None: schema}) if schema else base
        SQLModel.metadata.create_all(engine, tables=[Delivery.__table__])  # type: ignore[attr-defined]
        return [_claim_ms(engine, backlog=b, rounds=15) for b in backlogs]
    finally:
        if schema:
            with base.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        base.dispose()


def run(
    *, bootstrap: str, redis_url: str, database_url: str, smoke: bool = False, repeats: int = 3
) -> list[dict[str, Any]]:
    """Measure delivery's records/s against the double and the bare client's calls/s."""
    count, groups = (100, 10) if smoke else (5000, 200)
    repeats = 1 if smoke else repeats
    settings = private_settings(bootstrap=bootstrap, redis_url=redis_url, name="delivery")
    delivered, bare, cpu, trickle = [], [], [], []
    latencies: list[float] = []
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-dl-")))
        double = stack.enter_context(serve_double(workdir))
        config = write_config(
            workdir / "qunyun.toml",
            QunyunConfig(sources=[double_source(SOURCE, double, secret="unused")]),
        )
        db = service_database(database_url, workdir, "delivery")
        env = service_env(settings=settings, config=config, database_url=db)
        stack.enter_context(service(name="delivery", env=env, log_dir=workdir))
        watcher = TopicWatcher(
            bootstrap=bootstrap, topic=settings.topic_delivery_receipts, key="ref_id"
        )
        stack.callback(watcher.close)
        producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=2)
        stack.callback(producer.close, 10)
        topic = settings.topic_moderation_actions
        producer.partitions_for(topic)
        warm = _targets(count=min(count // 2, 100), groups=groups, seed=0)
        _delivery_rate(producer=producer, topic=topic, watcher=watcher, targets=warm)
        bare_rate(double=double, targets=_targets(count=len(warm), groups=groups, seed=100))
        for k in range(repeats):
            targets = _targets(count=count, groups=groups, seed=k + 1)
            rate, cpu_ms = _delivery_rate(
                producer=producer, topic=topic, watcher=watcher, targets=targets
            )
            delivered.append(rate)
            cpu.append(cpu_ms)
            bare.append(bare_rate(double=double, targets=_targets(count=count, groups=groups,
                                                                   seed=k + 101)))  # fmt: skip
            trickle_ms, spans = _trickle_cpu(
                producer=producer, topic=topic, watcher=watcher,
                targets=_targets(count=count // 5, groups=TRICKLE_GROUPS, seed=k + 201),
            )  # fmt: skip
            trickle.append(trickle_ms)
            latencies.extend(spans)
        calls = len(double_calls(double, "deleteMessage"))
        backlogs = (500, 5_000) if smoke else BACKLOGS
        small, large = claim_growth(database_url, workdir, backlogs=backlogs)
        database = "PostgreSQL" if database_url.startswith("postgresql") else "SQLite"
    value, raw = median(delivered), median(bare)
    ratio = ratio_of(value, raw)
    notes = (
        f"{count} delete actions over {groups} Telegram groups per run, pacing off, one delivery "
        f"process ({CONCURRENCY} in flight), first record produced → last delivered receipt; "
        f"bare: {CONCURRENCY} concurrent calls; median of {repeats} after a warm-up; "
        f"{calls} deleteMessage calls at the double; ratio = value / raw; delivery's CPU "
        f"{median(cpu):.2f} ms per record; load average {os.getloadavg()[0]:.1f} on "
        f"{os.cpu_count()} CPUs"
    )
    return [
        row(name="delivery: records carried out per second (telegram delete, double)",
            value=value, unit="records/s", raw_name="bare httpx.AsyncClient, same calls",
            raw_value=raw, ratio=ratio, target=f">= {TARGET_RATIO:g}",
            met=None if smoke else ratio >= TARGET_RATIO, notes=notes),
        row(name="delivery: CPU per record, records trickling in (telegram delete, double)",
            value=median(trickle), unit="ms", target=f"<= {TARGET_TRICKLE_CPU_MS:g} ms",
            met=None if smoke else median(trickle) <= TARGET_TRICKLE_CPU_MS,
            notes=f"{count // 5} delete actions at {TRICKLE_RATE:g}/s open-loop over "
                  f"{TRICKLE_GROUPS} groups (the e2e benchmark's delivery load at 500 webhooks/s), "
                  f"first sent → last receipt; the delivery process's CPU from /proc; median "
                  f"of {repeats}; send → receipt p50 {percentile(latencies, 50):.0f} ms, p99 "
                  f"{percentile(latencies, 99):.0f} ms"),
        row(name=f"delivery: claim round with {backlogs[1]:,} rows queued behind one group",
            value=large, unit="ms", raw_name=f"the same with {backlogs[0]:,} queued",
            raw_value=small, ratio=ratio_of(large, small),
            target=f"<= {TARGET_CLAIM_GROWTH:g} (linear)",
            met=None if smoke else ratio_of(large, small) <= TARGET_CLAIM_GROWTH,
            notes=f"claim_heads (limit 64) over a queue of its own with 100 other groups of "
                  f"one row, {database}, statistics not refreshed after the fill; "
                  f"median of 15 rounds; ratio = growth for {backlogs[1] // backlogs[0]}x "
                  f"the backlog"),
    ]  # fmt: skip
