"""Scale-out: each consumer (metrics, moderation, campaigns, delivery) with 1 and 2 processes.

For each service and process count, fresh 6-partition topics and consumer groups; the
processes (`python -m services.<name>`, one consumer group) are started, given their
work (moderation: an ads rule per group; campaigns: a check-in and a challenge per group;
delivery: a Telegram source on the platform double, its own process, pacing off) and
warmed up until together they hold all six partitions. Then, per measured run, they are
frozen (SIGSTOP) while the topic is pre-filled, released (SIGCONT) at once, and timed
from the release until the records were all processed, by the sum of their own counters
(`qunyun_consumer_records_total`, delivery: `qunyun_delivery_receipts_total{outcome=
"delivered"}`). The speed-up is the 2-process rate over the 1-process rate measured in
the same call; the notes give the CPU the processes and the whole machine used, which
is what bounds it on a 2-core machine.
"""

from __future__ import annotations

import os
import random
import re
import secrets
import signal
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import orjson
from kafka import KafkaProducer

from services.common.auth import token_entry
from services.common.settings import QunyunConfig, Settings, Source, write_config
from tools.bench_e2e import (
    cpu_seconds,
    double_source,
    private_settings,
    serve_double,
    service_database,
    service_env,
)
from tools.bench_raw import median, row
from tools.localstack import free_port
from tools.simulate import generate, send_kafka
from tools.stack import replicas, start_service, stop_all, wait_ready

SERVICES = ("metrics", "moderation", "campaigns", "delivery")
PARTITIONS = 6
SOURCE, TG_SOURCE = "bench", "bench-tg"
BANNED = ("加微信", "代购")
# Long enough that processes frozen during a pre-fill keep their partitions.
SESSION_TIMEOUT_MS = 15000
# The consumer group whose records each service counts (before the prefix).
GROUPS = {"metrics": "metrics", "moderation": "moderation", "campaigns": "campaigns"}
COUNTER = re.compile(r"^(qunyun_\w+)\{([^}]*)\} ([0-9.e+]+)$")


@dataclass(frozen=True)
class Sizes:
    """How much each service is given per measured run."""

    groups: int
    members: int
    days: int
    actions: int

    @classmethod
    def of(cls, smoke: bool) -> Sizes:
        return cls(6, 20, 1, 60) if smoke else cls(60, 90, 2, 3000)


def _counter(url: str, name: str, match: dict[str, str]) -> float:
    """Sum the samples of a counter whose labels include `match`, from a process's /metrics."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    total = 0.0
    for line in text.splitlines():
        m = COUNTER.match(line)
        if m is None or m.group(1) != name:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2)))
        if all(labels.get(k) == v for k, v in match.items()):
            total += float(m.group(3))
    return total


def _held(url: str, group: str) -> set[tuple[str, int]]:
    """The (topic, partition) a process consumes for a group (those it exports a lag for)."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    held = set()
    for line in text.splitlines():
        m = COUNTER.match(line)
        if m is not None and m.group(1) == "qunyun_consumer_lag_messages":
            labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2)))
            if labels.get("group") == group:
                held.add((labels["topic"], int(labels["partition"])))
    return held


