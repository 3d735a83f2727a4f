"""Benchmark of the ingest service: events/s one process sustains, beside the raw limits.

- batches: generic batches of 500 events through one ingest process (uvicorn, 1 worker,
  real broker and Redis: verify, validate, dedup claims, produce acks=all, mark seen),
  beside bare kafka-python producing the same keyed records (acks=all) in the same run;
- single events: one event per request at high concurrency, req/s and p50/p99 latency,
  beside a parse-only FastAPI endpoint on the same uvicorn settings; the notes also give
  each server's CPU per request (from /proc), steadier than req/s on a shared machine.
"""

from __future__ import annotations

import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from services.common.contracts.events import encode_event, parse_event
from services.common.kafka.admin import ensure_topics
from services.common.settings import QunyunConfig, Settings, Source, write_config
from services.platforms.generic.inbound import generic_signature
from tools.bench_e2e import cpu_seconds
from tools.bench_raw import (
    Payload,
    median,
    post_concurrently,
    ratio_of,
    raw_produce_rate,
    row,
    serve_bare,
    serve_uvicorn,
)
from tools.localstack import free_port

SOURCE, SECRET = "bench-generic", "bench-secret-" + uuid.uuid4().hex
BATCH = 500


def _event(run: str, n: int) -> dict[str, Any]:
    return {
        "id": f"{run}-{n}",
        "type": "message.created",
        "group_id": f"bench:{n % 50}",
        "member_id": f"bench:u{n % 997}",
        "occurred_at": datetime.now(UTC).isoformat(),
        "data": {
            "message_id": f"m{n}",
            "text": f"大家好，今天的打卡 #{n} hello world",
            "kind": "text",
        },
    }


def _headers(body: bytes) -> dict[str, str]:
    ts = str(int(time.time()))
    return {
        "X-Qunyun-Timestamp": ts,
        "X-Qunyun-Signature": generic_signature(SECRET, ts, body),
    }


def _records(events: list[dict[str, Any]]) -> list[Payload]:
    """Return the records ingest puts on the topic for these events (same keys and sizes)."""
    now = datetime.now(UTC).isoformat()
    return [
        (
            e["group_id"].encode(),
            encode_event(parse_event({**e, "source": SOURCE, "received_at": now})),
        )
        for e in events
    ]


def _config(directory: Path) -> Path:
    config = QunyunConfig(sources=[Source(id=SOURCE, platform="generic", secret=SECRET)])
    return write_config(directory / "ingest-bench.toml", config)


def _measure(
    *,
    url: str,
    pid: int,
    bootstrap: str,
    topic: str,
    batches: int,
    singles: int,
    concurrency: int,
) -> dict[str, float]:
    run = uuid.uuid4().hex[:10]
    batch_events = [_event(f"b{run}", n) for n in range(batches * BATCH)]
    bodies = [
        orjson.dumps({"events": batch_events[i : i + BATCH]})
        for i in range(0, len(batch_events), BATCH)
    ]
    rate, _, _ = post_concurrently(url=url, bodies=bodies, headers_for=_headers, concurrency=4)
    single_events = [_event(f"s{run}", n) for n in range(singles)]
    single_bodies = [orjson.dumps(e) for e in single_events]
    cpu = cpu_seconds(pid)
    req_rate, p50, p99 = post_concurrently(
        url=url, bodies=single_bodies, headers_for=_headers, concurrency=concurrency
    )
    cpu_us = (cpu_seconds(pid) - cpu) * 1e6 / singles
    raw = raw_produce_rate(bootstrap=bootstrap, topic=topic, payloads=_records(batch_events))
    return {
        "batch_events_per_s": rate * BATCH,
        "raw_produce_per_s": raw,
        "single_req_per_s": req_rate,
        "single_p50_ms": p50,
        "single_p99_ms": p99,
        "single_cpu_us": cpu_us,
    }


def _bare(*, singles: int, concurrency: int, port: int, pid: int) -> dict[str, float]:
    bodies = [orjson.dumps(_event("bare", n)) for n in range(singles)]
    url = f"http://127.0.0.1:{port}/v1/webhooks/{SOURCE}"
    cpu = cpu_seconds(pid)
    rate, p50, p99 = post_concurrently(
        url=url, bodies=bodies, headers_for=_headers, concurrency=concurrency
    )
    cpu_us = (cpu_seconds(pid) - cpu) * 1e6 / singles
    return {"bare_req_per_s": rate, "bare_p50_ms": p50, "bare_p99_ms": p99, "bare_cpu_us": cpu_us}


