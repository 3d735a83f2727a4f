"""What the events tell campaigns about groups and members: the source a group's latest
event came through (where its posts go), when members joined, and their display names.

Each is one upsert per batch that keeps the newest value by `occurred_at`, so a
redelivered or late event never overwrites a newer one.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from services.campaigns.models import GroupSource, Member, MemberName
from services.campaigns.store import built
from services.common.contracts.events import Event, MemberJoined, MemberLeft
from services.common.db import insert_rows, rows_params


def _upsert_newest(
    session: Session, model: Any, keys: list[str], stamp: str, rows: Iterable[dict[str, Any]]
) -> None:
    """Insert rows (one constant statement, `insert_rows`); on a key conflict take the new
    row's values when its `stamp` is newer."""
    rows = list(rows)
    if not rows:
        return
    names = tuple(rows[0])

    def make(postgres: bool) -> Any:
        table = model.__table__
        stmt = insert_rows(model, names, postgres=postgres)
        newer = stmt.excluded[stamp] >= table.c[stamp]
        values = {
            name: sa.case((newer, stmt.excluded[name]), else_=table.c[name])
            for name in names
            if name not in keys
        }
        return stmt.on_conflict_do_update(index_elements=keys, set_=values)

    stmt = built(session, (model, names, tuple(keys), stamp), make)
    session.exec(stmt, params=rows_params(session, rows))


def _latest(events: Iterable[Event], key: str) -> dict[tuple[str, ...], Event]:
    """The newest event per group (key "group") or per group and member (key "member")."""
    latest: dict[tuple[str, ...], Event] = {}
    by_group = key == "group"
    for e in events:
        k = (e.group_id,) if by_group else (e.group_id, e.member_id)
        seen = latest.get(k)
        if seen is None or e.occurred_at >= seen.occurred_at:
            latest[k] = e
    return latest


def record_sources(*, session: Session, events: list[Event]) -> None:
    """Remember, per group, the source of its latest event."""
    rows = [
        {"group_id": e.group_id, "source": e.source, "occurred_at": e.occurred_at}
        for _, e in sorted(_latest(events, "group").items())
    ]
    _upsert_newest(session, GroupSource, ["group_id"], "occurred_at", rows)


def record_names(*, session: Session, events: list[Event]) -> None:
    """Remember each member's latest display name (events without one change nothing)."""
    named = [
        e for e in events if not isinstance(e, MemberLeft) and getattr(e.data, "display_name", None)
    ]
    rows = [
        {
            "group_id": e.group_id,
            "member_id": e.member_id,
            "display_name": e.data.display_name,  # type: ignore[union-attr]
            "seen_at": e.occurred_at,
        }
        for _, e in sorted(_latest(named, "member").items())
    ]
    _upsert_newest(session, MemberName, ["group_id", "member_id"], "seen_at", rows)


def record_joins(*, session: Session, joins: list[MemberJoined]) -> None:
    """Remember each member's latest join time per group."""
    rows = [
        {"group_id": g, "member_id": m, "joined_at": e.occurred_at}
        for (g, m), e in sorted(_latest(joins, "member").items())
    ]
    _upsert_newest(session, Member, ["group_id", "member_id"], "joined_at", rows)


def record_directory(*, session: Session, events: list[Event]) -> None:
    """Apply a batch's sources, names and joins."""
    record_sources(session=session, events=events)
    record_names(session=session, events=events)
    record_joins(session=session, joins=[e for e in events if isinstance(e, MemberJoined)])


def source_of(*, session: Session, group_id: str) -> str | None:
    """The source of the group's latest event, or None before its first event."""
    row = session.get(GroupSource, group_id)
    return row.source if row is not None else None


def names_of(*, session: Session, group_id: str, member_ids: Iterable[str]) -> dict[str, str]:
    """The known display names of the given members of a group."""
    wanted = sorted(set(member_ids))
    if not wanted:
        return {}
    found = session.exec(
        select(col(MemberName.member_id), col(MemberName.display_name)).where(
            col(MemberName.group_id) == group_id, col(MemberName.member_id).in_(wanted)
        )
    ).all()
    return dict(found)
