"""SIGKILL the delivery process (`python -m services.delivery`) mid-stream while ~1,000
moderation actions flow to Telegram groups on the platform double, some of whose calls time
out after taking effect, restart it each time, and prove: every record has exactly one
final receipt, the double saw every call at least once, and nothing was called again
unless its outcome was unknown (those are counted and printed)."""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from services.common.settings import QunyunConfig, Settings, Source, write_config
from tests.faults.harness import Figures, Services, kill_schedule
from tests.faults.harness.delivery import (
    DeliveryScale,
    audit_calls,
    delivery_scale,
    effect_seen,
    plan_records,
)
from tests.support import read_topic, wait_until
from tools.platform_double import DoubleConfig, DoubleHandle, Fault, start_double
from tools.stack import service_stack

SEED = 20261205
# Longer than the clients' 10 s read timeout: the call takes effect, the answer never comes.
TIMEOUT_SLEEP = 11.0
# The shortest lease the settings allow (ge=12: still above that 10 s call timeout, so a
# live call keeps its row), so a killed process's rows come back 12 s after their claim,
# not the default 30 s: the wait after the last kill is most of this test's time.
LEASE_SECONDS = 12.0


@pytest.fixture(scope="module")
def double() -> Iterator[DoubleHandle]:
    handle = start_double(DoubleConfig())
    yield handle
    handle.stop()


def stream(producer, topic: str, records: list[dict], seconds: float) -> None:
    """Put the records on the topic at an even pace over `seconds`, waiting for every ack."""
    started, batches = time.monotonic(), 40
    futures = []
    for i in range(batches):
        for r in records[i::batches]:
            value = json.dumps(r).encode()
            futures.append(producer.send(topic, key=r["group_id"].encode(), value=value))
        producer.flush(timeout=30)
        time.sleep(max(0.0, started + seconds * (i + 1) / batches - time.monotonic()))
    for future in futures:
        future.get(timeout=30)


def rows(engine: sa.Engine, prefix: str, state: str) -> int:
    """The run's deliveries in `state` (pending, in_flight or done)."""
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.text("SELECT count(*) FROM deliveries WHERE state = :s AND ref_id LIKE :p"),
                {"s": state, "p": prefix + "%"},
            ).scalar_one()
        )


def kill_on_schedule(
    services: Services, schedule, started: float, engine: sa.Engine, prefix: str
) -> tuple[list[float], int]:
    """SIGKILL and restart delivery on the schedule, each time once it has calls in flight
    (rows claimed: the kill lands between a call and its outcome being written). Return
    the kills' wall-clock times and how many rows were in flight at them."""
    kills, caught = [], 0
    for at, name in schedule:
        time.sleep(max(0.0, started + at - time.monotonic()))
        services.ready([name], timeout=60)
        busy = wait_until(lambda: rows(engine, prefix, "in_flight"), timeout=3, interval=0.005)
        kills.append(time.time())
        services.kill(name)
        caught += busy or 0
        services.restart(name)
    return kills, caught


def telegram_source(double: DoubleHandle) -> Source:
    """The run's source: Telegram on the double, pacing out of the way."""
    c = double.state.config
    return Source(id="tg-crash", platform="telegram", secret="s", bot_token=c.telegram_token,
                  api_base=double.base_url, rate_per_second=5000.0,
                  rate_per_group_per_minute=60000.0)  # fmt: skip


def add_timeouts(double: DoubleHandle, chats: list[str], scale: DeliveryScale) -> None:
    """One call per chosen group takes effect, then stalls past the client's read timeout."""
    for i, chat in enumerate(chats[: scale.post_timeouts + scale.ban_timeouts]):
        method = "sendMessage" if i < scale.post_timeouts else "banChatMember"
        double.state.add_fault(
            Fault("telegram", "timeout", chat=chat, method=method, sleep=TIMEOUT_SLEEP)
        )


