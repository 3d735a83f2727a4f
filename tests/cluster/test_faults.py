"""The fault suite's exact-totals check on the cluster: the simulator streams through ingest
(dedup claims on the cluster) while the Redis consumers, metrics and moderation, are
SIGKILLed mid-batch and restarted; their redelivered batches must change nothing. Every
metrics number, case, action and grant is then compared with the ground truth.

A smaller run than tests/faults/test_consumer_crash.py (8 s of traffic, one kill each) and
campaigns is left alone: it keeps its state in the database, not in Redis, and its restart
costs the longest consumer-group rejoin.
"""

from __future__ import annotations

import time

import pytest

from tests.faults.harness import TIMEZONE, Scale, kill_schedule, run_kills

SEED = 20261130
REDIS_CONSUMERS = ("metrics", "moderation")


@pytest.fixture(scope="session")
def faults_scale() -> Scale:
    return Scale("cluster", groups=3, members=160, days=3, messages_per_member=0.9,
                 stream_seconds=8, kills_per_consumer=1)  # fmt: skip


def test_sigkill_of_the_redis_consumers_on_a_cluster_loses_and_doubles_nothing(
    make_settings, start_run, faults_scale
):
    scale = faults_scale
    settings = make_settings(qunyun_timezone=TIMEZONE)
    assert settings.redis_cluster
    with start_run("cluster_crash", settings, seed=SEED) as run:
        schedule = kill_schedule(
            seed=SEED,
            names=REDIS_CONSUMERS,
            per_name=scale.kills_per_consumer,
            seconds=scale.stream_seconds,
        )
        started = time.monotonic()
        run.start_stream()
        run_kills(run.services, schedule, started=started, seed=SEED)
        outcome = run.finish()
    summary = run.report(outcome, kills_by_service=dict(run.services.kills))
    assert outcome.truth.offending and outcome.truth.checkins, summary
    assert run.figures.kills == len(REDIS_CONSUMERS) * scale.kills_per_consumer, summary
    outcome.assert_exact(summary)
