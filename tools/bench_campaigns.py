"""Benchmark of the campaigns service: participation events/s of one campaigns consumer.

Every group has an active check-in (keyword 打卡, streak rewards) and an active
challenge (20 messages) running; 10% of the messages are check-ins. One
ConsumerRunner with the real handler (dedup rows, participation upserts, grants, the
campaign cache, the outbox relay publishing to campaigns.rewards.v1, offset commit) and the
service's poll size (`events_settings`) reads a fresh topic, timed until its outbox is
drained; beside it, the raw kafka-python consume rate of the same topic, measured in the
same run. The notes give the CPU per event of the consumer process and, when PostgreSQL
runs on this machine, of its backends serving the consumer (/proc of their pids).
"""

from __future__ import annotations

import os
import random
import time
import uuid
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import orjson
import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from services.campaigns.app import migrate_campaigns
from services.campaigns.consumer import events_settings, handle_batch
from services.campaigns.effects import Topics, relay
from services.campaigns.models import Outbox
from services.campaigns.planning import create_campaign
from services.campaigns.running import CampaignCache
from services.campaigns.schemas import CampaignCreate
from services.common.db import make_engine
from services.common.kafka.admin import ensure_topics
from services.common.kafka.producer import ProducerHandle
from services.common.settings import Settings
from tools.bench_raw import (
    consumer_rate,
    median,
    ratio_of,
    raw_consume_rate,
    raw_produce_rate,
    row,
)

GROUPS = 10
MEMBERS = 300


def _payloads(run: str, count: int) -> list[tuple[bytes | None, bytes]]:
    rng = random.Random(count)
    now = datetime.now(UTC)
    out: list[tuple[bytes | None, bytes]] = []
    for n in range(count):
        group = f"bench:{run}:{rng.randrange(GROUPS)}"
        text = "打卡" if rng.random() < 0.1 else "今天的分享很有用，谢谢大家"
        body = {
            "id": f"{run}-{n}",
            "source": "bench",
            "type": "message.created",
            "group_id": group,
            "member_id": f"u:{rng.randrange(MEMBERS)}",
            "occurred_at": (now - timedelta(seconds=rng.randrange(3600))).isoformat(),
            "data": {"message_id": f"m{n}", "text": text},
        }
        out.append((group.encode(), orjson.dumps(body)))
    return out


def _campaigns(engine: Any, run: str) -> None:
    now = datetime.now(UTC)
    window = {"starts_at": now - timedelta(days=1), "ends_at": now + timedelta(days=1)}
    with Session(engine) as session:
        for g in range(GROUPS):
            for body in (
                {
                    "kind": "checkin",
                    "title": "bench check-in",
                    "params": {
                        "keyword": "打卡",
                        "points": 10,
                        "streak_rewards": [{"days": 1, "points": 1, "badge": "first"}],
                    },
                },
                {
                    "kind": "challenge",
                    "title": "bench challenge",
                    "params": {"goal_messages": 20, "points": 100, "badge": "活跃之星"},
                },
            ):
                create_campaign(
                    session=session,
                    group_id=f"bench:{run}:{g}",
                    body=CampaignCreate.model_validate({**body, **window}),
                    now=now,
                )
        session.commit()  # create_campaign flushes; the caller owns the transaction


class _Finish:
    """Wrap the handler: note when the last expected event was handled."""

    def __init__(self, handler: Any, expect: int) -> None:
        self.handler = handler
        self.expect = expect
        self.count = 0
        self.at = 0.0

    def __call__(self, events: list[Any]) -> None:
        self.handler(events)
        self.count += len(events)
        if self.count >= self.expect and not self.at:
            self.at = time.perf_counter()


def _drained(engine: Any, timeout: float = 120.0) -> float:
    """Wait until the outbox holds nothing unpublished; return when that was seen."""
    deadline = time.monotonic() + timeout
    query = select(func.count()).select_from(Outbox).where(col(Outbox.published_at).is_(None))
    while True:
        with Session(engine) as session:
            if not session.exec(query).one():
                return time.perf_counter()
        if time.monotonic() > deadline:
            raise RuntimeError("the campaigns outbox was not drained")
        time.sleep(0.005)


