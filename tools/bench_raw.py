"""Raw limits every benchmark divides by, load generators and the result-row format.

Each service benchmark (tools/bench_<svc>.py) measures its hot path and the
matching raw limit from here in the same call, on the same broker and machine:
- raw_produce_rate / raw_consume_rate: bare kafka-python throughput on a topic;
- bare_app + serve_uvicorn: a parse-only FastAPI endpoint under the same uvicorn settings;
- post_concurrently: a keep-alive HTTP/1.1 load generator reporting req/s, p50 and p99;
- raw_ac_scan_rate / naive_scan_rate: pyahocorasick and a per-term loop over the same texts.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import ahocorasick
import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response
from kafka import KafkaConsumer, KafkaProducer
from kafka.structs import TopicPartition

from tools.localstack import free_port, wait_for_port

Payload = tuple[bytes | None, bytes]


def median(values: Sequence[float]) -> float:
    """Return the median of the values (0.0 for none)."""
    return float(statistics.median(values)) if values else 0.0


def percentile(values: Sequence[float], pct: float) -> float:
    """Return the pct-th percentile (0-100, nearest rank) of the values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return float(ordered[rank])


def row(
    *,
    name: str,
    value: float,
    unit: str,
    raw_name: str | None = None,
    raw_value: float | None = None,
    ratio: float | None = None,
    target: str | None = None,
    met: bool | None = None,
    notes: str = "",
) -> dict[str, Any]:
    """Build one result row of the agreed benchmark format."""
    return {
        "name": name,
        "value": float(value),
        "unit": unit,
        "raw_name": raw_name,
        "raw_value": None if raw_value is None else float(raw_value),
        "ratio": None if ratio is None else float(ratio),
        "target": target,
        "met": met,
        "notes": notes,
    }


def ratio_of(value: float, raw_value: float, *, lower_is_better: bool = False) -> float:
    """Return value/raw (or raw/value when lower is better); 0.0 when undefined."""
    num, den = (raw_value, value) if lower_is_better else (value, raw_value)
    return num / den if den > 0 else 0.0


# --- Kafka ---------------------------------------------------------------------------


def raw_produce_rate(
    *, bootstrap: str, topic: str, payloads: list[Payload], linger_ms: int = 2
) -> float:
    """Produce the payloads with bare kafka-python (acks=all), flush once; return events/s."""
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        linger_ms=linger_ms,
        batch_size=256 * 1024,
        max_request_size=4 * 1024 * 1024,
    )
    try:
        # Fetch metadata first so the timing covers only the sends (no extra record is written).
        producer.partitions_for(topic)
        started = time.perf_counter()
        futures = [producer.send(topic, key=key, value=value) for key, value in payloads]
        producer.flush(timeout=120)
        for future in futures:
            future.get(timeout=30)
        elapsed = time.perf_counter() - started
    finally:
        producer.close(timeout=10)
    return len(payloads) / elapsed if elapsed > 0 else 0.0


def raw_consume_rate(*, bootstrap: str, topic: str, expect: int, timeout: float = 120.0) -> float:
    """Read `expect` records of the topic from the beginning with a fresh group; return records/s.

    Partitions are assigned directly so no group join is timed, only fetching.
    """
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=f"bench-raw-{uuid.uuid4().hex[:10]}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=500,
    )
    try:
        deadline = time.monotonic() + timeout
        partitions = consumer.partitions_for_topic(topic) or set()
        while not partitions and time.monotonic() < deadline:
            time.sleep(0.1)
            partitions = consumer.partitions_for_topic(topic) or set()
        consumer.assign([TopicPartition(topic, p) for p in sorted(partitions)])
        consumer.seek_to_beginning()
        count = 0
        started = time.perf_counter()
        while count < expect and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=200, max_records=500).values():
                count += len(batch)
        elapsed = time.perf_counter() - started
    finally:
        consumer.close(autocommit=False)
    if count < expect:
        raise RuntimeError(f"raw consumer read {count} of {expect} records of {topic}")
    return count / elapsed if elapsed > 0 else 0.0


# --- HTTP ----------------------------------------------------------------------------

bare_app = FastAPI(title="bench: parse-only endpoint", openapi_url=None, docs_url=None)


@bare_app.post("/v1/webhooks/{source_id}", status_code=202)
async def parse_only(source_id: str, request: Request) -> Response:
    """Parse the JSON body and answer 202 with the event count, doing nothing else."""
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        return Response(
            b'{"detail": "invalid JSON"}', status_code=422, media_type="application/json"
        )
    events = body.get("events") if isinstance(body, dict) else None
    count = len(events) if isinstance(events, list) else 1
    return Response(
        orjson.dumps({"accepted": count, "duplicates": 0}),
        status_code=202,
        media_type="application/json",
    )


