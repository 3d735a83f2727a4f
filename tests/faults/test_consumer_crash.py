"""SIGKILL the metrics, moderation and campaigns processes at seeded random points while
the simulator streams through ingest, restart them, and prove nothing acknowledged was
lost or counted twice: every metrics number, every case, action and grant."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from services.tools.stack import service_stack
from tests.faults.harness import (
    CONSUMERS,
    TIMEZONE,
    Api,
    Figures,
    Services,
    Streamer,
    activity_totals,
    compare_campaigns,
    compare_metrics,
    compare_moderation,
    consumer_lag,
    ground_truth,
    kill_schedule,
    observed_metrics,
    read_values,
    run_kills,
    set_up_operations,
    truth_totals,
    wait_until,
)

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
            ingest_url=services.url("ingest"),
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
        figures.acknowledged = truth.events
        expected_total = truth_totals(truth)
        wait_until(lambda: activity_totals(api, truth) >= expected_total, timeout=120, interval=1)
        for name in CONSUMERS:
            group = settings.consumer_group_prefix + name
            wait_until(lambda n=name, g=group: consumer_lag(services.url(n), g) == 0, timeout=60)
        actions = read_values(
            kafka_bootstrap, settings.topic_moderation_actions, expect=len(truth.offending)
        )
        expected_grants = len(truth.checkins) + len(truth.streaks)
        grants = read_values(
            kafka_bootstrap, settings.topic_campaign_rewards, expect=expected_grants
        )

        seen = observed_metrics(api, truth)
        metrics = compare_metrics(truth, seen)
        moderation, mod_figures = compare_moderation(api, truth, actions)
        campaigns, camp_figures = compare_campaigns(api, truth, ops, grants)
        api.close()

    figures.counted = sum(
        v for (_, _, f), v in seen.items() if f in ("messages", "joins", "leaves")
    )
    figures.lost = metrics.lost + moderation.lost + campaigns.lost
    figures.doubled = metrics.doubled + moderation.doubled + campaigns.doubled
    figures.extra = {
        "countable": expected_total,
        "metric_cells": len(truth.cells),
        "offending": len(truth.offending),
        **mod_figures,
        "expected_grants": expected_grants,
        **camp_figures,
        "kills_by_service": dict(services.kills),
    }
    summary = figures.report()
    assert truth.offending and truth.checkins and truth.streaks, summary
    assert figures.kills == len(CONSUMERS) * scale.kills_per_consumer, summary
    assert metrics.exact, f"{summary}\nmetrics: {metrics.mismatches}"
    assert moderation.exact, f"{summary}\nmoderation: {moderation.mismatches}"
    assert campaigns.exact, f"{summary}\ncampaigns: {campaigns.mismatches}"
