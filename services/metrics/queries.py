"""Reads of a group's state: daily activity, active members, windows, members, leaders."""

from __future__ import annotations

import base64
import binascii
import heapq
import struct
import sys
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast

import redis

from services.metrics.bitplan import BitPlan
from services.metrics.keys import (
    JOIN_BYTES,
    NEVER_SPOKE_OFFSET,
    RECORD_BYTES,
    RECORD_FORMAT,
    GroupKeys,
    day_of_number,
)
from services.metrics.models import (
    Active,
    DayActivity,
    DormantMember,
    DormantPage,
    Leader,
    MemberSummary,
    Rolling,
    Window,
)

WINDOW_MINUTES: dict[str, int] = {"5m": 5, "1h": 60, "24h": 1440}


def _ms_to_datetime(ms: int) -> datetime | None:
    return datetime.fromtimestamp(ms / 1000, UTC) if ms else None


def _name(value: bytes | None) -> str:
    return value.decode() if value is not None else ""


def _display(value: bytes | None) -> str | None:
    """Return the name of a `dn` value ("<ms>|<name>")."""
    return value.decode().split("|", 1)[1] if value is not None else None


def _int(value: bytes | None) -> int:
    return int(value) if value is not None else 0


@dataclass(frozen=True)
class MemberRecord:
    """One member's lifetime fields as the apply script keeps them."""

    id: int
    first_join: int
    last_join: int
    last_leave: int
    last_active: int
    messages: int
    active_days: int

    @property
    def seen(self) -> bool:
        """Tell whether a join, leave or message of the member was seen."""
        return bool(self.first_join or self.last_leave or self.last_active)

    @property
    def present(self) -> bool:
        """Tell whether the member is in the group: no leave after its last join or message."""
        return self.last_leave == 0 or max(self.last_join, self.last_active) > self.last_leave


def _records(blob: bytes, first_id: int = 0) -> list[MemberRecord]:
    blob += b"\0" * (-len(blob) % RECORD_BYTES)
    return [
        MemberRecord(first_id + i, *fields[:6])
        for i, fields in enumerate(struct.iter_unpack(RECORD_FORMAT, blob))
    ]


def read_activity(
    client: redis.Redis, *, group_id: str, first_day: int, last_day: int
) -> list[DayActivity]:
    """Return each day's messages, active members, joins and leaves."""
    keys = GroupKeys(group_id)
    pipe = client.pipeline(transaction=False)
    days = range(first_day, last_day + 1)
    for day in days:
        pipe.hmget(keys.day(day), "m", "u", "j", "l")
    return [
        DayActivity(
            date=day_of_number(day),
            messages=_int(m),
            active_members=_int(u),
            joins=_int(j),
            leaves=_int(le),
        )
        for day, (m, u, j, le) in zip(days, pipe.execute(), strict=True)
    ]


def read_active(client: redis.Redis, *, group_id: str, day: int) -> Active:
    """Return DAU, WAU (7 days ending on the day), MAU (30 days) and stickiness."""
    keys = GroupKeys(group_id)
    plan = BitPlan(client, keys)
    dau = plan.count(keys.active(day))
    wau = plan.count(plan.union([keys.active(d) for d in range(day - 6, day + 1)]))
    mau = plan.count(plan.union([keys.active(d) for d in range(day - 29, day + 1)]))
    plan.run()
    daily, monthly = plan.result(dau), plan.result(mau)
    return Active(
        date=day_of_number(day),
        dau=daily,
        wau=plan.result(wau),
        mau=monthly,
        stickiness=round(daily / monthly, 4) if monthly else 0.0,
    )