@contextlib.contextmanager
def serve_uvicorn(
    *,
    app: str,
    port: int,
    env: dict[str, str],
    factory: bool = False,
    log_path: str | None = None,
    timeout: float = 60.0,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run `app` under uvicorn in a subprocess on 127.0.0.1:port until the block ends.

    Every benchmarked server goes through here so they share the same uvicorn
    settings (one worker, no access log, default loop and HTTP implementation).
    """
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
        "--timeout-graceful-shutdown",
        "10",
    ]
    if factory:
        cmd.append("--factory")
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(
        cmd, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT, cwd=os.getcwd()
    )
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{app} exited with {proc.returncode} before listening")
            try:
                wait_for_port(port, timeout=0.5)
                break
            except TimeoutError:
                if time.monotonic() > deadline:
                    raise
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if not isinstance(out, int):
            out.close()


@dataclass(frozen=True)
class Served:
    """A server started for a benchmark."""

    port: int
    process: subprocess.Popen[bytes]


@contextlib.contextmanager
def serve_bare(*, port: int | None = None) -> Iterator[Served]:
    """Run the parse-only app under serve_uvicorn on a port (a free one by default)."""
    port = port or free_port()
    with serve_uvicorn(app="tools.bench_raw:bare_app", port=port, env={}) as proc:
        yield Served(port, proc)


class HttpConnection:
    """One keep-alive HTTP/1.1 connection speaking just enough of the protocol to POST."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, head: bytes, body: bytes) -> tuple[int, bytes]:
        """Send a request (head from request_head) and return the status and body."""
        reused = self.writer is not None
        try:
            status_line = await self._send(head, body)
        except ConnectionError:
            if not reused:
                raise
            status_line = b""
        if not status_line and reused:
            # The server closed an idle keep-alive connection: one fresh connection, as browsers do.
            await self.close()
            status_line = await self._send(head, body)
        if not status_line:
            raise ConnectionError("server closed the connection")
        assert self.reader is not None
        status = int(status_line.split(b" ", 2)[1])
        length = 0
        close = False
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.partition(b":")
            lname = name.strip().lower()
            if lname == b"content-length":
                length = int(value.strip())
            elif lname == b"connection" and value.strip().lower() == b"close":
                close = True
        payload = await self.reader.readexactly(length) if length else b""
        if close:
            await self.close()
        return status, payload

    async def _send(self, head: bytes, body: bytes) -> bytes:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(head + body)
        await self.writer.drain()
        return await self.reader.readline()

    async def close(self) -> None:
        """Close the connection (the next post opens a new one)."""
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()
        self.reader = self.writer = None


def request_head(*, host: str, port: int, path: str, length: int, headers: dict[str, str]) -> bytes:
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Content-Type: application/json",
        f"Content-Length: {length}",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def _post_all(
    *,
    url: str,
    bodies: Sequence[bytes],
    headers_for: Callable[[bytes], dict[str, str]],
    concurrency: int,
) -> tuple[float, list[float], dict[int, int]]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    # Heads are built before the clock starts: signing is the client's cost, not the server's.
    requests = [
        (request_head(host=host, port=port, path=path, length=len(b), headers=headers_for(b)), b)
        for b in bodies
    ]
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    cursor = iter(requests)

    async def worker() -> None:
        conn = HttpConnection(host, port)
        try:
            for head, body in cursor:
                sent = time.perf_counter()
                status, _ = await conn.post(head, body)
                latencies.append(time.perf_counter() - sent)
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            await conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))
    return time.perf_counter() - started, latencies, statuses


def post_concurrently(
    *,
    url: str,
    bodies: Sequence[bytes],
    headers_for: Callable[[bytes], dict[str, str]],
    concurrency: int,
) -> tuple[float, float, float]:
    """POST every body with `concurrency` keep-alive connections; return (req/s, p50 ms, p99 ms).

    Raises RuntimeError when any answer is not 2xx, so errors never count as throughput.
    A hand-rolled HTTP/1.1 client keeps the load generator's own cost far below the server's.
    """
    elapsed, latencies, statuses = asyncio.run(
        _post_all(url=url, bodies=bodies, headers_for=headers_for, concurrency=concurrency)
    )
    bad = {s: n for s, n in statuses.items() if not 200 <= s < 300}
    if bad:
        raise RuntimeError(f"non-2xx answers from {url}: {bad}")
    ms = [x * 1000 for x in latencies]
    rate = len(bodies) / elapsed if elapsed > 0 else 0.0
    return rate, percentile(ms, 50), percentile(ms, 99)


# --- text scanning -------------------------------------------------------------------


def raw_ac_scan_rate(*, terms: Sequence[str], texts: Sequence[str]) -> float:
    """Scan the texts with a prebuilt pyahocorasick automaton, visiting every match; texts/s."""
    automaton = ahocorasick.Automaton()
    for index, term in enumerate(terms):
        automaton.add_word(term, index)
    automaton.make_automaton()
    found = 0
    started = time.perf_counter()
    for text in texts:
        for _ in automaton.iter(text):
            found += 1
    elapsed = time.perf_counter() - started
    return len(texts) / elapsed if elapsed > 0 else 0.0


