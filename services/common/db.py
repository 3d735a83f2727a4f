"""The database: engines, migrations, the UTC timestamp column, ids and keyset pages.

The transaction rule: service functions add and flush, never commit; the entrypoint
that owns the unit of work (a route, a consumer's batch handler, a scheduler tick)
commits once, so a failure leaves nothing half-written.
"""

from __future__ import annotations

import os
import secrets
import time
import zlib
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import orjson
import sqlalchemy as sa
from alembic import command, context
from alembic.config import Config as AlembicConfig
from sqlalchemy import Connection, Engine, MetaData, event, exc, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.types import TypeDecorator
from sqlmodel import Column, Field, Session, col, create_engine
from sqlmodel.sql.expression import SelectOfScalar

T = TypeVar("T")

# Where Core statements run: a Session, or a Connection in a transaction (hot paths whose
# statements are all Core: a Session and its transaction cost ≈ 0.3 ms more client CPU
# per transaction than `engine.begin()`).
Db = Session | Connection


def dialect_of(db: Db) -> str:
    """The database's dialect name (`postgresql`, `sqlite`)."""
    return db.dialect.name if isinstance(db, Connection) else db.get_bind().dialect.name


def insert_rows(
    model: Any, names: Sequence[str], *, postgres: bool, keep_json_text: bool = False
) -> Any:
    """A Core INSERT of rows with the keys `names` into a model's (or a table's) table,
    supporting ON CONFLICT; run it with `rows_params`. Build it once and keep it.

    PostgreSQL: `INSERT … SELECT … FROM jsonb_to_recordset(:rows) AS incoming(…)`, the rows
    sent as one JSON text encoded by orjson, so the statement text is the same whatever the
    number of rows: parsed and prepared once, one parameter instead of one per value. (A
    multi-row VALUES has a new text per row count, re-parsed in Python on every call, and
    an executemany is one INSERT per row: either was most of a batch's CPU.) With
    `keep_json_text`, `json_to_recordset`: a JSON column then keeps the text it was sent
    as (the outbox's payloads, byte for byte), where jsonb would normalise it. SQLite: the
    plain insert, run with the rows (an executemany, in-process). Timestamps must be
    timezone-aware (naive ones are taken as UTC).
    """
    table = getattr(model, "__table__", model)
    if not postgres:
        return sqlite.insert(table)
    recordset, json_type = (
        (sa.func.json_to_recordset, sa.JSON)
        if keep_json_text
        else (sa.func.jsonb_to_recordset, postgresql.JSONB)
    )
    incoming = (
        recordset(sa.cast(sa.bindparam("rows", type_=sa.Text), json_type))
        .table_valued(*(sa.column(name, table.c[name].type) for name in names))
        .render_derived(name="incoming", with_types=True)
    )
    return postgresql.insert(table).from_select(list(names), sa.select(*incoming.c))


def rows_params(db: Db, rows: list[dict[str, Any]]) -> Any:
    """The parameters of an `insert_rows` statement: the rows as one JSON text on
    PostgreSQL (orjson: `orjson.Fragment` values go in as they are), the rows on SQLite."""
    if dialect_of(db) != "postgresql":
        return rows
    return {"rows": orjson.dumps(rows, option=orjson.OPT_NAIVE_UTC).decode()}