def _machine_busy() -> tuple[float, float]:
    """(busy, total) CPU jiffies of the whole machine so far, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]
    return float(sum(fields) - idle), float(sum(fields))


@dataclass
class Pool:
    """k processes of one service on one consumer group, and what counts their work."""

    service: str
    settings: Settings
    urls: list[str]
    pids: list[int]
    token: str

    @property
    def group(self) -> str:
        return self.settings.consumer_group_prefix + GROUPS.get(self.service, "delivery")

    def done(self) -> float:
        """Records processed so far, summed over the processes."""
        if self.service == "delivery":
            name, match = "qunyun_delivery_receipts_total", {"outcome": "delivered"}
        else:
            name, match = (
                "qunyun_consumer_records_total",
                {
                    "group": self.group,
                    "topic": self.settings.topic_events,
                    "outcome": "processed",
                },
            )
        return sum(_counter(url, name, match) for url in self.urls)

    def topic(self) -> str:
        if self.service == "delivery":
            return self.settings.topic_moderation_actions
        return self.settings.topic_events

    def holds_all(self) -> bool:
        """Whether the processes together hold every partition, each at least one."""
        held = [{p for t, p in _held(url, self.group) if t == self.topic()} for url in self.urls]
        return all(held) and set().union(*held) == set(range(PARTITIONS))

    def signal(self, signum: int) -> None:
        for pid in self.pids:
            os.kill(pid, signum)


@contextmanager
def _pool(
    *,
    service: str,
    processes: int,
    bootstrap: str,
    redis_url: str,
    database_url: str,
    double: str,
    workdir: Path,
) -> Iterator[Pool]:
    """Start `processes` processes of a service on private topics; stop them at the end."""
    settings = private_settings(bootstrap=bootstrap, redis_url=redis_url, name=f"scale-{service}")
    token = "qy_bench_" + secrets.token_urlsafe(16)
    config = write_config(
        workdir / f"{service}-{processes}.toml",
        QunyunConfig(
            sources=[
                Source(id=SOURCE, platform="generic", secret=secrets.token_hex(16)),
                double_source(TG_SOURCE, double, secret=secrets.token_hex(16)),
            ],
            tokens=[token_entry("bench", token, ["*"], ["read", "write"])],
        ),
    )
    env = service_env(
        settings=settings,
        config=config,
        database_url=service_database(database_url, workdir, f"{service}-{processes}"),
    )
    env |= {"KAFKA_SESSION_TIMEOUT_MS": str(SESSION_TIMEOUT_MS), "HOST": "127.0.0.1"}
    env.pop("PORT", None)
    names = replicas(service, processes)
    ports = {name: free_port() for name in names}
    procs = [
        start_service(name, port, env, workdir / f"{name}-{processes}.log")
        for name, port in ports.items()
    ]
    try:
        pending = wait_ready(ports, 180)
        if pending:
            raise RuntimeError(f"{', '.join(pending)} not ready after 180 s (logs: {workdir})")
        urls = [f"http://127.0.0.1:{port}" for port in ports.values()]
        yield Pool(service, settings, urls, [p.pid for p in procs], token)
    finally:
        if any(p.poll() is None for p in procs):
            for p in procs:  # a frozen process ignores SIGTERM until it runs again
                if p.poll() is None:
                    os.kill(p.pid, signal.SIGCONT)
        stop_all(procs)


def _events(sizes: Sizes, run: str) -> list[dict[str, Any]]:
    """Simulated community traffic: joins, messages (ads, check-ins), leaves, renames."""
    return list(
        generate(
            seed=7,
            groups=sizes.groups,
            members=sizes.members,
            days=sizes.days,
            source=SOURCE,
            group_prefix=f"bench:{run}",
            id_prefix=run,
            messages_per_member=2.0,
        )
    )


def _actions(sizes: Sizes, run: str) -> list[dict[str, Any]]:
    """`delete` actions for Telegram groups on the double, of messages never deleted before."""
    now = datetime.now(UTC).isoformat()
    first = random.randrange(10**8, 2 * 10**9)
    return [
        {
            "id": f"{run}-{i}",
            "case_id": f"case-{run}-{i}",
            "group_id": f"telegram:{-(10**12) - i % sizes.groups}",
            "source": TG_SOURCE,
            "member_id": f"telegram:{7_000_000 + i}",
            "event_id": f"ev-{run}-{i}",
            "message_id": str(first + i),
            "action": "delete",
            "duration_seconds": None,
            "rule_id": None,
            "reason": "bench",
            "created_at": now,
        }  # fmt: skip
        for i in range(sizes.actions)
    ]


def _post(pool: Pool, path: str, body: dict[str, Any]) -> dict[str, Any]:
    answer = httpx.post(
        f"{pool.urls[0]}{path}",
        json=body,
        headers={"Authorization": f"Bearer {pool.token}"},
        timeout=30,
    )
    if answer.status_code not in (200, 201):
        raise RuntimeError(f"POST {path}: {answer.status_code} {answer.text[:300]}")
    return dict(answer.json())


def _prepare(pool: Pool, groups: list[str], since: datetime) -> None:
    """Give the service its work in each group: an ads rule, or two running campaigns."""
    if pool.service == "moderation":
        params = {"keywords": list(BANNED), "allow": [], "match": "substring"}
        rule = {"name": "禁止广告", "kind": "keywords", "action": "delete", "params": params}
        for g in groups:
            _post(pool, f"/v1/groups/{g}/rules", rule)
    if pool.service == "campaigns":
        window = {"starts_at": since.isoformat(),
                  "ends_at": (datetime.now(UTC) + timedelta(days=1)).isoformat()}  # fmt: skip
        for g in groups:
            for body in (
                {"kind": "checkin", "title": "打卡", "params": {"keyword": "打卡", "points": 10}},
                {
                    "kind": "challenge",
                    "title": "活跃",
                    "params": {"goal_messages": 20, "points": 100},
                },
            ):
                _post(pool, f"/v1/groups/{g}/campaigns", {**body, **window})


def _fill(pool: Pool, records: list[dict[str, Any]]) -> None:
    if pool.service == "delivery":
        producer = KafkaProducer(bootstrap_servers=pool.settings.kafka_bootstrap_servers,
                                 acks="all", linger_ms=5)  # fmt: skip
        try:
            for r in records:
                producer.send(pool.topic(), key=r["group_id"].encode(), value=orjson.dumps(r))
            producer.flush(timeout=60)
        finally:
            producer.close(timeout=10)
    else:
        send_kafka(bootstrap=pool.settings.kafka_bootstrap_servers, topic=pool.topic(),
                   events=records)  # fmt: skip


def _wait_done(pool: Pool, target: float, timeout: float) -> float:
    """Poll until the processes processed `target` records; return when (perf_counter)."""
    deadline = time.monotonic() + timeout
    while True:
        if pool.done() >= target:
            return time.perf_counter()
        if time.monotonic() > deadline:
            raise RuntimeError(f"{pool.service}: {pool.done():.0f} of {target:.0f} in {timeout} s")
        time.sleep(0.05)


@dataclass(frozen=True)
class Measured:
    """One measured run: records/s, the processes' and the machine's CPU (cores)."""

    rate: float
    processes_cores: float
    machine_busy: float


def _records(pool: Pool, sizes: Sizes, run: str) -> list[dict[str, Any]]:
    return _actions(sizes, run) if pool.service == "delivery" else _events(sizes, run)


def _groups(pool: Pool, sizes: Sizes, run: str) -> list[str]:
    return sorted({r["group_id"] for r in _records(pool, sizes, run)})


def _measure(pool: Pool, records: list[dict[str, Any]]) -> Measured:
    """Freeze the processes, pre-fill the topic, release them, time until all processed."""
    before = pool.done()
    pool.signal(signal.SIGSTOP)
    try:
        _fill(pool, records)
    finally:
        pool.signal(signal.SIGCONT)
    cpu = sum(cpu_seconds(pid) for pid in pool.pids)
    busy, total = _machine_busy()
    started = time.perf_counter()
    finished = _wait_done(pool, before + len(records), timeout=300)
    seconds = finished - started
    busy2, total2 = _machine_busy()
    cores = (sum(cpu_seconds(pid) for pid in pool.pids) - cpu) / seconds
    machine = (busy2 - busy) / max(total2 - total, 1) * (os.cpu_count() or 1)
    return Measured(len(records) / seconds, cores, machine)


@dataclass(frozen=True)
class DbLoad:
    """What the measured runs cost PostgreSQL, per record (pg_stat_database)."""

    commits: float
    rows: float


def _pg_counters(database_url: str) -> tuple[int, int]:
    """(commits, rows inserted + updated + deleted) of the database so far."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(database_url)
    try:
        with engine.connect() as conn:
            commits, rows = conn.execute(
                sqlalchemy.text(
                    "SELECT xact_commit, tup_inserted + tup_updated + tup_deleted "
                    "FROM pg_stat_database WHERE datname = current_database()"
                )
            ).one()
    finally:
        engine.dispose()
    return int(commits), int(rows)


