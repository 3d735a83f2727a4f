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
from datetime import datetime
from importlib.resources import files
from zoneinfo import ZoneInfo

import orjson
import redis

from services.common.contracts.actions import ModerationAction
from services.common.contracts.events import Event, MemberJoined, MessageCreated
from services.common.redis_client import queue_script, run_pipeline
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


def _extra(event: Event) -> tuple[str, ...]:
    if isinstance(event, MessageCreated):
        return (event.data.message_id,)
    if isinstance(event, MemberJoined):
        # The contract bounds `channel` (≤ 64 characters); an empty one counts as none.
        return (event.data.channel or "", event.data.invited_by or "")
    return ()


NameRows = dict[str, tuple[int, str]]


def _keep_name(names: NameRows, event: Event, ts_ms: int) -> None:
    name = getattr(event.data, "display_name", None)
    if name and (event.member_id not in names or names[event.member_id] < (ts_ms, name)):
        names[event.member_id] = (ts_ms, name)


@dataclass
class GroupBatch:
    """One group's share of a batch: event rows and the latest display name per member."""

    rows: list[Row] = field(default_factory=list)
    names: NameRows = field(default_factory=dict)


def rows_by_group(
    events: Iterable[Event],
    *,
    tz: ZoneInfo,
    history_days: int,
    now: datetime | None = None,
) -> tuple[dict[str, GroupBatch], ApplyResult]:
    """Turn events into each group's script rows, dropping ones older than the history.

    Hot path (every event of every poll): the local day is worked out once per UTC minute
    of the batch — every zone's offset and transitions since 1972 fall on whole minutes, so
    all instants of a minute share a local day — and rows are built inline, not through
    script_row's keywords.
    """
    oldest = today(tz, now) - history_days + 1
    per_group: dict[str, GroupBatch] = defaultdict(GroupBatch)
    result = ApplyResult()
    day_of_minute: dict[int, int] = {}
    for event in events:
        ts_ms = int(event.occurred_at.timestamp() * 1000)
        day = day_of_minute.get(ts_ms // 60_000)
        if day is None:
            day = day_of_minute[ts_ms // 60_000] = local_day(event.occurred_at, tz)
        if day < oldest:
            result.too_old += 1
            continue
        batch = per_group[event.group_id]
        _keep_name(batch.names, event, ts_ms)
        kind = _KIND.get(event.type)
        if kind is None:
            result.applied[event.type] += 1  # member.updated changes only the name
            continue
        digest, bucket_hash = fingerprint(event.source, event.id)
        batch.rows.append(
            (kind, digest, bucket_hash, event.member_id, str(ts_ms), day, *_extra(event))
        )
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

    def apply(
        self,
        events: Sequence[Event],
        *,
        now: datetime | None = None,
    ) -> ApplyResult:
        """Apply a batch: every group's events in one script call, all calls in one pipeline."""
        per_group, result = rows_by_group(
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
