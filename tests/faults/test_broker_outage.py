"""The broker goes away mid-stream: ingest answers 503 with Retry-After within its produce
deadline and never 202, consumers keep running and reconnect (and consumers SIGKILLed
while it is away, unable to commit, come back and redo their last batch), and a client
that retried its 503s ends with every event counted exactly once.

The embedded Tansu broker keeps its topics in memory (this build has no sqlite/postgres
storage engine), so "away" is a freeze (SIGSTOP, then SIGCONT): clients see a broker that
accepts nothing and answers nothing, exactly as during a network partition.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from services.common.kafka.admin import ensure_topics
from tests.faults.harness import (
    CONSUMERS,
    TIMEZONE,
    Api,
    Figures,
    Frozen,
    Services,
    Streamer,
    ground_truth,
    message,
    post_events,
    server_errors,
    set_up_operations,
    settle_and_verify,
    wait_until,
)
from tools.localstack import free_port, start_tansu, stop
from tools.stack import service_stack

SEED = 4242
OUTAGE_SECONDS = 10.0
PRODUCE_TIMEOUT = 2.0
MARGIN = 1.5  # request overhead on a loaded 2-core machine
KILLED_WHILE_FROZEN = ("campaigns",)
SURVIVORS = tuple(n for n in CONSUMERS if n not in KILLED_WHILE_FROZEN)


def test_broker_outage_mid_stream_is_503_then_exact(
    make_settings, tokens, tmp_path, faults_scale, unique
):
    scale = faults_scale
    port = free_port()
    broker = start_tansu(port, tmp_path / "broker.log")
    bootstrap = f"127.0.0.1:{port}"
    settings = make_settings(
        kafka_bootstrap_servers=bootstrap,
        kafka_produce_timeout_seconds=PRODUCE_TIMEOUT,
        qunyun_timezone=TIMEZONE,
    )
    ensure_topics(settings)
    prefix = unique("broker")
    traffic_start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=scale.days)
    events = scale.traffic(seed=SEED, group_prefix=prefix)
    figures = Figures("broker_outage", sent=len(events))
    probes: list[tuple[int, float, str | None]] = []
    try:
        with service_stack(settings, tmp_path / "logs") as stack:
            services = Services(stack, settings)
            api = Api(services, tokens.admin)
            ops = set_up_operations(
                api,
                services=services,
                groups=sorted({e["group_id"] for e in events}),
                starts_at=traffic_start - timedelta(hours=1),
                tag=prefix,
            )
            probe = [
                message(f"{prefix}:g0", f"{prefix}:g0:probe", "有人吗", event_id=f"{prefix}-probe")
            ]
            figures.sent += len(ops.canaries) + len(probe)

            streamer = Streamer(
                url=services.url("ingest"), events=events, seconds=scale.stream_seconds
            )
            survivors = {name: stack.processes[name] for name in SURVIVORS}
            streamer.start()
            time.sleep(scale.stream_seconds * 0.3)
            with Frozen(broker):
                frozen_at = time.perf_counter()
                while time.perf_counter() - frozen_at < OUTAGE_SECONDS - PRODUCE_TIMEOUT - MARGIN:
                    started = time.perf_counter()
                    answer = post_events(services.url("ingest"), probe)
                    probes.append(
                        (
                            answer.status_code,
                            time.perf_counter() - started,
                            answer.headers.get("Retry-After"),
                        )
                    )
                # A consumer that handled a batch during the freeze cannot commit it: kill
                # one now, so its restarted process gets those records again. The others
                # must ride the whole outage out and reconnect by themselves.
                for name in KILLED_WHILE_FROZEN:
                    services.kill(name)
                    services.restart(name)
                remaining = OUTAGE_SECONDS - (time.perf_counter() - frozen_at)
                time.sleep(max(remaining, 0))
                thawed_at = time.perf_counter()
            accepted = wait_until(
                lambda: post_events(services.url("ingest"), probe).status_code == 202, timeout=60
            )
            stats = streamer.finish(timeout=scale.stream_seconds + 180)
            figures.status_503 = stats["retries"] + sum(1 for p in probes if p[0] == 503)
            alive = {name: proc.poll() is None for name, proc in survivors.items()}
            services.ready(timeout=90)
            truth = ground_truth(
                streamer.acknowledged.snapshot() + ops.canaries + probe, tz=settings.tz
            )
            verdict = settle_and_verify(
                api=api,
                services=services,
                settings=settings,
                truth=truth,
                ops=ops,
                bootstrap=bootstrap,
            )
            errors_5xx = {name: server_errors(services.url(name)) for name in stack.ports}
            api.close()
    finally:
        stop(broker)

    acked_while_frozen = [
        t for t in streamer.acknowledged.times if frozen_at + 1.0 <= t <= thawed_at
    ]
    figures.acknowledged = truth.events
    figures.counted, figures.lost, figures.doubled = verdict.counted, verdict.lost, verdict.doubled
    figures.kills = sum(services.kills.values())
    figures.extra = {
        "countable": verdict.countable,
        "outage_seconds": round(thawed_at - frozen_at, 1),
        "probes": len(probes),
        "slowest_503_seconds": round(max((p[1] for p in probes), default=0), 2),
        "other_5xx": sum(errors_5xx.values()),
        **verdict.extra,
    }
    summary = figures.report()
    assert probes, "no probe was sent while the broker was frozen"
    for status, elapsed, retry_after in probes:
        assert status == 503 and retry_after, f"probe while frozen: {status}, {retry_after}"
        assert elapsed < PRODUCE_TIMEOUT + MARGIN, f"503 came after {elapsed:.1f}s"
    assert not acked_while_frozen, f"{len(acked_while_frozen)} batches got 202 while frozen"
    assert accepted, "ingest never accepted the probe after the broker came back"
    assert alive == dict.fromkeys(SURVIVORS, True), f"a consumer process died: {alive}"
    assert errors_5xx == dict.fromkeys(stack.ports, 0), errors_5xx
    assert verdict.lost == 0 and verdict.doubled == 0, f"{summary}\n{verdict.problems()}"