def _backends_cpu(engine: Any, app: str) -> float | None:
    """CPU seconds so far of the PostgreSQL backends serving `app` (their /proc stat), or None
    when the server's processes are not visible here (another host, SQLite)."""
    if engine.dialect.name != "postgresql":
        return None
    with engine.connect() as conn:
        pids = conn.execute(
            sa.text("SELECT pid FROM pg_stat_activity WHERE application_name = :app"),
            {"app": app},
        ).scalars()
        ticks = 0
        try:
            for pid in pids:
                with open(f"/proc/{pid}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
                ticks += int(fields[11]) + int(fields[12])  # utime + stime
        except OSError:
            return None
    return ticks / os.sysconf("SC_CLK_TCK")


def consumer_rates(
    *, bootstrap: str, redis_url: str, database_url: str, events: int
) -> tuple[float, float, float, float | None]:
    """Produce a fresh topic; return (campaigns consumer events/s, raw consume records/s,
    the consumer process's CPU µs per event, its PostgreSQL backends' CPU µs per event).

    The consumer runs as the service runs it: the campaign cache and the outbox relay
    woken after each batch; its time runs until the last event is handled and every
    record it queued is published."""
    run = uuid.uuid4().hex[:8]
    settings = Settings(
        kafka_bootstrap_servers=bootstrap,
        redis_url=redis_url,
        database_url=database_url,
        topic_events=f"bench.campaigns.{run}",
        topic_campaign_rewards=f"bench.campaigns.rewards.{run}",
        topic_campaign_notifications=f"bench.campaigns.notifications.{run}",
        topic_deadletter=f"bench.campaigns.dlq.{run}",
        consumer_group_prefix=f"bench-{run}-",
        kafka_session_timeout_ms=6000,
    )
    ensure_topics(
        settings,
        [
            settings.topic_events,
            settings.topic_campaign_rewards,
            settings.topic_campaign_notifications,
            settings.topic_deadletter,
        ],
    )
    app = f"bench-campaigns-{run}"
    tagged = database_url
    if database_url.startswith("postgresql"):
        tagged += ("&" if "?" in database_url else "?") + f"application_name={app}"
    engine = make_engine(tagged)
    _campaigns(engine, run)
    raw_produce_rate(
        bootstrap=bootstrap, topic=settings.topic_events, payloads=_payloads(run, events)
    )
    raw = raw_consume_rate(bootstrap=bootstrap, topic=settings.topic_events, expect=events)
    producer = ProducerHandle(settings)
    outbox = relay(engine=engine, producer=producer, topics=Topics.of(settings))
    outbox.start()
    finish = _Finish(
        partial(
            handle_batch,
            engine=engine,
            producer=producer,
            settings=settings,
            cache=CampaignCache(),
            relay=outbox,
        ),
        events,
    )
    try:
        backends = _backends_cpu(engine, app)
        cpu = time.process_time()
        rate = consumer_rate(
            settings=events_settings(settings),
            group="campaigns",
            handler=finish,
            expect=events,
            timeout=300,
        )
        drained = _drained(engine)
        cpu = time.process_time() - cpu
        after = _backends_cpu(engine, app)
        backends = None if backends is None or after is None else after - backends
    finally:
        outbox.stop()
        producer.close()
        engine.dispose()
    # The relay may still publish after the last batch: that time counts too.
    rate = events / (events / rate + max(drained - finish.at, 0.0))
    return rate, raw, cpu * 1e6 / events, None if backends is None else backends * 1e6 / events


def run(
    *,
    bootstrap: str,
    redis_url: str,
    database_url: str,
    smoke: bool = False,
    repeats: int = 3,
) -> list[dict[str, Any]]:
    """Measure the campaigns consumer against the raw consume rate of the same topic."""
    migrate_campaigns(database_url)
    events = 300 if smoke else 20000
    repeats = 1 if smoke else repeats
    if not smoke:  # warm-up: connections, compiled statements, broker metadata
        consumer_rates(
            bootstrap=bootstrap, redis_url=redis_url, database_url=database_url, events=200
        )
    pairs = [
        consumer_rates(
            bootstrap=bootstrap, redis_url=redis_url, database_url=database_url, events=events
        )
        for _ in range(repeats)
    ]
    value = median([p[0] for p in pairs])
    raw = median([p[1] for p in pairs])
    cpu = median([p[2] for p in pairs])
    backends = [p[3] for p in pairs if p[3] is not None]
    database_cpu = f", PostgreSQL backends {median(backends):.0f} us/event" if backends else ""
    dialect = "postgresql" if database_url.startswith("postgresql") else "sqlite"
    return [
        row(
            name="campaigns consumer: participation events/s (check-in + challenge active)",
            value=value,
            unit="events/s",
            raw_name="raw kafka-python consume, same topic",
            raw_value=raw,
            ratio=ratio_of(value, raw),
            target=None if smoke else ">= 0.25",
            met=None if smoke else ratio_of(value, raw) >= 0.25,
            notes=(
                f"{events} messages over {GROUPS} groups x {MEMBERS} members, 10% check-ins, "
                f"both campaigns active in every group; {dialect}; median of {repeats}; "
                "ratio = value / raw (higher is better); includes dedup rows, upserts, grants, "
                "outbox publish (relay thread, timed until drained) and offset commits; "
                f"consumer process CPU {cpu:.0f} us/event{database_cpu}"
            ),
        )
    ]


if __name__ == "__main__":
    import os
    import sys

    for r in run(
        bootstrap=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
        redis_url=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        database_url=os.environ.get("DATABASE_URL", "sqlite:///./var/bench-campaigns.db"),
        smoke="--smoke" in sys.argv,
    ):
        print(orjson.dumps(r).decode())