# A PostgreSQL 15 backend flushes its statistics at most once a second, and an idle one
# within 10 s: wait that long around the measured runs for pg_stat_database to hold them.
PG_STATS_FLUSH_SECONDS = 11.0


def measure(
    *,
    service: str,
    processes: int,
    sizes: Sizes,
    repeats: int,
    bootstrap: str,
    redis_url: str,
    database_url: str,
    double: str,
    workdir: Path,
    db_load: bool = False,
) -> tuple[list[Measured], DbLoad | None]:
    """Start the pool, warm it up until it holds every partition, then measure `repeats` runs;
    with db_load (and PostgreSQL), also what the runs cost the database per record."""
    with _pool(service=service, processes=processes, bootstrap=bootstrap, redis_url=redis_url,
               database_url=database_url, double=double, workdir=workdir) as pool:  # fmt: skip
        runs = [f"s{uuid.uuid4().hex[:6]}" for _ in range(repeats)]
        since = datetime.now(UTC) - timedelta(days=sizes.days + 1)
        warm_sizes = Sizes(sizes.groups, 3, 1, sizes.groups * 3)
        for run in runs:
            _prepare(pool, _groups(pool, sizes, run), since)
        deadline = time.monotonic() + 120
        while not pool.holds_all():  # a warm-up wave at a time until the group is settled
            if time.monotonic() > deadline:
                raise RuntimeError(f"{service}: {processes} processes never held every partition")
            wave = _records(pool, warm_sizes, f"w{uuid.uuid4().hex[:6]}")
            before = pool.done()
            _fill(pool, wave)
            _wait_done(pool, before + len(wave), timeout=120)
        counting = db_load and database_url.startswith("postgresql")
        if counting:
            time.sleep(PG_STATS_FLUSH_SECONDS)
            commits, rows = _pg_counters(database_url)
        batches = [_records(pool, sizes, run) for run in runs]
        measured = [_measure(pool, records) for records in batches]
        if not counting:
            return measured, None
        time.sleep(PG_STATS_FLUSH_SECONDS)
        commits2, rows2 = _pg_counters(database_url)
        count = sum(len(b) for b in batches)
        return measured, DbLoad((commits2 - commits) / count, (rows2 - rows) / count)