def make_engine(url: str, *, ping_after_idle_seconds: float = 2.0) -> Engine:
    """Build a SQL engine; SQLite gets WAL and a busy timeout so several processes can share it."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    engine = create_engine(
        url,
        pool_size=10,
        max_overflow=20,
        pool_timeout=10,
        connect_args={"connect_timeout": 5} if url.startswith("postgresql") else {},
    )
    _ping_when_idle(engine, after_seconds=ping_after_idle_seconds)
    return engine


def _ping_when_idle(engine: Engine, *, after_seconds: float) -> None:
    """Ping a pooled connection at checkout only if it sat idle for `after_seconds`.

    `pool_pre_ping` pings on every checkout: one more round trip per transaction, which was
    5 % of moderation's and 17 % of delivery's database time on the hot path. A connection
    that was in use moments ago is alive for all practical purposes; one that idled may have
    been closed by a server restart, a failover or an idle timeout, and is replaced here
    before anyone uses it. (If the server goes away between two busy checkouts, the next
    statement fails once, SQLAlchemy invalidates the pool, and the caller's retry gets fresh
    connections: consumers retry their batch, routes answer 503.)
    """

    @event.listens_for(engine, "checkin")
    def _idle_from(_dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < after_seconds:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_conn)
        except Exception as error:  # noqa: BLE001 - any driver error means a dead connection
            raise exc.DisconnectionError(str(error)) from error
        if not alive:
            raise exc.DisconnectionError("ping failed")


def database_problem(engine: Engine) -> str | None:
    """Return None when the database answers a query, else why not."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return None
    except Exception as exc:  # noqa: BLE001 - any driver error means not ready
        return f"unreachable ({type(exc).__name__})"


def migrate(*, migrations_dir: Path, version_table: str, database_url: str) -> None:
    """Upgrade one service's tables to the newest Alembic revision."""
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(migrations_dir))
    cfg.set_main_option("version_table", version_table)
    cfg.attributes["database_url"] = database_url
    cfg.attributes["version_table"] = version_table
    os.environ.setdefault("ALEMBIC_QUIET", "1")
    command.upgrade(cfg, "head")


def run_migrations(target_metadata: MetaData) -> None:
    """Run the pending migrations online, serialised across processes on PostgreSQL."""
    cfg = context.config
    url = str(cfg.attributes.get("database_url") or cfg.get_main_option("sqlalchemy.url"))
    version_table = cfg.attributes.get("version_table", "alembic_version")
    engine = make_engine(url)
    with engine.connect() as conn:
        is_postgres = conn.dialect.name == "postgresql"
        if is_postgres:
            conn.execute(
                text("SELECT pg_advisory_lock(:k)"), {"k": zlib.crc32(version_table.encode())}
            )
            conn.commit()
        try:
            context.configure(
                connection=conn,
                target_metadata=target_metadata,
                version_table=version_table,
                render_as_batch=conn.dialect.name == "sqlite",
            )
            with context.begin_transaction():
                context.run_migrations()
            conn.commit()
        finally:
            if is_postgres:
                conn.execute(
                    text("SELECT pg_advisory_unlock(:k)"), {"k": zlib.crc32(version_table.encode())}
                )
                conn.commit()
    engine.dispose()


def utcnow() -> datetime:
    """Return the current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


def new_id(prefix: str) -> str:
    """Return a unique id that sorts by creation time: prefix, 12 hex ms digits, 12 random."""
    return f"{prefix}{time.time_ns() // 1_000_000:012x}{secrets.token_hex(6)}"


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware (SQLite drops the zone)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utc_column(*, nullable: bool = False, index: bool = False, default_now: bool = False) -> Any:
    """A SQLModel field stored as UTCDateTime."""
    if default_now:
        return Field(
            default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=nullable, index=index)
        )
    return Field(sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


def keyset_page(
    session: Session,
    query: SelectOfScalar[T],
    key: Any,
    *,
    limit: int,
    cursor: str | None,
    descending: bool = False,
) -> tuple[list[T], str | None]:
    """Return one page of `query` ordered by the unique string column `key`, and the next cursor.

    The cursor is the last row's key: the next page starts strictly after it, so rows
    added meanwhile never shift a page (no OFFSET).
    """
    column = col(key)
    if cursor:
        query = query.where(column < cursor if descending else column > cursor)
    query = query.order_by(column.desc() if descending else column).limit(limit + 1)
    rows = list(session.exec(query).all())
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = str(getattr(rows[-1], key.key)) if more and rows else None
    return rows, next_cursor
