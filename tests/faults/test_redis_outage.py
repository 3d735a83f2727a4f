"""Redis goes away mid-stream (10 s in `make faults`, 7 s in `make test`) and comes back on
its port with its data (AOF): consumers report not-ready naming redis, ingest answers 503
(never 500) while it cannot deduplicate, the simulator retries, and every total ends exact."""

from __future__ import annotations

import time

from tests.faults.harness import TIMEZONE, RedisServer, readyz
from tests.support import wait_until

SEED = 7301
REDIS_CONSUMERS = ("metrics", "moderation")  # campaigns keeps its state in the database


def test_redis_outage_mid_stream_ends_exact(make_settings, start_run, tmp_path, faults_scale):
    outage = faults_scale.outage_seconds
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    settings = make_settings(redis_url=redis.url, qunyun_timezone=TIMEZONE)
    try:
        with start_run("redis_outage", settings, seed=SEED, probe_text="大家好") as run:
            run.start_stream(lead=0.3)
            redis.stop()
            down_at = time.monotonic()

            not_ready = {}
            for name in (*REDIS_CONSUMERS, "ingest"):
                url = run.services.url(name)
                code, body = wait_until(
                    lambda u=url: (lambda r: r if r[0] == 503 else None)(readyz(u)),
                    timeout=outage - 2,
                ) or readyz(url)
                not_ready[name] = (code, body)
            refused = run.post_probe()
            time.sleep(max(outage - (time.monotonic() - down_at), 0))
            redis.start()
            up_at = time.monotonic()

            accepted = run.probe_accepted(timeout=30)
            outcome = run.finish(ready_timeout=60)
    finally:
        redis.stop()

    summary = run.report(
        outcome,
        outage_seconds=round(up_at - down_at, 1),
        other_5xx=sum(outcome.errors_5xx.values()),
    )
    for name, (code, body) in not_ready.items():
        assert code == 503 and "redis" in body["detail"], f"{name} /readyz during outage: {body}"
    assert refused.status_code == 503, f"ingest without Redis: {refused.status_code} {refused.text}"
    assert refused.headers.get("Retry-After"), refused.headers
    assert accepted, "ingest never accepted the probe after Redis came back"
    assert run.figures.status_503 > 0, f"the stream never met the outage: {summary}"
    assert outcome.errors_5xx == dict.fromkeys(run.stack.ports, 0), outcome.errors_5xx
    outcome.assert_exact(summary)
