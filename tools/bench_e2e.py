"""End-to-end latency: a webhook sent to ingest → the moderation action on moderation.actions.v1.

Ingest and moderation run as their own processes (`python -m services.<name>`) on private
topics. A keywords rule (action `delete`) is created through the moderation REST API; then
single-event signed webhooks go out open-loop at a fixed rate (each request leaves at its
scheduled time whether or not earlier ones were answered, so a slow server cannot slow the
clock), one in five carrying a banned keyword. A consumer of the actions topic matches each
action to its event id; latency runs from the scheduled send time to the action's arrival.
"""

from __future__ import annotations

import asyncio
import secrets
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from random import Random
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
from kafka import KafkaConsumer
from kafka.structs import TopicPartition

from services.common.auth import token_entry
from services.common.kafka.admin import ensure_topics
from services.common.settings import QunyunConfig, Settings, Source, write_config
from tools import textgen
from tools.bench_raw import HttpConnection, median, percentile, request_head, row
from tools.localstack import free_port, stop
from tools.simulate import sign_generic

RATE = 500.0
TARGET_P99_MS = 500.0
BANNED = "加微信"
SOURCE = "bench"


@contextmanager
def _service(
    *, name: str, env: dict[str, str], log_dir: Path, timeout: float = 90.0
) -> Iterator[str]:
    """Run `python -m services.<name>` on a free port until /readyz is 200; yield its base URL."""
    import subprocess

    port = free_port()
    log = open(log_dir / f"{name}.log", "ab")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", f"services.{name}"],
        env={**env, "PORT": str(port)},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                tail = (log_dir / f"{name}.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{tail}")
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} not ready after {timeout}s (log: {log_dir})")
            time.sleep(0.3)
        yield url
    finally:
        stop(proc, timeout=20)
        log.close()