def _row(
    service: str, one: list[Measured], two: list[Measured], count: int, db: DbLoad | None
) -> dict[str, Any]:
    rate1, rate2 = median([m.rate for m in one]), median([m.rate for m in two])
    speedup = rate2 / rate1 if rate1 > 0 else 0.0
    unit = "records/s" if service == "delivery" else "events/s"
    cores = "; ".join(
        f"{n} process{'es' if n > 1 else ''}: the processes used "
        f"{median([m.processes_cores for m in ms]):.2f} cores, the machine "
        f"{median([m.machine_busy for m in ms]):.2f} of {os.cpu_count()}"
        for n, ms in ((1, one), (2, two))
    )
    what = "delete actions to the double" if service == "delivery" else "simulated events"
    load = (
        ""
        if db is None
        else f"; PostgreSQL per record (1 process): {db.commits:.3f} commits, {db.rows:.2f} rows "
        f"written (pg_stat_database), i.e. {db.commits * 1000:.0f} commits/s and "
        f"{db.rows * 1000:,.0f} rows/s per 1,000 records/s"
    )
    return row(
        name=f"scale-out: {service}, 2 processes vs 1 (6 partitions)",
        value=rate2,
        unit=unit,
        raw_name=f"1 {service} process, same records",
        raw_value=rate1,
        ratio=speedup,
        target=None,
        notes=f"{count} {what} pre-filled while the processes were frozen, from their release "
        f"to the last record processed; median of {len(one)}; ratio = speed-up; {cores}{load}",
    )


def run(
    *, bootstrap: str, redis_url: str, database_url: str, smoke: bool = False, repeats: int = 3
) -> list[dict[str, Any]]:
    """Measure every consumer with 1 and 2 processes (smoke: metrics only, tiny)."""
    sizes, repeats = Sizes.of(smoke), (1 if smoke else repeats)
    services = ("metrics",) if smoke else SERVICES
    rows = []
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-scale-")))
        # The double serves delivery alone: the smoke (metrics only) starts no process for it.
        double = (
            stack.enter_context(serve_double(workdir))
            if "delivery" in services
            else "http://127.0.0.1:9"  # never called: no delivery process runs
        )
        pools = partial(
            measure, sizes=sizes, repeats=repeats, bootstrap=bootstrap, redis_url=redis_url,
            database_url=database_url, double=double, workdir=workdir,
        )  # fmt: skip
        for service in services:
            one, db = pools(service=service, processes=1, db_load=service != "metrics")
            two, _ = pools(service=service, processes=2)
            count = sizes.actions if service == "delivery" else len(_events(sizes, "count"))
            rows.append(_row(service, one, two, count, db))
    return rows


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS"))
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL"))
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    servers = {"bootstrap": args.bootstrap, "redis_url": args.redis_url}
    for r in run(**servers, database_url=args.database_url, smoke=args.smoke, repeats=args.repeats):
        print(orjson.dumps(r).decode())
