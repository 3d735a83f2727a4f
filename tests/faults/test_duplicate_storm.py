"""The same webhook delivered 5 times at once, the first still in flight: exactly one copy
of each event reaches the topic and the other four deliveries count as duplicates.

The first delivery is held in flight for real: the broker is frozen (SIGSTOP) while it
waits for Kafka's acknowledgement, and the four copies arrive during that wait.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime

import httpx
import orjson
import pytest

from services.common.kafka.admin import ensure_topics
from tests.faults.harness import SECRET, SOURCE, Figures, Frozen, read_values
from tools.localstack import free_port, start_tansu, stop
from tools.simulate import sign_generic
from tools.stack import service_stack

COPIES = 5
HOLD_SECONDS = 1.5


def events(n: int) -> list[dict]:
    run = uuid.uuid4().hex[:10]
    now = datetime.now(UTC).isoformat()
    return [
        {
            "id": f"storm-{run}-{i}",
            "type": "message.created",
            "group_id": f"storm:{run}:g{i % 3}",
            "member_id": f"storm:{run}:m{i % 17}",
            "occurred_at": now,
            "data": {"message_id": f"m-{run}-{i}", "text": "收到，谢谢"},
        }
        for i in range(n)
    ]


@pytest.fixture
def storm(make_settings, tmp_path):
    """Ingest as a real process on a private broker the test can freeze."""
    port = free_port()
    broker = start_tansu(port, tmp_path / "broker.log")
    settings = make_settings(kafka_bootstrap_servers=f"127.0.0.1:{port}")
    ensure_topics(settings)
    try:
        with service_stack(settings, tmp_path / "logs", names=("ingest",)) as stack:
            yield stack, broker, settings
    finally:
        stop(broker)


def deliver(url: str, body: bytes) -> httpx.Response:
    return httpx.post(url, content=body, headers=sign_generic(secret=SECRET, body=body), timeout=30)


@pytest.mark.parametrize("size", [1, 200], ids=["single", "batch"])
def test_five_concurrent_deliveries_put_each_event_on_the_topic_once(storm, size):
    stack, broker, settings = storm
    url = f"{stack.url('ingest')}/v1/webhooks/{SOURCE}"
    batch = events(size)
    body = orjson.dumps(batch[0] if size == 1 else {"events": batch})
    with ThreadPoolExecutor(max_workers=COPIES) as pool:
        with Frozen(broker):
            first: Future[httpx.Response] = pool.submit(deliver, url, body)
            time.sleep(0.3)
            in_flight = not first.done()
            start = threading.Barrier(COPIES - 1)

            def copy() -> httpx.Response:
                start.wait()
                return deliver(url, body)

            copies = [pool.submit(copy) for _ in range(COPIES - 1)]
            time.sleep(HOLD_SECONDS)
        answers = [first.result(), *(c.result() for c in copies)]

    records = read_values(
        settings.kafka_bootstrap_servers, settings.topic_events, expect=size, timeout=30, settle=2.0
    )
    on_topic = Counter(r["id"] for r in records)
    codes = [a.status_code for a in answers]
    accepted = sum(a.json().get("accepted", 0) for a in answers if a.status_code == 202)
    duplicates = sum(a.json().get("duplicates", 0) for a in answers if a.status_code == 202)
    figures = Figures(
        f"duplicate_storm_{'single' if size == 1 else 'batch'}",
        sent=COPIES * size,
        acknowledged=accepted,
        counted=len(records),
        lost=sum(1 for e in batch if on_topic[e["id"]] == 0),
        doubled=sum(n - 1 for n in on_topic.values() if n > 1),
        status_503=codes.count(503),
        extra={"duplicates": duplicates, "codes": codes, "first_in_flight": in_flight},
    )
    summary = figures.report()
    assert in_flight, "the first delivery was answered before the copies were sent"
    assert codes == [202] * COPIES, f"{summary}: {[a.text[:200] for a in answers]}"
    assert accepted == size and duplicates == (COPIES - 1) * size, summary
    assert set(on_topic) == {e["id"] for e in batch}, summary
    assert figures.lost == 0 and figures.doubled == 0, summary
