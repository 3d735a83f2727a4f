"""SIGKILL the metrics, moderation and campaigns processes at seeded random points while
the simulator streams through ingest, restart them, and prove nothing acknowledged was
lost or counted twice: every metrics number, every case, action and grant."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from tests.faults.harness import (
    CONSUMERS,
    TIMEZONE,
    Api,
    Figures,
    Services,
    Streamer,
    ground_truth,
    kill_schedule,
    run_kills,
    set_up_operations,
    settle_and_verify,
)
from tools.stack import service_stack

SEED = 20261121


def test_sigkill_consumers_mid_stream_loses_and_doubles_nothing(
    make_settings, tokens, tmp_path, faults_scale, unique, kafka_bootstrap
):
    scale = faults_scale
    settings = make_settings(qunyun_timezone=TIMEZONE)
    prefix = unique("crash")
    traffic_start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=scale.days)
    events = scale.traffic(seed=SEED, group_prefix=prefix)
    groups = sorted({e["group_id"] for e in events})
    figures = Figures("consumer_crash", sent=len(events))

    with service_stack(settings, tmp_path / "logs") as stack:
        services = Services(stack, settings)
        api = Api(services, tokens.admin)
        ops = set_up_operations(
            api,
            services=services,
            groups=groups,
            starts_at=traffic_start - timedelta(hours=1),
            tag=prefix,
        )
        figures.sent += len(ops.canaries)

        streamer = Streamer(url=services.url("ingest"), events=events, seconds=scale.stream_seconds)
        schedule = kill_schedule(
            seed=SEED,
            names=CONSUMERS,
            per_name=scale.kills_per_consumer,
            seconds=scale.stream_seconds,
        )
        started = time.monotonic()
        streamer.start()
        run_kills(services, schedule, started=started, seed=SEED)
        stats = streamer.finish(timeout=scale.stream_seconds + 180)
        figures.kills = sum(services.kills.values())
        figures.status_503 = stats["retries"]
        services.ready(timeout=90)

        truth = ground_truth(streamer.acknowledged.snapshot() + ops.canaries, tz=settings.tz)
        verdict = settle_and_verify(
            api=api,
            services=services,
            settings=settings,
            truth=truth,
            ops=ops,
            bootstrap=kafka_bootstrap,
        )
        # Redelivered events metrics had already applied (a lower bound: each killed
        # process was scraped just before its SIGKILL).
        redelivered = services.skipped + services.skipped_so_far()
        api.close()

    figures.acknowledged = truth.events
    figures.counted, figures.lost, figures.doubled = verdict.counted, verdict.lost, verdict.doubled
    figures.extra = {
        "countable": verdict.countable,
        **verdict.extra,
        "kills_by_service": dict(services.kills),
        "metrics_redelivered_skipped": redelivered,
    }
    summary = figures.report()
    assert truth.offending and truth.checkins and truth.streaks, summary
    assert figures.kills == len(CONSUMERS) * scale.kills_per_consumer, summary
    assert verdict.lost == 0 and verdict.doubled == 0, f"{summary}\n{verdict.problems()}"
