"""Redis clients, SQL engines and Alembic migrations, built on demand (never at import)."""

from __future__ import annotations

import os
from pathlib import Path

import redis
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Engine, event, text
from sqlmodel import create_engine


def make_redis(url: str) -> redis.Redis:
    """Build a Redis client with bounded timeouts so no call hangs."""
    return redis.Redis.from_url(
        url,
        socket_timeout=5,
        socket_connect_timeout=2,
        health_check_interval=30,
        retry_on_timeout=False,
    )


def make_engine(url: str) -> Engine:
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
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=10,
        max_overflow=20,
        pool_timeout=10,
        connect_args={"connect_timeout": 5} if url.startswith("postgresql") else {},
    )


def redis_problem(client: redis.Redis) -> str | None:
    """Return None when Redis answers PING, else why not."""
    try:
        client.ping()
        return None
    except redis.RedisError as exc:
        return f"unreachable ({type(exc).__name__})"


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