def naive_scan_rate(*, terms: Sequence[str], texts: Sequence[str]) -> float:
    """Scan the texts with a per-term substring loop; texts/s."""
    found = 0
    started = time.perf_counter()
    for text in texts:
        for term in terms:
            if term in text:
                found += 1
    elapsed = time.perf_counter() - started
    return len(texts) / elapsed if elapsed > 0 else 0.0


def run(
    *, bootstrap: str, redis_url: str, database_url: str, smoke: bool = False, repeats: int = 3
) -> list[dict[str, Any]]:
    """Measure the raw limits themselves, as context rows for the table."""
    from services.common.kafka.admin import ensure_topics
    from services.common.settings import Settings
    from tools import textgen

    count = 500 if smoke else 20_000
    repeats = 1 if smoke else repeats
    topics = [f"bench-raw-{uuid.uuid4().hex[:8]}-{k}" for k in range(repeats + 1)]
    ensure_topics(Settings(kafka_bootstrap_servers=bootstrap), topics)
    rng = random.Random(1)
    texts = [textgen.chat(rng, topic=textgen.TOPICS[i % 3]) for i in range(count)]
    payloads: list[Payload] = [
        (f"g{i % 50}".encode(), orjson.dumps({"id": f"e{i}", "text": t}))
        for i, t in enumerate(texts)
    ]
    mean_size = sum(len(p[1]) for p in payloads) / len(payloads)
    produced, consumed, http, scanned = [], [], [], []
    bodies = [p[1] for p in payloads[: count // 4]]
    with serve_bare() as bare:
        url = f"http://127.0.0.1:{bare.port}/v1/webhooks/raw"
        post_concurrently(url=url, bodies=bodies[:100], headers_for=lambda b: {}, concurrency=8)
        for topic in topics:
            produced.append(raw_produce_rate(bootstrap=bootstrap, topic=topic, payloads=payloads))
            consumed.append(raw_consume_rate(bootstrap=bootstrap, topic=topic, expect=count))
            http.append(
                post_concurrently(url=url, bodies=bodies, headers_for=lambda b: {}, concurrency=32)[
                    0
                ]
            )
            terms = [f"{w}{i}" for i, w in enumerate(textgen.AD_GOODS * 625)]
            scanned.append(raw_ac_scan_rate(terms=terms, texts=texts))
    runs = f"median of {repeats} after a warm-up"
    return [
        row(name="raw kafka-python produce (acks=all)", value=median(produced[1:]), unit="events/s",
            notes=f"{count} records of {mean_size:.0f} B on average, flush once; {runs}"),
        row(name="raw kafka-python consume", value=median(consumed[1:]), unit="events/s",
            notes=f"whole topic from the beginning, assigned partitions; {runs}"),
        row(name="raw FastAPI parse-only POST", value=median(http[1:]), unit="req/s",
            notes=f"{len(bodies)} requests, 32 keep-alive connections, one uvicorn worker; {runs}"),
        row(name="raw pyahocorasick scan", value=median(scanned[1:]), unit="texts/s",
            notes=f"{count} chat texts, 5,000 terms; {runs}"),
    ]  # fmt: skip


class HandlerMeter:
    """Wrap a consumer batch handler; time from the first batch to the last expected event."""

    def __init__(self, handler: Any, expect: int) -> None:
        self.handler = handler
        self.expect = expect
        self.count = 0
        self.started: float | None = None
        self.finished: float | None = None
        self.done = threading.Event()

    def __call__(self, events: list[Any]) -> None:
        if self.started is None:
            self.started = time.perf_counter()
        self.handler(events)
        self.count += len(events)
        if self.count >= self.expect and self.finished is None:
            self.finished = time.perf_counter()
            self.done.set()

    @property
    def rate(self) -> float:
        if self.started is None or self.finished is None:
            return 0.0
        return self.count / max(self.finished - self.started, 1e-9)


def consumer_rate(
    *,
    settings: Any,
    group: str,
    handler: Any,
    expect: int,
    timeout: float,
    records: bool = False,
    **options: Any,
) -> float:
    """Run one ConsumerRunner (`options`: more of its arguments, as the service passes them)
    over the settings' events topic; return events/s handled. `records=True`: `handler`
    takes raw records (the runner's `record_handler`), as metrics' does."""
    from services.common.kafka.consumer import ConsumerRunner
    from services.common.kafka.producer import ProducerHandle

    producer = ProducerHandle(settings)
    meter = HandlerMeter(handler, expect)
    runner = ConsumerRunner(
        settings=settings,
        group_id=settings.consumer_group_prefix + group,
        producer=producer,
        handler=None if records else meter,
        record_handler=meter if records else None,
        **options,
    )
    runner.start()
    try:
        if not meter.done.wait(timeout):
            raise RuntimeError(f"{group} consumer handled {meter.count} of {expect} events")
    finally:
        runner.stop()
        producer.close()
    return meter.rate
