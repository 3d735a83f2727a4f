"""SIGKILL the metrics, moderation and campaigns processes at seeded random points while
the simulator streams through ingest, restart them, and prove nothing acknowledged was
lost or counted twice: every metrics number, every case, action and grant."""

from __future__ import annotations

import time

from tests.faults.harness import CONSUMERS, TIMEZONE, kill_schedule, run_kills

SEED = 20261121


def test_sigkill_consumers_mid_stream_loses_and_doubles_nothing(
    make_settings, start_run, faults_scale
):
    scale = faults_scale
    settings = make_settings(qunyun_timezone=TIMEZONE)
    with start_run("consumer_crash", settings, seed=SEED) as run:
        schedule = kill_schedule(
            seed=SEED,
            names=CONSUMERS,
            per_name=scale.kills_per_consumer,
            seconds=scale.stream_seconds,
        )
        started = time.monotonic()
        run.start_stream()
        run_kills(run.services, schedule, started=started, seed=SEED)
        outcome = run.finish()
        # Redelivered events metrics had already applied (a lower bound: each killed
        # process was scraped just before its SIGKILL).
        redelivered = run.services.skipped + run.services.skipped_so_far()

    summary = run.report(
        outcome,
        kills_by_service=dict(run.services.kills),
        metrics_redelivered_skipped=redelivered,
    )
    truth = outcome.truth
    assert truth.offending and truth.checkins and truth.streaks, summary
    assert run.figures.kills == len(CONSUMERS) * scale.kills_per_consumer, summary
    outcome.assert_exact(summary)
