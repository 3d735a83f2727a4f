"""Apply events to a group's Redis state: dedup and update in one Lua call per group and batch.

A call of the script (lua/apply.lua) takes every event of one group in the batch
(one JSON argument). For each event it claims the event's fingerprint in the day's
dedup sets and, only when the claim is new, updates the counters; a replayed event
therefore changes nothing. Counters touched many times in a batch (day totals, minutes,
member records) are summed in the script and written once at its end, still
inside the same atomic call. All groups of a poll go to Redis in one pipeline.

The same script takes moderation's actions (a deleted message stops counting, kicked
and banned members leave the leaderboards) and the members' latest display names.
"""

from __future__ import annotations

import hashlib
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from zoneinfo import ZoneInfo

import orjson
import redis

from services.common.contracts.actions import ModerationAction
from services.common.contracts.events import Event
from services.common.redis_client import queue_script, run_pipeline
from services.metrics.facts import Facts, facts_of
from services.metrics.keys import (
    GROUP_INDEX,
    JOIN_BITS,
    MESSAGE_INDEX_DAYS,
    NEVER_SPOKE_OFFSET,
    RECORD_BITS,
    GroupKeys,
    local_day,
    today,
)

# A dedup bucket holds at most this many fingerprints, so it stays a compact intset
# (Redis' default set-max-intset-entries is 512).
DEDUP_BUCKET_SIZE = 512

# The script (lua/apply.lua) takes these constants as arguments after its batch.
_CONSTANTS = (RECORD_BITS, DEDUP_BUCKET_SIZE, NEVER_SPOKE_OFFSET)
APPLY_LUA = (files("services.metrics") / "lua" / "apply.lua").read_text(encoding="utf-8")

_KIND = {"message.created": "m", "member.joined": "j", "member.left": "l"}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class ApplyResult:
    """What a batch did: events applied per type, duplicates and too-old events skipped."""

    applied: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    duplicates: int = 0
    too_old: int = 0
    deleted_unseen: int = 0  # messages not counted: moderation deleted them before they came
    deleted_subtracted: int = 0  # counted messages taken out again by a later deletion


def fingerprint(source: str, event_id: str) -> tuple[str, int]:
    """Return the 64-bit fingerprint of (source, id) as a decimal, and its 16-bit bucket hash."""
    digest = hashlib.blake2b(
        f"{source}\x1f{event_id}".encode("utf-8", "surrogatepass"), digest_size=10
    ).digest()
    value = int.from_bytes(digest, "big")  # one conversion, split: 64 signed bits, 16 bits
    high = value >> 16
    return str(high - (1 << 64) if high >> 63 else high), value & 0xFFFF


Row = tuple[str | int, ...]


def script_row(
    *,
    kind: str,
    source: str,
    event_id: str,
    member_id: str,
    ts_ms: int,
    day: int,
    extra: tuple[str, ...] = (),
) -> Row:
    """Return one event as the script reads it (kind is m, j or l).

    `extra` is the message id for m, the channel and the inviter ("" for none) for j.
    """
    digest, bucket_hash = fingerprint(source, event_id)
    return (kind, digest, bucket_hash, member_id, str(ts_ms), day, *extra)


NameRows = dict[str, tuple[int, str]]


@dataclass
class GroupBatch:
    """One group's share of a batch: event rows and the latest display name per member."""

    rows: list[Row] = field(default_factory=list)
    names: NameRows = field(default_factory=dict)


def rows_of_facts(
    events: Iterable[Facts],
    *,
    tz: ZoneInfo,
    history_days: int,
    now: datetime | None = None,
) -> tuple[dict[str, GroupBatch], ApplyResult]:
    """Turn events' facts into each group's script rows, dropping ones older than the history.

    Hot path (every event of every poll): the local day is worked out once per UTC minute
    of the batch — every zone's offset and transitions since 1972 fall on whole minutes, so
    all instants of a minute share a local day — and rows are built inline, not through
    script_row's keywords.
    """
    oldest = today(tz, now) - history_days + 1
    per_group: dict[str, GroupBatch] = defaultdict(GroupBatch)
    result = ApplyResult()
    day_of_minute: dict[int, int] = {}
    for group_id, type_, source, event_id, member_id, ts_ms, extra, name in events:
        minute = ts_ms // 60_000
        day = day_of_minute.get(minute)
        if day is None:
            day = day_of_minute[minute] = local_day(_EPOCH + timedelta(minutes=minute), tz)
        if day < oldest:
            result.too_old += 1
            continue
        batch = per_group[group_id]
        if name:
            names = batch.names
            if member_id not in names or names[member_id] < (ts_ms, name):
                names[member_id] = (ts_ms, name)
        kind = _KIND.get(type_)
        if kind is None:
            result.applied[type_] += 1  # member.updated changes only the name
            continue
        digest, bucket_hash = fingerprint(source, event_id)
        batch.rows.append((kind, digest, bucket_hash, member_id, str(ts_ms), day, *extra))
    return per_group, result