def run(
    *, bootstrap: str, redis_url: str, database_url: str, smoke: bool = False, repeats: int = 3
) -> list[dict[str, Any]]:
    """Measure ingest against the raw producer and a bare endpoint; return result rows."""
    batches, singles, concurrency = (2, 200, 16) if smoke else (40, 4000, 64)
    repeats = 1 if smoke else max(1, repeats)
    topic = f"bench.ingest.{uuid.uuid4().hex[:8]}"
    settings = Settings(kafka_bootstrap_servers=bootstrap, topic_events=topic)
    ensure_topics(settings, [topic])
    port, bare_port = free_port(), free_port()
    samples: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "REDIS_URL": redis_url,
            "DATABASE_URL": database_url,
            "QUNYUN_CONFIG": str(_config(Path(tmp))),
            "TOPIC_EVENTS": topic,
            "DEDUP_TTL_SECONDS": "120",
            "LOG_LEVEL": "WARNING",
        }
        url = f"http://127.0.0.1:{port}/v1/webhooks/{SOURCE}"
        with (
            serve_uvicorn(
                app="services.ingest.app:create_app", factory=True, port=port, env=env
            ) as ingest,
            serve_bare(port=bare_port) as bare,
        ):
            # Warm-up: producer connection, topic metadata, Lua script cache, bare app.
            _measure(
                url=url,
                pid=ingest.pid,
                bootstrap=bootstrap,
                topic=topic,
                batches=1,
                singles=50,
                concurrency=8,
            )
            _bare(singles=50, concurrency=8, port=bare_port, pid=bare.process.pid)
            for _ in range(repeats):
                sample = _measure(
                    url=url,
                    pid=ingest.pid,
                    bootstrap=bootstrap,
                    topic=topic,
                    batches=batches,
                    singles=singles,
                    concurrency=concurrency,
                )
                sample |= _bare(
                    singles=singles, concurrency=concurrency, port=bare_port, pid=bare.process.pid
                )
                samples.append(sample)
    m = {key: median([s[key] for s in samples]) for key in samples[0]}
    size = f"{batches}x{BATCH} events, {singles} single requests at {concurrency} connections"
    batch_ratio = ratio_of(m["batch_events_per_s"], m["raw_produce_per_s"])
    single_ratio = ratio_of(m["single_req_per_s"], m["bare_req_per_s"])
    cpu_ratio = ratio_of(m["single_cpu_us"], m["bare_cpu_us"], lower_is_better=True)
    return [
        row(
            name="ingest generic batches of 500",
            value=m["batch_events_per_s"],
            unit="events/s",
            raw_name="kafka-python producer, acks=all, same records",
            raw_value=m["raw_produce_per_s"],
            ratio=batch_ratio,
            target=None if smoke else ">= 0.5",
            met=None if smoke else batch_ratio >= 0.5,
            notes=f"ratio = ingest/raw (higher is better); 4 connections; {size}",
        ),
        row(
            name="ingest single-event requests",
            value=m["single_req_per_s"],
            unit="req/s",
            raw_name="parse-only FastAPI endpoint, same uvicorn settings",
            raw_value=m["bare_req_per_s"],
            ratio=single_ratio,
            target=None if smoke else ">= 0.5",
            met=None if smoke else single_ratio >= 0.5,
            notes=(
                f"one event per request, each acked by Kafka before 202; {size}; CPU per "
                f"request: ingest {m['single_cpu_us']:.0f} µs, parse-only "
                f"{m['bare_cpu_us']:.0f} µs (ratio {cpu_ratio:.2f})"
            ),
        ),
        row(
            name="ingest single-event p50 latency",
            value=m["single_p50_ms"],
            unit="ms",
            raw_name="parse-only endpoint p50",
            raw_value=m["bare_p50_ms"],
            ratio=ratio_of(m["single_p50_ms"], m["bare_p50_ms"], lower_is_better=True),
            notes="ratio = raw/value (lower latency is better)",
        ),
        row(
            name="ingest single-event p99 latency",
            value=m["single_p99_ms"],
            unit="ms",
            raw_name="parse-only endpoint p99",
            raw_value=m["bare_p99_ms"],
            ratio=ratio_of(m["single_p99_ms"], m["bare_p99_ms"], lower_is_better=True),
            notes="ratio = raw/value (lower latency is better)",
        ),
    ]


if __name__ == "__main__":
    import sys

    for result in run(
        bootstrap=sys.argv[1],
        redis_url=sys.argv[2],
        database_url="sqlite://",
        smoke="--smoke" in sys.argv,
    ):
        print(orjson.dumps(result).decode())
