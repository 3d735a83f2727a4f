"""What the use cases share: dialect-aware inserts, and finding or locking a campaign."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from services.campaigns.models import Campaign
from services.common.errors import NotFound


def is_postgres(session: Session) -> bool:
    """Tell whether the session runs on PostgreSQL (row locks) rather than SQLite."""
    return session.get_bind().dialect.name == "postgresql"


def dialect_insert(session: Session, model: Any) -> Any:
    """Return a Core INSERT into a model's table that supports ON CONFLICT on this database.

    Executed with a list of rows it compiles once and sends them as multi-row VALUES.
    """
    table = model.__table__
    return postgresql.insert(table) if is_postgres(session) else sqlite.insert(table)


_BUILT: dict[tuple[Hashable, bool], Any] = {}


def built(session: Session, key: Hashable, make: Callable[[bool], Any]) -> Any:
    """The statement `make(postgres)` returns (often a `services.common.db.insert_rows`),
    built once per `key` and kind of database.

    A hot path's statements are the same on every call: building them again per batch
    (clauses, columns, `jsonb_to_recordset`) and hashing the new objects into SQLAlchemy's
    cache key was about a tenth of the consumer's CPU per event."""
    postgres = is_postgres(session)
    stmt = _BUILT.get((key, postgres))
    if stmt is None:
        stmt = _BUILT[(key, postgres)] = make(postgres)
    return stmt


def _of_group(group_id: str, campaign_id: str) -> sa.ColumnElement[bool]:
    return sa.and_(col(Campaign.id) == campaign_id, col(Campaign.group_id) == group_id)


def find_campaign(*, session: Session, group_id: str, campaign_id: str) -> Campaign:
    """Return a group's campaign; raise NotFound when the group has no such campaign."""
    campaign = session.exec(select(Campaign).where(_of_group(group_id, campaign_id))).first()
    if campaign is None:
        raise NotFound("campaign not found")
    return campaign


def lock_campaign(*, session: Session, group_id: str, campaign_id: str) -> Campaign:
    """Return a group's campaign locked for this transaction (NotFound when absent)."""
    # PostgreSQL locks the row; SQLite, which has no row locks, takes its database write
    # lock with a no-op UPDATE first, so concurrent changes run one after the other.
    query = select(Campaign).where(_of_group(group_id, campaign_id))
    if is_postgres(session):
        query = query.with_for_update()
    else:
        session.exec(
            sa.update(Campaign)
            .where(col(Campaign.id) == campaign_id)
            .values(version=Campaign.version)
        )
    campaign = session.exec(query).first()
    if campaign is None:
        raise NotFound("campaign not found")
    return campaign
