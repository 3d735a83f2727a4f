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

from services.common.kafka.admin import ensure_topics
from tests.faults.harness import CONSUMERS, TIMEZONE, Frozen, post_events
from tools.localstack import free_port, start_tansu, stop

SEED = 4242
PRODUCE_TIMEOUT = 2.0
MARGIN = 1.5  # request overhead on a loaded 2-core machine
KILLED_WHILE_FROZEN = ("campaigns",)
SURVIVORS = tuple(n for n in CONSUMERS if n not in KILLED_WHILE_FROZEN)


def test_broker_outage_mid_stream_is_503_then_exact(
    make_settings, start_run, tmp_path, faults_scale
):
    outage = faults_scale.outage_seconds  # > the 6 s session timeout: memberships lapse
    port = free_port()
    broker = start_tansu(port, tmp_path / "broker.log")
    settings = make_settings(
        kafka_bootstrap_servers=f"127.0.0.1:{port}",
        kafka_produce_timeout_seconds=PRODUCE_TIMEOUT,
        qunyun_timezone=TIMEZONE,
    )
    ensure_topics(settings)
    probes: list[tuple[int, float, str | None]] = []
    try:
        with start_run("broker_outage", settings, seed=SEED, probe_text="有人吗") as run:
            survivors = {name: run.stack.processes[name] for name in SURVIVORS}
            run.start_stream(lead=0.3)
            with Frozen(broker):
                frozen_at = time.perf_counter()
                while time.perf_counter() - frozen_at < outage - PRODUCE_TIMEOUT - MARGIN:
                    started = time.perf_counter()
                    answer = post_events(run.ingest, run.probe)
                    elapsed = time.perf_counter() - started
                    probes.append((answer.status_code, elapsed, answer.headers.get("Retry-After")))
                # A consumer that handled a batch during the freeze cannot commit it: kill
                # one now, so its restarted process gets those records again. The others
                # must ride the whole outage out and reconnect by themselves.
                for name in KILLED_WHILE_FROZEN:
                    run.services.kill(name)
                    run.services.restart(name)
                remaining = outage - (time.perf_counter() - frozen_at)
                time.sleep(max(remaining, 0))
                thawed_at = time.perf_counter()
            accepted = run.probe_accepted(timeout=60)
            run.figures.status_503 = sum(1 for p in probes if p[0] == 503)
            outcome = run.finish()
            alive = {name: proc.poll() is None for name, proc in survivors.items()}
    finally:
        stop(broker)

    acked_while_frozen = [
        t for t in run.streamer.acknowledged.times if frozen_at + 1.0 <= t <= thawed_at
    ]
    summary = run.report(
        outcome,
        outage_seconds=round(thawed_at - frozen_at, 1),
        probes=len(probes),
        slowest_503_seconds=round(max((p[1] for p in probes), default=0), 2),
        other_5xx=sum(outcome.errors_5xx.values()),
    )
    assert probes, "no probe was sent while the broker was frozen"
    for status, elapsed, retry_after in probes:
        assert status == 503 and retry_after, f"probe while frozen: {status}, {retry_after}"
        assert elapsed < PRODUCE_TIMEOUT + MARGIN, f"503 came after {elapsed:.1f}s"
    assert not acked_while_frozen, f"{len(acked_while_frozen)} batches got 202 while frozen"
    assert accepted, "ingest never accepted the probe after the broker came back"
    assert alive == dict.fromkeys(SURVIVORS, True), f"a consumer process died: {alive}"
    assert outcome.errors_5xx == dict.fromkeys(run.stack.ports, 0), outcome.errors_5xx
    outcome.assert_exact(summary)
