"""What the event-driven kinds and the scheduler share: the campaigns running where a poll's
events happened (one query per poll, the rows kept between polls) and claiming a campaign for
one process's unit of work."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from services.campaigns.models import Campaign
from services.campaigns.store import is_postgres
from services.common.contracts.events import Event

RUNNING = ("scheduled", "active")
DRAWN_KINDS = ("lottery", "poll")  # closed to messages once drawn / results posted
MESSAGE_KINDS = ("checkin", "challenge", "lottery", "poll", "feedback", "event")
"""The kinds that read messages (welcome, autoreply, broadcast and invite read none here)."""


_TABLE = Campaign.__table__  # type: ignore[attr-defined]
_OVERLAP = (
    _TABLE.c.group_id.in_(sa.bindparam("groups", expanding=True)),
    _TABLE.c.status != "cancelled",
    _TABLE.c.starts_at <= sa.bindparam("hi", type_=_TABLE.c.starts_at.type),
    _TABLE.c.ends_at > sa.bindparam("lo", type_=_TABLE.c.ends_at.type),
)
_STAMPS = sa.select(_TABLE.c.id, _TABLE.c.version).where(*_OVERLAP)
"""The (id, version) of the overlapping campaigns: a Core statement built once (no ORM
entities to set up, its cache key computed once rather than per poll)."""


def overlapping(*, groups: Sequence[str], lo: datetime, hi: datetime) -> SelectOfScalar[Campaign]:
    """The campaigns of the groups, not cancelled, whose windows [starts_at, ends_at) overlap
    [lo, hi]: the one query of "the campaigns where these events happened" (each event still
    has to be checked against its campaign's window). Callers narrow it (kind, drawn_at)."""
    return select(Campaign).where(*_OVERLAP).params(groups=sorted(set(groups)), lo=lo, hi=hi)


@dataclass(frozen=True)
class Running:
    """The campaigns a poll's events can touch: not cancelled, in the events' groups, windows
    overlapping the events' times. Read-only snapshots, shared by every kind's handler."""

    campaigns: tuple[Campaign, ...] = ()

    def of_kind(self, kind: str, *, include_ended: bool = False) -> list[Campaign]:
        """The campaigns of `kind` that are scheduled or active (or ended too, for kinds that
        still count events the consumer reads after the end)."""
        statuses = (*RUNNING, "ended") if include_ended else RUNNING
        return [c for c in self.campaigns if c.kind == kind and c.status in statuses]

    def reading_messages(self) -> list[Campaign]:
        """The campaigns a message counts for (its window decides, not the status): the kinds
        that read messages, a lottery until drawn and a poll until its results are out."""
        return [
            c
            for c in self.campaigns
            if c.kind in MESSAGE_KINDS and not (c.kind in DRAWN_KINDS and c.drawn_at is not None)
        ]


def _span(events: Sequence[Event]) -> tuple[list[str], datetime, datetime]:
    return (
        sorted({e.group_id for e in events}),
        min(e.occurred_at for e in events),
        max(e.occurred_at for e in events),
    )


class CampaignCache:
    """The consumer's campaign rows, kept between polls in the process.

    Each poll still asks the database which campaigns run where its events happened, but
    only for their (id, version): a row is loaded again only when it is new or its
    `version` moved. Every change a consumer reads bumps `version` (a PATCH or cancel, the
    scheduler's claim before each step: start, end, draw, results), so a campaign created or
    changed through any replica counts from the next poll on, as when every poll loaded the
    rows. Exactness never rests on it: processed event ids and unique grants do. Thread-safe
    (the rows are read-only snapshots, detached from any session).
    """

    MAX_ROWS = 4096

    def __init__(self) -> None:
        self._rows: dict[str, Campaign] = {}
        self._lock = threading.Lock()

    def running(self, *, session: Session, events: Sequence[Event]) -> Running:
        """The campaigns the events can touch, as of this poll (one small query when none
        changed)."""
        if not events:
            return Running()
        groups, lo, hi = _span(events)
        stamps = session.execute(_STAMPS, {"groups": groups, "lo": lo, "hi": hi}).all()
        if not stamps:
            return Running()
        with self._lock:
            found = {cid: self._rows.get(cid) for cid, _ in stamps}
        stale = [cid for cid, seen in stamps if (c := found[cid]) is None or c.version != seen]
        if stale:
            for row in session.exec(select(Campaign).where(col(Campaign.id).in_(stale))).all():
                session.expunge(row)
                found[row.id] = row
            with self._lock:
                if len(self._rows) > self.MAX_ROWS:
                    self._rows.clear()
                self._rows.update({cid: c for cid, c in found.items() if c is not None})
        # A row loaded just now may have changed since its stamp (cancelled, moved): check it.
        rows = [c for c in found.values() if c is not None and c.status != "cancelled"]
        return Running(tuple(c for c in rows if c.starts_at <= hi and c.ends_at > lo))


def running_for(*, session: Session, events: Sequence[Event]) -> Running:
    """The campaigns the events can touch, loaded now (no cache: one-off callers, tests)."""
    if not events:
        return Running()
    groups, lo, hi = _span(events)
    return Running(tuple(session.exec(overlapping(groups=groups, lo=lo, hi=hi)).all()))


def claim_campaign(*, session: Session, query: SelectOfScalar[Campaign]) -> Campaign | None:
    """Claim the campaign the query finds by bumping its `version` (PostgreSQL first skips a
    row another process has locked); None when there is none or another process has it.
    A process that claimed a campaign is the only one doing its steps until it commits."""
    if is_postgres(session):
        query = query.with_for_update(skip_locked=True)
    campaign = session.exec(query).first()
    if campaign is None:
        return None
    claimed = session.exec(
        sa.update(Campaign)
        .where(col(Campaign.id) == campaign.id, col(Campaign.version) == campaign.version)
        .values(version=campaign.version + 1)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:
        return None  # another process claimed it: the caller's transaction changed nothing
    campaign.version += 1
    return campaign
