"""The roster: each member's join, leave and last-message times, kept from every event.

The consumer merges one poll's events per member in memory and writes them in one
upsert whose columns only move one way (first join: the earliest; last join, leave,
message: the latest; the display name: the one with the latest `occurred_at`), so a
replayed or late event changes nothing it should not. The clean-up preview and the
timers read it: a current member is one seen joining or speaking with no leave after
their latest join or message — the rule metrics' dormant list uses.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import Session, col, select

from services.common.contracts.events import (
    Event,
    MemberJoined,
    MemberLeft,
    MemberUpdated,
    MessageCreated,
)
from services.common.db import dialect_of, insert_rows, rows_params
from services.moderation.membership_models import MemberRecord

TIMES = ("first_joined_at", "last_joined_at", "last_left_at", "last_active_at")
COLUMNS = ("group_id", "member_id", "display_name", "named_at", *TIMES)


@dataclass(slots=True)
class Seen:
    """What one poll said of one member (merged before the upsert)."""

    group_id: str
    member_id: str
    display_name: str | None = None
    named_at: datetime | None = None
    first_joined_at: datetime | None = None
    last_joined_at: datetime | None = None
    last_left_at: datetime | None = None
    last_active_at: datetime | None = None

    def row(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in COLUMNS}


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None or (b is not None and b > a) else a


def _earlier(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None or (b is not None and b < a) else a


def merge(events: Iterable[Event]) -> list[Seen]:
    """Fold a poll's events into one `Seen` per member, in key order (pure)."""
    seen: dict[tuple[str, str], Seen] = {}
    for event in events:
        if not isinstance(event, MessageCreated | MemberJoined | MemberLeft | MemberUpdated):
            continue
        key = (event.group_id, event.member_id)
        one = seen.setdefault(key, Seen(*key))
        at = event.occurred_at
        if isinstance(event, MemberJoined):
            one.first_joined_at = _earlier(one.first_joined_at, at)
            one.last_joined_at = _later(one.last_joined_at, at)
        elif isinstance(event, MemberLeft):
            one.last_left_at = _later(one.last_left_at, at)
        elif isinstance(event, MessageCreated):
            one.last_active_at = _later(one.last_active_at, at)
        name = None if isinstance(event, MemberLeft) else event.data.display_name
        if name is not None and (one.named_at is None or at >= one.named_at):
            one.display_name, one.named_at = name, at
    return [seen[key] for key in sorted(seen)]


def is_current(record: MemberRecord | Seen) -> bool:
    """A member seen joining or speaking, with no leave after their latest join or message."""
    latest = _later(record.last_joined_at, record.last_active_at)
    if latest is None:
        return False
    return record.last_left_at is None or latest > record.last_left_at


def current_clause() -> Any:
    """`is_current` as a SQL condition on moderation_member."""
    left = col(MemberRecord.last_left_at)
    return sa.or_(
        sa.and_(
            left.is_(None),
            sa.or_(
                col(MemberRecord.last_joined_at).is_not(None),
                col(MemberRecord.last_active_at).is_not(None),
            ),
        ),
        col(MemberRecord.last_joined_at) > left,
        col(MemberRecord.last_active_at) > left,
    )


def _pick(stored: Any, incoming: Any, *, latest: bool) -> Any:
    newer = incoming > stored if latest else incoming < stored
    return sa.case(
        (incoming.is_(None), stored), (stored.is_(None), incoming), (newer, incoming), else_=stored
    )


@cache
def _upsert(dialect: str) -> Any:
    """The roster upsert of `dialect`, built once (rows go as parameters): building the
    statement each poll and computing its cache key cost as much as running it. On
    PostgreSQL the rows go as one JSON parameter (the kernel's `insert_rows`), one
    statement per poll instead of an executemany of one upsert per member."""
    statement = insert_rows(MemberRecord, COLUMNS, postgres=dialect == "postgresql")
    table, new = MemberRecord.__table__.c, statement.excluded  # type: ignore[attr-defined]
    renamed = sa.and_(
        new.named_at.is_not(None), sa.or_(table.named_at.is_(None), new.named_at >= table.named_at)
    )
    return statement.on_conflict_do_update(
        index_elements=["group_id", "member_id"],
        set_={
            "first_joined_at": _pick(table.first_joined_at, new.first_joined_at, latest=False),
            "last_joined_at": _pick(table.last_joined_at, new.last_joined_at, latest=True),
            "last_left_at": _pick(table.last_left_at, new.last_left_at, latest=True),
            "last_active_at": _pick(table.last_active_at, new.last_active_at, latest=True),
            "display_name": sa.case((renamed, new.display_name), else_=table.display_name),
            "named_at": sa.case((renamed, new.named_at), else_=table.named_at),
        },
    )


def record(session: Session, events: Iterable[Event]) -> int:
    """Upsert what the events say of their members in one statement; return the rows written."""
    rows = [seen.row() for seen in merge(events)]
    if not rows:
        return 0
    session.execute(_upsert(dialect_of(session)), rows_params(session, rows))
    return len(rows)


def member(session: Session, group_id: str, member_id: str) -> MemberRecord | None:
    """The member's roster row, or None."""
    return session.get(MemberRecord, (group_id, member_id))


def is_member(session: Session, group_id: str, member_id: str) -> bool:
    """Tell whether the member is currently in the group, as far as the events tell."""
    found = member(session, group_id, member_id)
    return found is not None and is_current(found)


def current_members(session: Session, member_id: str, group_ids: Iterable[str]) -> list[str]:
    """The groups among `group_ids` the member is currently in."""
    groups = sorted(set(group_ids))
    if not groups:
        return []
    query = select(MemberRecord.group_id).where(
        col(MemberRecord.member_id) == member_id,
        col(MemberRecord.group_id).in_(groups),
        current_clause(),
    )
    return list(session.exec(query).all())


def silence_threshold(now: datetime, tz: ZoneInfo, days: int) -> datetime:
    """The start of the local day `days`-1 days before today: silent members sent no message
    since (the instant metrics' `members/dormant?days=` counts from)."""
    first_day = now.astimezone(tz).date() - timedelta(days=days - 1)
    return datetime(first_day.year, first_day.month, first_day.day, tzinfo=tz)


def lurkers(
    session: Session,
    *,
    group_id: str,
    since: datetime,
    never_spoke_only: bool,
    exempt: frozenset[str],
    limit: int,
) -> list[MemberRecord]:
    """Current members whose latest join (if seen) and last message (if any) are before
    `since` (with `never_spoke_only`, who never spoke): never-spoke first, then the longest
    silent, as metrics orders its dormant list; exempt members left out."""
    active = col(MemberRecord.last_active_at)
    silent = active.is_(None) if never_spoke_only else sa.or_(active.is_(None), active < since)
    joined = col(MemberRecord.last_joined_at)
    query = (
        select(MemberRecord)
        .where(
            col(MemberRecord.group_id) == group_id,
            current_clause(),
            silent,
            sa.or_(joined.is_(None), joined < since),
        )
        .order_by(
            active.is_not(None),
            active,
            col(MemberRecord.first_joined_at),
            col(MemberRecord.member_id),
        )
    )
    found: list[MemberRecord] = []
    for row in session.exec(query.execution_options(yield_per=1000)):
        if row.member_id not in exempt:
            found.append(row)
            if len(found) >= limit:
                break
    return found