def crash_run(settings: Settings, producer, records: list[dict], scale: DeliveryScale, logs):
    """Stream the records while SIGKILLing delivery; wait until every row is done and
    return the receipts topic, the kill times, the rows in flight at them and the kills."""
    with service_stack(settings, logs, names=("delivery",)) as stack:
        services = Services(stack, settings)
        schedule = kill_schedule(
            seed=SEED, names=["delivery"], per_name=scale.kills, seconds=scale.stream_seconds
        )
        engine, prefix = sa.create_engine(settings.database_url), f"act-{SEED}-"
        started = time.monotonic()
        streamer = threading.Thread(
            target=stream,
            args=(producer, settings.topic_moderation_actions, records, scale.stream_seconds),
        )
        streamer.start()
        kills, caught = kill_on_schedule(services, schedule, started, engine, prefix)
        streamer.join()
        # A killed process's in-flight rows wait for their lease to be claimed again.
        done = wait_until(lambda: rows(engine, prefix, "done") == len(records), timeout=150)
        assert done, f"{rows(engine, prefix, 'done')} of {len(records)} finished"
        engine.dispose()
        raw = read_topic(
            settings.kafka_bootstrap_servers,
            settings.topic_delivery_receipts,
            expect=len(records),
            timeout=60,
            settle=2,
        )
    return [json.loads(r.value) for r in raw], kills, caught, services.kills["delivery"]


def test_sigkill_delivery_mid_stream(make_settings, producer, double, tmp_path, unique):
    scale, begun = delivery_scale(), time.monotonic()
    source = telegram_source(double)
    config = write_config(tmp_path / "qunyun.toml", QunyunConfig(sources=[source]))
    settings = make_settings(
        qunyun_config=str(config),
        topic_delivery_receipts=unique("delivery.receipts.v1"),
        delivery_lease_seconds=LEASE_SECONDS,
    )
    planned = plan_records(seed=SEED, scale=scale, source=source.id, chat_base=700_000_000)
    add_timeouts(double, sorted({p.chat for p in planned}), scale)
    records = [p.record for p in planned]
    receipts, kills, caught, kill_count = crash_run(
        settings, producer, records, scale, tmp_path / "logs"
    )
    ids_per_ref: dict[str, set[str]] = defaultdict(set)
    latest: dict[str, dict] = {}
    for r in receipts:
        ids_per_ref[r["ref_id"]].add(r["id"])
        latest[r["ref_id"]] = r
    audit = audit_calls(double.state, planned, kills)
    missing = [r["id"] for r in records if r["id"] not in latest]
    doubled = [ref for ref, ids in ids_per_ref.items() if len(ids) > 1]
    not_delivered = [
        (ref, r["outcome"]) for ref, r in latest.items() if r["outcome"] != "delivered"
    ]
    no_effect = [p.record["id"] for p in planned if not effect_seen(double.state, p)]
    figures = Figures(
        test="delivery_crash",
        sent=len(records),
        acknowledged=len(records),
        counted=len(latest),
        lost=len(missing),
        doubled=len(doubled),
        kills=kill_count,
        extra={
            "receipt_messages": len(receipts),
            "republished_receipts": len(receipts) - sum(len(v) for v in ids_per_ref.values()),
            "in_flight_at_kills": caught,
            "timeouts_played": audit.timeouts,
            "calls_repeated_after_timeout": audit.after_timeout,
            "calls_repeated_after_kill": audit.after_kill,
            "posts_doubled_unknown_outcome": audit.doubled_posts,
            "seconds": round(time.monotonic() - begun, 1),
        },
    )
    summary = figures.report()
    assert not missing and not doubled, summary
    assert set(latest) == {r["id"] for r in records}, summary
    assert not not_delivered, (not_delivered[:10], summary)
    assert not audit.missing and not no_effect, (audit.missing[:10], no_effect[:10], summary)
    assert not audit.unexplained, (audit.unexplained[:10], summary)
    assert audit.timeouts == scale.post_timeouts + scale.ban_timeouts, summary
    assert figures.kills == scale.kills, summary
