"""Apply events to a group's Redis state: dedup and update in one Lua call per group and batch.

A call of the script (lua/apply.lua) takes every event of one group in the batch
(one JSON argument). For each event it claims the event's fingerprint in the day's
dedup sets and, only when the claim is new, updates the counters; a replayed event
therefore changes nothing. Counters touched many times in a batch (day totals, minutes,
member records) are summed in the script and written once at its end, still
inside the same atomic call. All groups of a poll go to Redis in one pipeline.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from importlib.resources import files
from zoneinfo import ZoneInfo

import orjson
import redis

from services.common.contracts.events import Event
from services.metrics.keys import NEVER_SPOKE_OFFSET, RECORD_BITS, GroupKeys, local_day, today

# A dedup bucket holds at most this many fingerprints, so it stays a compact intset
# (Redis' default set-max-intset-entries is 512).
DEDUP_BUCKET_SIZE = 512

# The script (lua/apply.lua) takes these constants as arguments after its batch.
_CONSTANTS = (RECORD_BITS, DEDUP_BUCKET_SIZE, NEVER_SPOKE_OFFSET)
APPLY_LUA = (files("services.metrics") / "lua" / "apply.lua").read_text(encoding="utf-8")

_KIND = {"message.created": "m", "member.joined": "j", "member.left": "l"}


@dataclass
class ApplyResult:
    """What a batch did: events applied per type, duplicates and too-old events skipped."""

    applied: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    duplicates: int = 0
    too_old: int = 0


def fingerprint(source: str, event_id: str) -> tuple[str, int]:
    """Return the 64-bit fingerprint of (source, id) as a decimal, and its 16-bit bucket hash."""
    digest = hashlib.blake2b(
        f"{source}\x1f{event_id}".encode("utf-8", "surrogatepass"), digest_size=10
    ).digest()
    return str(int.from_bytes(digest[:8], "big", signed=True)), int.from_bytes(digest[8:], "big")


Row = tuple[str, str, int, str, str, int]


def script_row(
    *, kind: str, source: str, event_id: str, member_id: str, ts_ms: int, day: int
) -> Row:
    """Return one event as the script reads it (kind is m, j or l)."""
    digest, bucket_hash = fingerprint(source, event_id)
    return (kind, digest, bucket_hash, member_id, str(ts_ms), day)


def rows_by_group(
    events: Iterable[Event], *, tz: ZoneInfo, history_days: int, now: datetime | None = None
) -> tuple[dict[str, list[Row]], ApplyResult]:
    """Turn events into each group's script rows, dropping ones older than the history."""
    oldest = today(tz, now) - history_days + 1
    per_group: dict[str, list[Row]] = defaultdict(list)
    result = ApplyResult()
    for event in events:
        kind = _KIND.get(event.type)
        if kind is None:
            result.applied[event.type] += 1  # member.updated changes no metric
            continue
        day = local_day(event.occurred_at, tz)
        if day < oldest:
            result.too_old += 1
            continue
        per_group[event.group_id].append(
            script_row(
                kind=kind,
                source=event.source,
                event_id=event.id,
                member_id=event.member_id,
                ts_ms=int(event.occurred_at.timestamp() * 1000),
                day=day,
            )
        )
    return per_group, result


class Applier:
    """Apply batches of events for one deployment's timezone and history."""

    def __init__(self, client: redis.Redis, *, tz: ZoneInfo, history_days: int) -> None:
        self.client = client
        self.tz = tz
        self.history_days = history_days
        self.script = client.register_script(APPLY_LUA)

    def queue(self, pipe: redis.client.Pipeline, group_id: str, rows: list[Row]) -> None:
        """Queue one script call of a group's events on a pipeline (one JSON argument)."""
        prefix = GroupKeys(group_id).prefix
        self.script(
            keys=[prefix + "ids"],
            args=[prefix, self.history_days, orjson.dumps(rows), *_CONSTANTS],
            client=pipe,
        )

    def apply(self, events: Sequence[Event], *, now: datetime | None = None) -> ApplyResult:
        """Apply a batch: every group's events in one script call, all calls in one pipeline."""
        per_group, result = rows_by_group(
            events, tz=self.tz, history_days=self.history_days, now=now
        )
        if not per_group:
            return result
        pipe = self.client.pipeline(transaction=False)
        for group_id, args in per_group.items():
            self.queue(pipe, group_id, args)
        for messages, joins, leaves, dups in pipe.execute():
            result.applied["message.created"] += messages
            result.applied["member.joined"] += joins
            result.applied["member.left"] += leaves
            result.duplicates += dups
        return result
