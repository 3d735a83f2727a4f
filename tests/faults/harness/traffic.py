"""Traffic into ingest: a paced background streamer that retries 503s, and single posts."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson

from tests.faults.harness.scale import SECRET, SOURCE
from tools.simulate import send_webhook_batches, sign_generic
from tools.stack import HTTP


class Acknowledged:
    """The events ingest answered 202 for (thread-safe; the ground truth's input)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.events: list[dict[str, Any]] = []
        self.times: list[float] = []  # time.perf_counter() of each 202

    def __call__(self, batch: list[dict[str, Any]], at: float) -> None:
        with self._lock:
            self.events.extend(batch)
            self.times.append(at)

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.events)


class Streamer(threading.Thread):
    """Send events to ingest in a background thread, paced, retrying 503s."""

    def __init__(
        self, *, url: str, events: Sequence[dict[str, Any]], seconds: float, batch_size: int = 50
    ) -> None:
        super().__init__(name="fault-streamer", daemon=True)
        self.url, self.events, self.batch_size = url, events, batch_size
        self.seconds = seconds
        self.rate = max(len(events) / seconds, 1.0)
        self.acknowledged = Acknowledged()
        self.stats: dict[str, Any] = {}
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.stats = send_webhook_batches(
                url=self.url,
                source_id=SOURCE,
                secret=SECRET,
                events=self.events,
                batch_size=self.batch_size,
                rate=self.rate,
                on_accepted=self.acknowledged,
                max_wait_seconds=180,
            )
        except BaseException as exc:  # noqa: BLE001 - surfaced by finish()
            self.error = exc

    def finish(self, timeout: float) -> dict[str, Any]:
        """Wait for the stream to end; raise what the sender raised."""
        self.join(timeout)
        assert not self.is_alive(), f"the stream did not finish in {timeout}s"
        if self.error is not None:
            raise self.error
        return self.stats


def post_events(
    url: str, events: Sequence[Mapping[str, Any]], timeout: float = 30
) -> httpx.Response:
    """POST events as one signed generic batch to ingest at url."""
    body = orjson.dumps({"events": list(events)})
    return HTTP.post(
        f"{url}/v1/webhooks/{SOURCE}",
        content=body,
        headers=sign_generic(secret=SECRET, body=body),
        timeout=timeout,
    )


def message(
    group: str, member: str, text: str, *, event_id: str, at: datetime | None = None
) -> dict[str, Any]:
    """Return a generic message.created event."""
    return {
        "id": event_id,
        "source": SOURCE,
        "type": "message.created",
        "group_id": group,
        "member_id": member,
        "occurred_at": (at or datetime.now(UTC)).isoformat(),
        "data": {"message_id": f"m-{event_id}", "text": text, "kind": "text"},
    }