_ACTION_ROWS = {"delete": "d", "kick": "b", "ban": "b", "unban": "u"}


def action_rows(actions: Iterable[ModerationAction]) -> dict[str, list[list[str]]]:
    """Return each group's script rows of the actions metrics cares about, in order."""
    per_group: dict[str, list[list[str]]] = defaultdict(list)
    for action in actions:
        kind = _ACTION_ROWS.get(action.action)
        if kind == "d" and action.message_id:
            per_group[action.group_id].append(["d", action.member_id, action.message_id])
        elif kind in ("b", "u"):
            per_group[action.group_id].append([kind, action.member_id])
    return per_group


class Applier:
    """Apply batches of events for one deployment's timezone and history."""

    def __init__(self, client: redis.Redis, *, tz: ZoneInfo, history_days: int) -> None:
        self.client = client
        self.tz = tz
        self.history_days = history_days
        self.script = client.register_script(APPLY_LUA)

    def queue(
        self,
        pipe: redis.client.Pipeline,
        group_id: str,
        rows: Sequence[Row],
        *,
        names: NameRows | None = None,
        actions: Sequence[list[str]] = (),
        now: datetime | None = None,
    ) -> None:
        """Queue one script call of a group's events and actions on a pipeline."""
        prefix = GroupKeys(group_id).prefix
        display = [[m, str(ms), name] for m, (ms, name) in (names or {}).items()]
        queue_script(
            pipe,
            self.script,
            keys=[prefix + "ids"],
            args=[
                prefix,
                self.history_days,
                orjson.dumps(rows),
                *_CONSTANTS,
                today(self.tz, now),
                MESSAGE_INDEX_DAYS,
                orjson.dumps(display),
                orjson.dumps(actions),
                JOIN_BITS,
            ],
        )

    def index(self, pipe: redis.client.Pipeline, groups: Iterable[str]) -> None:
        """Note the groups in the overview's index (its own key: another cluster slot)."""
        now_ms = int(time.time() * 1000)
        pipe.zadd(GROUP_INDEX, dict.fromkeys(groups, now_ms), gt=True)
        pipe.zremrangebyscore(GROUP_INDEX, "-inf", now_ms - (self.history_days + 2) * 86_400_000)
        pipe.expire(GROUP_INDEX, (self.history_days + 2) * 86400)

    def apply(self, events: Sequence[Event], *, now: datetime | None = None) -> ApplyResult:
        """Apply a batch of typed events (see apply_facts)."""
        return self.apply_facts([facts_of(e) for e in events], now=now)

    def apply_facts(self, events: Sequence[Facts], *, now: datetime | None = None) -> ApplyResult:
        """Apply a batch: every group's events in one script call, all calls in one pipeline."""
        per_group, result = rows_of_facts(
            events, tz=self.tz, history_days=self.history_days, now=now
        )
        if not per_group:
            return result
        pipe = self.client.pipeline(transaction=False)
        for group_id, batch in per_group.items():
            self.queue(pipe, group_id, batch.rows, names=batch.names, now=now)
        self.index(pipe, per_group)
        for answer in run_pipeline(pipe)[: len(per_group)]:
            _add(result, answer)
        return result

    def apply_actions(
        self, actions: Sequence[ModerationAction], *, now: datetime | None = None
    ) -> ApplyResult:
        """Apply moderation's deletions, kicks, bans and unbans, one script call per group."""
        result = ApplyResult()
        per_group = action_rows(actions)
        if per_group:
            pipe = self.client.pipeline(transaction=False)
            for group_id, rows in per_group.items():
                self.queue(pipe, group_id, [], actions=rows, now=now)
            for answer in run_pipeline(pipe):
                _add(result, answer)
        return result


def _add(result: ApplyResult, answer: list[int]) -> None:
    messages, joins, leaves, dups, unseen, subtracted = answer
    result.applied["message.created"] += messages
    result.applied["member.joined"] += joins
    result.applied["member.left"] += leaves
    result.duplicates += dups
    result.deleted_unseen += unseen
    result.deleted_subtracted += subtracted