class ActionWatcher:
    """Read moderation.actions.v1 in a thread, noting when each event id's action arrives."""

    def __init__(self, *, bootstrap: str, topic: str) -> None:
        self.arrived: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        partitions = self._consumer.partitions_for_topic(topic) or set()
        deadline = time.monotonic() + 20
        while not partitions and time.monotonic() < deadline:
            time.sleep(0.2)
            partitions = self._consumer.partitions_for_topic(topic) or set()
        self._consumer.assign([TopicPartition(topic, p) for p in sorted(partitions)])
        self._consumer.seek_to_beginning()
        self._thread = threading.Thread(target=self._run, name="bench-actions", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for batch in self._consumer.poll(timeout_ms=50).values():
                now = time.perf_counter()
                with self._lock:
                    for record in batch:
                        event_id = orjson.loads(record.value).get("event_id")
                        if event_id and event_id not in self.arrived:
                            self.arrived[event_id] = now

    def wait_for(self, event_ids: set[str], timeout: float) -> int:
        """Wait until every id has an action or timeout; return how many are still missing."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                missing = len(event_ids - self.arrived.keys())
            if not missing or time.monotonic() > deadline:
                return missing
            time.sleep(0.05)

    def close(self) -> None:
        """Stop the thread and close the consumer."""
        self._stop.set()
        self._thread.join(10)
        self._consumer.close(autocommit=False)


def _events(*, group: str, run: str, count: int, seed: int) -> list[dict[str, Any]]:
    rng = Random(seed)
    now = datetime.now(UTC).isoformat(timespec="milliseconds")
    out = []
    for i in range(count):
        text = textgen.chat(rng, topic="护肤")
        if i % 5 == 0:
            text = f"{text} 有需要的{BANNED} wx{rng.randint(10**7, 10**8 - 1)}"
        out.append(
            {
                "id": f"{run}-{i}",
                "source": SOURCE,
                "type": "message.created",
                "group_id": group,
                "member_id": f"{group}:u{i % 997}",
                "occurred_at": now,
                "data": {"message_id": f"m-{run}-{i}", "text": text, "kind": "text"},
            }
        )
    return out


async def _send_open_loop(
    *, url: str, secret: str, events: list[dict[str, Any]], rate: float
) -> tuple[dict[str, float], dict[str, float], dict[int, int]]:
    """POST one event per request at scheduled times; return scheduled and answer times by id."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    scheduled: dict[str, float] = {}
    answered: dict[str, float] = {}
    statuses: dict[int, int] = {}
    idle: list[HttpConnection] = []
    opened: list[HttpConnection] = []

    async def post(event: dict[str, Any]) -> None:
        body = orjson.dumps(event)
        headers = sign_generic(secret=secret, body=body)
        headers.pop("Content-Type")
        head = request_head(
            host=host, port=port, path=parts.path, length=len(body), headers=headers
        )
        if idle:
            conn = idle.pop()
        else:
            conn = HttpConnection(host, port)
            opened.append(conn)
        status, _ = await conn.post(head, body)
        answered[event["id"]] = time.perf_counter()
        statuses[status] = statuses.get(status, 0) + 1
        idle.append(conn)

    tasks = []
    t0 = time.perf_counter() + 0.05
    for i, event in enumerate(events):
        at = t0 + i / rate
        delay = at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        scheduled[event["id"]] = at
        tasks.append(asyncio.create_task(post(event)))
    await asyncio.gather(*tasks)
    for conn in opened:
        await conn.close()
    return scheduled, answered, statuses


def _measure(
    *,
    ingest: str,
    secret: str,
    watcher: ActionWatcher,
    group: str,
    count: int,
    rate: float,
    seed: int,
) -> dict[str, float]:
    run = f"e2e-{uuid.uuid4().hex[:8]}"
    events = _events(group=group, run=run, count=count, seed=seed)
    url = f"{ingest}/v1/webhooks/{SOURCE}"
    scheduled, answered, statuses = asyncio.run(
        _send_open_loop(url=url, secret=secret, events=events, rate=rate)
    )
    bad = {s: n for s, n in statuses.items() if s != 202}
    banned = {e["id"] for e in events if BANNED in e["data"]["text"]}
    missing = watcher.wait_for(banned, timeout=30)
    timeout_ms = 30_000.0
    from_send, from_accept = [], []
    for event_id in banned:
        arrived = watcher.arrived.get(event_id)
        if arrived is None:
            from_send.append(timeout_ms)
            from_accept.append(timeout_ms)
            continue
        from_send.append((arrived - scheduled[event_id]) * 1000)
        from_accept.append((arrived - answered[event_id]) * 1000)
    return {
        "p50": percentile(from_send, 50),
        "p99": percentile(from_send, 99),
        "accept_p50": percentile(from_accept, 50),
        "accept_p99": percentile(from_accept, 99),
        "missing": float(missing),
        "refused": float(sum(bad.values())),
        "actions": float(len(banned)),
    }


def _env(*, settings: Settings, config: Path, database_url: str) -> dict[str, str]:
    import os

    return {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "REDIS_URL": settings.redis_url,
        "DATABASE_URL": database_url,
        "QUNYUN_CONFIG": str(config),
        "TOPIC_EVENTS": settings.topic_events,
        "TOPIC_MODERATION_ACTIONS": settings.topic_moderation_actions,
        "TOPIC_CAMPAIGN_NOTIFICATIONS": settings.topic_campaign_notifications,
        "TOPIC_CAMPAIGN_REWARDS": settings.topic_campaign_rewards,
        "TOPIC_DEADLETTER": settings.topic_deadletter,
        "CONSUMER_GROUP_PREFIX": settings.consumer_group_prefix,
        "LOG_LEVEL": "WARNING",
    }


def run(
    *, bootstrap: str, redis_url: str, database_url: str, smoke: bool = False, repeats: int = 3
) -> list[dict[str, Any]]:
    """Measure webhook → moderation action latency at a fixed rate; return the result rows."""
    rate = 100.0 if smoke else RATE
    count = 100 if smoke else int(RATE * 10)
    repeats = 1 if smoke else repeats
    tag = uuid.uuid4().hex[:8]
    settings = Settings(
        kafka_bootstrap_servers=bootstrap,
        redis_url=redis_url,
        topic_events=f"bench-e2e-{tag}-events",
        topic_moderation_actions=f"bench-e2e-{tag}-actions",
        topic_campaign_notifications=f"bench-e2e-{tag}-notifications",
        topic_campaign_rewards=f"bench-e2e-{tag}-rewards",
        topic_deadletter=f"bench-e2e-{tag}-deadletter",
        consumer_group_prefix=f"bench-e2e-{tag}-",
    )
    ensure_topics(settings)
    secret, token = secrets.token_hex(16), "qy_bench_" + secrets.token_urlsafe(16)
    group = f"bench:e2e:{tag}"
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-e2e-")))
        config = write_config(
            workdir / "qunyun.toml",
            QunyunConfig(
                sources=[Source(id=SOURCE, platform="generic", secret=secret)],
                tokens=[token_entry("bench", token, ["*"], ["read", "write"])],
            ),
        )
        if database_url.startswith("sqlite"):
            database_url = f"sqlite:///{workdir / 'moderation.db'}"
        env = _env(settings=settings, config=config, database_url=database_url)
        ingest = stack.enter_context(_service(name="ingest", env=env, log_dir=workdir))
        moderation = stack.enter_context(_service(name="moderation", env=env, log_dir=workdir))
        rule = {
            "name": "禁止广告",
            "kind": "keywords",
            "params": {"keywords": [BANNED, "代购"], "allow": [], "match": "substring"},
            "action": "delete",
        }
        resp = httpx.post(
            f"{moderation}/v1/groups/{group}/rules",
            json=rule,
            headers={"Authorization": f"Bearer {token}"},
            timeout=15,
        )
        if resp.status_code not in (200, 201):
            raise RuntimeError(f"creating the rule answered {resp.status_code}: {resp.text[:300]}")
        watcher = ActionWatcher(bootstrap=bootstrap, topic=settings.topic_moderation_actions)
        stack.callback(watcher.close)
        warm = _measure(
            ingest=ingest, secret=secret, watcher=watcher, group=group, count=50, rate=50, seed=0
        )
        if warm["missing"]:
            raise RuntimeError("warm-up: moderation published no action for the banned messages")
        results = [
            _measure(
                ingest=ingest,
                secret=secret,
                watcher=watcher,
                group=group,
                count=count,
                rate=rate,
                seed=k + 1,
            )
            for k in range(repeats)
        ]
    p50 = median([r["p50"] for r in results])
    p99 = median([r["p99"] for r in results])
    missing = sum(r["missing"] for r in results)
    refused = sum(r["refused"] for r in results)
    notes = (
        f"{count} single-event webhooks at {rate:g}/s open-loop, 1 in 5 banned "
        f"({int(results[0]['actions'])} actions/run), median of {repeats} runs; "
        f"from 202: p50 {median([r['accept_p50'] for r in results]):.1f} ms, "
        f"p99 {median([r['accept_p99'] for r in results]):.1f} ms"
    )
    if missing or refused:
        notes += f"; {int(missing)} actions missing, {int(refused)} webhooks refused"
    sound = not missing and not refused
    met = None if smoke else (sound and p99 < TARGET_P99_MS)
    return [
        row(
            name=f"e2e webhook→action p50 @{rate:g}/s",
            value=p50,
            unit="ms",
            notes="latency from scheduled send to the action on moderation.actions.v1",
        ),
        row(
            name=f"e2e webhook→action p99 @{rate:g}/s",
            value=p99,
            unit="ms",
            target=f"< {TARGET_P99_MS:g} ms at {RATE:g}/s",
            met=met,
            notes=notes,
        ),
    ]
