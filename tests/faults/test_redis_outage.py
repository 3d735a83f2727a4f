"""Redis goes away for ~10 s mid-stream and comes back on its port with its data (AOF):
consumers report not-ready naming redis, ingest answers 503 (never 500) while it cannot
deduplicate, the simulator retries, and every total ends exact."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from tests.faults.harness import (
    TIMEZONE,
    Api,
    Figures,
    RedisServer,
    Services,
    Streamer,
    ground_truth,
    message,
    post_events,
    readyz,
    server_errors,
    set_up_operations,
    settle_and_verify,
    wait_until,
)
from tools.stack import service_stack

SEED = 7301
OUTAGE_SECONDS = 10.0
REDIS_CONSUMERS = ("metrics", "moderation")  # campaigns keeps its state in the database


def test_redis_outage_mid_stream_ends_exact(
    make_settings, tokens, tmp_path, faults_scale, unique, kafka_bootstrap
):
    scale = faults_scale
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    settings = make_settings(redis_url=redis.url, qunyun_timezone=TIMEZONE)
    prefix = unique("redis")
    traffic_start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=scale.days)
    events = scale.traffic(seed=SEED, group_prefix=prefix)
    stream_seconds = scale.stream_seconds
    figures = Figures("redis_outage", sent=len(events))
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
                message(f"{prefix}:g0", f"{prefix}:g0:probe", "大家好", event_id=f"{prefix}-probe")
            ]
            figures.sent += len(ops.canaries) + len(probe)

            streamer = Streamer(url=services.url("ingest"), events=events, seconds=stream_seconds)
            streamer.start()
            time.sleep(stream_seconds * 0.3)
            redis.stop()
            down_at = time.monotonic()

            not_ready = {}
            for name in (*REDIS_CONSUMERS, "ingest"):
                code, body = wait_until(
                    lambda n=name: (lambda r: r if r[0] == 503 else None)(readyz(services.url(n))),
                    timeout=OUTAGE_SECONDS - 2,
                ) or readyz(services.url(name))
                not_ready[name] = (code, body)
            refused = post_events(services.url("ingest"), probe)
            time.sleep(max(OUTAGE_SECONDS - (time.monotonic() - down_at), 0))
            redis.start()
            up_at = time.monotonic()

            accepted = wait_until(
                lambda: (lambda r: r if r.status_code == 202 else None)(
                    post_events(services.url("ingest"), probe)
                ),
                timeout=30,
            )
            stats = streamer.finish(timeout=stream_seconds + 180)
            figures.status_503 = stats["retries"]
            services.ready(timeout=60)
            truth = ground_truth(
                streamer.acknowledged.snapshot() + ops.canaries + probe, tz=settings.tz
            )
            verdict = settle_and_verify(
                api=api,
                services=services,
                settings=settings,
                truth=truth,
                ops=ops,
                bootstrap=kafka_bootstrap,
            )
            errors_5xx = {name: server_errors(services.url(name)) for name in stack.ports}
            api.close()
    finally:
        redis.stop()

    figures.acknowledged = truth.events
    figures.counted, figures.lost, figures.doubled = verdict.counted, verdict.lost, verdict.doubled
    figures.extra = {
        "countable": verdict.countable,
        "outage_seconds": round(up_at - down_at, 1),
        "other_5xx": sum(errors_5xx.values()),
        **verdict.extra,
    }
    summary = figures.report()
    for name, (code, body) in not_ready.items():
        assert code == 503 and "redis" in body["detail"], f"{name} /readyz during outage: {body}"
    assert refused.status_code == 503, f"ingest without Redis: {refused.status_code} {refused.text}"
    assert refused.headers.get("Retry-After"), refused.headers
    assert accepted, "ingest never accepted the probe after Redis came back"
    assert figures.status_503 > 0, f"the stream never met the outage: {summary}"
    assert errors_5xx == dict.fromkeys(stack.ports, 0), errors_5xx
    assert verdict.lost == 0 and verdict.doubled == 0, f"{summary}\n{verdict.problems()}"