def read_rolling(client: redis.Redis, *, group_id: str, window: Window, now_ms: int) -> Rolling:
    """Return messages and active members in the minutes of the window ending now."""
    keys = GroupKeys(group_id)
    last = now_ms // 60000
    first = last - WINDOW_MINUTES[window] + 1
    hours: dict[int, list[int]] = {}
    for minute in range(first, last + 1):
        hours.setdefault(minute // 60, []).append(minute % 60)
    pipe = client.pipeline(transaction=False)
    for hour, minutes in hours.items():
        pipe.hmget(keys.minutes(hour), [str(m) for m in minutes])
    pipe.zcount(keys.recent, first * 60000, (last + 1) * 60000 - 1)
    *per_hour, active = pipe.execute()
    messages = sum(_int(v) for values in per_hour for v in values)
    return Rolling(window=window, messages=messages, active_members=int(active))


def read_member(client: redis.Redis, *, group_id: str, member_id: str) -> MemberSummary | None:
    """Return a member's summary, or None for a member never seen."""
    keys = GroupKeys(group_id)
    found = client.hget(keys.ids, member_id)
    if found is None:
        return None
    dense = int(found)
    pipe = client.pipeline(transaction=False)
    pipe.getrange(keys.members, dense * RECORD_BYTES, (dense + 1) * RECORD_BYTES - 1)
    pipe.getrange(keys.joins, dense * JOIN_BYTES, (dense + 1) * JOIN_BYTES - 1)
    pipe.hget(keys.display, str(dense))
    blob, joined, shown = pipe.execute()
    (record,) = _records(cast(bytes, blob), dense)
    if not record.seen:
        return None  # only named as an inviter, or only renamed
    channel, inviter = (
        struct.unpack(">II", (joined + bytes(8))[:8]) if record.first_join else (0, 0)
    )
    pipe.hget(keys.channels, f"i:{channel}")
    pipe.hget(keys.names, str(inviter))
    channel_name, inviter_id = pipe.execute()
    return MemberSummary(
        member_id=member_id,
        display_name=_display(shown),
        joined_at=_ms_to_datetime(record.first_join),
        left_at=None if record.present else _ms_to_datetime(record.last_leave),
        last_active_at=_ms_to_datetime(record.last_active),
        messages=record.messages,
        active_days=record.active_days,
        channel=_name(channel_name) if channel else None,
        invited_by=_name(inviter_id) if inviter else None,
    )


class InvalidCursor(ValueError):
    """A pagination cursor this API did not hand out."""


def encode_cursor(position: tuple[int, int]) -> str:
    """Return the opaque cursor after a position (silence score, dense id) of the dormant order."""
    return base64.urlsafe_b64encode(".".join(map(str, position)).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, int]:
    """Return the position a cursor stands for; raise InvalidCursor."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        score, dense = (int(part) for part in text.split("."))
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidCursor("cursor is not one this API returned") from exc
    return (score, dense)


def _after(cursor: tuple[int, int] | None, score: int, dense: int) -> bool:
    # Redis orders equal scores by member bytes, so ties compare as strings too.
    return cursor is None or score > cursor[0] or str(dense) > str(cursor[1])


def read_dormant(
    client: redis.Redis,
    *,
    group_id: str,
    silent_since_ms: int,
    limit: int,
    cursor: tuple[int, int] | None,
) -> DormantPage:
    """Return current members with no message since the instant, never-spoke first."""
    keys = GroupKeys(group_id)
    low = cursor[0] if cursor is not None else -NEVER_SPOKE_OFFSET * 100
    page: list[tuple[int, int]] = []
    offset = 0
    while len(page) <= limit:
        chunk = client.zrange(
            keys.quiet,
            low,
            silent_since_ms - 1,  # scores are whole milliseconds
            byscore=True,
            offset=offset,
            num=limit + 1,
            withscores=True,
        )
        if not chunk:
            break
        offset += len(chunk)
        page += [
            (int(score), int(member))
            for member, score in cast(list[tuple[bytes, float]], chunk)
            if _after(cursor, int(score), int(member))
        ]
    more = len(page) > limit
    page = page[:limit]
    if not page:
        return DormantPage(members=[], next_cursor=None)
    pipe = client.pipeline(transaction=False)
    pipe.hmget(keys.names, [str(dense) for _, dense in page])
    pipe.hmget(keys.display, [str(dense) for _, dense in page])
    for _, dense in page:
        pipe.getrange(keys.members, dense * RECORD_BYTES, (dense + 1) * RECORD_BYTES - 1)
    names, shown, *blobs = pipe.execute()
    records = [_records(blob, dense)[0] for blob, (_, dense) in zip(blobs, page, strict=True)]
    return DormantPage(
        members=[
            DormantMember(
                member_id=_name(name),
                display_name=_display(label),
                joined_at=_ms_to_datetime(r.first_join),
                last_active_at=_ms_to_datetime(r.last_active),
            )
            for r, name, label in zip(records, names, shown, strict=True)
        ],
        next_cursor=encode_cursor(page[-1]) if more else None,
    )


def sum_u16_arrays(blobs: Sequence[bytes]) -> array:
    """Return slot-wise sums of big-endian u16 arrays as an array of unsigned 32-bit ints.

    Each day's array becomes one Python int; even and odd slots are masked into
    32-bit lanes so a sum of up to 65536 days can never carry into a neighbour.
    """
    width = max((len(b) for b in blobs), default=0)
    width += -width % 4
    low_mask = int.from_bytes(b"\x00\x00\xff\xff" * (width // 4), "big")
    odd = even = 0
    for blob in blobs:
        value = int.from_bytes(blob.ljust(width, b"\0"), "big")
        odd += value & low_mask
        even += (value >> 16) & low_mask
    lanes_odd = array("I", odd.to_bytes(width, "big"))
    lanes_even = array("I", even.to_bytes(width, "big"))
    if sys.byteorder == "little":
        lanes_odd.byteswap()
        lanes_even.byteswap()
    totals = array("I", bytes(width * 2))
    totals[0::2] = lanes_even
    totals[1::2] = lanes_odd
    return totals


def read_leaderboard(
    client: redis.Redis, *, group_id: str, first_day: int, last_day: int, limit: int
) -> list[Leader]:
    """Return the members with the most messages over the days, ties by first seen."""
    keys = GroupKeys(group_id)
    pipe = client.pipeline(transaction=False)
    pipe.smembers(keys.removed)
    for day in range(first_day, last_day + 1):
        pipe.get(keys.counts(day))
    removed, *blobs = pipe.execute()
    totals = sum_u16_arrays([b for b in blobs if b])
    for dense in cast(set[bytes], removed):  # kicked or banned by moderation
        if int(dense) < len(totals):
            totals[int(dense)] = 0
    top = [
        i for i in heapq.nlargest(limit, range(len(totals)), key=totals.__getitem__) if totals[i]
    ]
    if not top:
        return []
    pipe.hmget(keys.names, [str(i) for i in top])
    pipe.hmget(keys.display, [str(i) for i in top])
    names, shown = pipe.execute()
    return [
        Leader(member_id=_name(name), display_name=_display(label), messages=totals[i])
        for i, name, label in zip(top, names, shown, strict=True)
    ]
