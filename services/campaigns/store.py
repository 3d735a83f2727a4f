"""What the use cases share: dialect-aware inserts, and finding or locking a campaign."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB
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
    """The statement `make(postgres)` returns, built once per `key` and kind of database.

    A hot path's statements are the same on every call: building them again per batch
    (clauses, columns, `jsonb_to_recordset`) and hashing the new objects into SQLAlchemy's
    cache key was about a tenth of the consumer's CPU per event."""
    postgres = is_postgres(session)
    stmt = _BUILT.get((key, postgres))
    if stmt is None:
        stmt = _BUILT[(key, postgres)] = make(postgres)
    return stmt


def insert_of(model: Any, names: tuple[str, ...], postgres: bool) -> Any:
    """Return a Core INSERT of rows with these keys, supporting ON CONFLICT (run it with
    `rows_params`).

    PostgreSQL: `INSERT … SELECT * FROM jsonb_to_recordset(:rows)`, the rows sent as one
    JSON text encoded by orjson, so the statement text is the same whatever the number of
    rows: SQLAlchemy compiles it once, psycopg converts and prepares it once, and nothing
    is adapted value by value in Python. (A multi-row VALUES has one placeholder per value
    and a new text per row count, which psycopg re-parses in Python on every call; arrays
    per column are dumped element by element in Python: either was most of a consumer
    batch's CPU.) SQLite: the plain insert, run with the rows (executemany). Rows must all
    have the same keys; timestamps must be timezone-aware (naive ones are taken as UTC).
    """
    table = model.__table__
    if not postgres:
        return sqlite.insert(table)
    incoming = incoming_rows(model, list(names))
    return postgresql.insert(table).from_select(list(names), sa.select(*incoming.c))


def rows_params(session: Session, rows: list[dict[str, Any]]) -> Any:
    """The parameters of an `insert_of` statement: the rows as one JSON text on PostgreSQL,
    the rows themselves on SQLite."""
    return rows_param(rows) if is_postgres(session) else rows


def incoming_rows(model: Any, names: list[str]) -> Any:
    """PostgreSQL: the rows of the `rows` JSON parameter as a table `incoming` whose columns
    have the model's column types (join it, select from it; see insert_of)."""
    table = model.__table__
    return (
        sa.func.jsonb_to_recordset(sa.cast(sa.bindparam("rows", type_=sa.Text), JSONB))
        .table_valued(*(sa.column(name, table.c[name].type) for name in names))
        .render_derived(name="incoming", with_types=True)
    )


def rows_param(rows: list[dict[str, Any]]) -> dict[str, str]:
    """The `rows` parameter of incoming_rows: the rows as one JSON text."""
    return {"rows": orjson.dumps(rows, option=orjson.OPT_NAIVE_UTC).decode()}


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
