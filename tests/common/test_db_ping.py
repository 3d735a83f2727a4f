"""Pooled connections are pinged only after idling (services/common/db.py), against PostgreSQL."""

from __future__ import annotations

import time

import pytest
import sqlalchemy
from sqlalchemy import Engine, text

from services.common.db import make_engine


@pytest.fixture
def postgres_url(database_url: str) -> str:
    if not database_url.startswith("postgresql"):
        pytest.skip("server databases only: an SQLite file has no connection to lose")
    return database_url


def _backend_pid(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _terminate(url: str, pid: int) -> None:
    admin = sqlalchemy.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    admin.dispose()
    time.sleep(0.1)  # the server closes the socket after answering


def test_a_connection_the_server_closed_while_idle_is_replaced_before_use(
    postgres_url: str,
) -> None:
    engine = make_engine(postgres_url, ping_after_idle_seconds=0.2)
    pid = _backend_pid(engine)
    _terminate(postgres_url, pid)
    time.sleep(0.3)
    assert _backend_pid(engine) != pid  # no error reached the caller
    engine.dispose()


def test_a_connection_used_moments_ago_is_not_pinged_and_one_failure_renews_the_pool(
    postgres_url: str,
) -> None:
    engine = make_engine(postgres_url, ping_after_idle_seconds=60)
    pid = _backend_pid(engine)
    _terminate(postgres_url, pid)
    with pytest.raises(sqlalchemy.exc.OperationalError):  # no ping: the statement finds it dead
        _backend_pid(engine)
    assert _backend_pid(engine) != pid  # the next checkout gets a fresh connection
    engine.dispose()
