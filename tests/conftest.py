"""Session servers (a real broker, Redis and database) and factories every test builds on.

- broker: a Tansu broker started for the session on a free port (TEST_KAFKA_BOOTSTRAP wins).
- Redis: a redis-server started on a free port (TEST_REDIS_URL wins).
- database: a fresh PostgreSQL database when TEST_DATABASE_URL or a local server is there,
  a SQLite file otherwise.
Tests isolate themselves with their own topics, consumer groups and group ids.
Every server fixture is lazy: a test that asks for none of them (tests/unit) starts nothing.
Plain helpers (wait_until, auth, produce_events, read_topic) live in tests/support.py.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
from fastapi import FastAPI
from fastapi.testclient import TestClient
from kafka import KafkaProducer
from sqlmodel import SQLModel

from services.common.auth import token_entry
from services.common.db import make_engine
from services.common.kafka.admin import ensure_topics
from services.common.settings import QunyunConfig, Settings, Source, write_config
from tests.support import (  # re-exported: older tests import these from here
    LIMITED_GROUP,
    SOURCE_SECRETS,
    auth,
    produce_events,
    read_topic,
)
from tools.localstack import free_port, start_redis, start_tansu, stop

LOCAL_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
UNIT = Path(__file__).parent / "unit"
SERVER_FIXTURES = {"kafka_bootstrap", "redis_url", "database_url"}


# The files that take longest, longest first: per-file sums of the 80 slowest phases of a
# whole `make test` run (--durations=80, 2 workers, a busy machine, 2026-11-30), moved for
# what changed since (the demo now shares tests/tools/test_devstack.py's stack, the delivery
# crash run's lease is 12 s) and tests/deploy/test_prometheus_stack.py placed from its time
# alone (that run had no Prometheus). `make test` passes --no-loadscope-reorder, so xdist
# hands files to its two workers in collection order (a worker takes its next file when it
# is within two tests of the end of what it holds), and this list is put first: the long
# files start at once and the many short ones fill both workers at the end. (xdist's
# default order, most tests first, started the long few-test files last and left one
# worker idle for minutes.) Unlisted files keep pytest's order after these; a stale entry
# only costs balance.
SLOWEST_FIRST = (
    "tests/faults/test_fuzz_openapi.py",
    "tests/faults/test_consumer_crash.py",
    "tests/scale/test_replicas.py",
    "tests/tools/test_devstack_restarts.py",
    "tests/faults/test_redis_outage.py",
    "tests/deploy/test_prometheus_stack.py",
    "tests/tools/test_bench_smoke.py",
    "tests/tools/test_devstack.py",
    "tests/faults/test_broker_outage.py",
    "tests/browser/test_console.py",
    "tests/cluster/test_faults.py",
    "tests/faults/test_campaign_posts_crash.py",
    "tests/faults/test_delivery_crash.py",
    "tests/campaigns/test_exactly_once_kinds.py",
    "tests/moderation/test_gates.py",
    "tests/browser/test_docs_render.py",
    "tests/faults/test_secrets.py",
    "tests/delivery/test_pacing.py",
    "tests/faults/test_duplicate_storm.py",
    "tests/delivery/test_faults.py",
    "tests/moderation/test_membership_delivered.py",
    "tests/campaigns/test_refusals.py",
    "tests/moderation/test_flow.py",
    "tests/campaigns/test_poll_feedback_invite.py",
    "tests/cluster/test_delivery.py",
    "tests/ingest/test_faults.py",
    "tests/moderation/test_delivered.py",
    "tests/campaigns/test_eligibility.py",
    "tests/faults/test_webhook_abuse.py",
    "tests/common/test_bus.py",
    "tests/moderation/test_meaning.py",
    "tests/campaigns/test_lottery.py",
    "tests/campaigns/test_checkin.py",
    "tests/campaigns/test_exactly_once.py",
    "tests/campaigns/test_kinds_delivered.py",
    "tests/common/test_http_limits.py",
    "tests/campaigns/test_notifications.py",
    "tests/campaigns/test_flows.py",
    "tests/faults/test_poison_records.py",
    "tests/ingest/test_fuzz.py",
)
ROOT = Path(__file__).parent.parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Keep tests/unit server-free (none of its tests may reach a session server), then
    put the slowest files first (SLOWEST_FIRST), each file whole and in its own order."""
    for item in items:
        if item.path.is_relative_to(UNIT):
            used = SERVER_FIXTURES & set(getattr(item, "fixturenames", ()))
            if used:
                raise pytest.UsageError(f"{item.nodeid} is in tests/unit but uses {used}")
    rank = {path: i for i, path in enumerate(SLOWEST_FIRST)}

    def slowness(item: pytest.Item) -> int:
        path = item.path.relative_to(ROOT).as_posix() if item.path.is_relative_to(ROOT) else ""
        return rank.get(path, len(rank))

    items.sort(key=slowness)  # stable: every other file keeps its place and order


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if env := os.environ.get("TEST_KAFKA_BOOTSTRAP"):
        yield env
        return
    port = free_port()
    proc = start_tansu(port, tmp_path_factory.mktemp("broker") / "broker.log")
    yield f"127.0.0.1:{port}"
    stop(proc)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if env := os.environ.get("TEST_REDIS_URL"):
        yield env
        return
    port = free_port()
    proc = start_redis(port, tmp_path_factory.mktemp("redis") / "redis.log")
    yield f"redis://127.0.0.1:{port}/0"
    stop(proc)


@pytest.fixture(scope="session")
def redis_cluster() -> bool:
    """Whether redis_url names a node of a Redis Cluster (tests/cluster says yes)."""
    return False


def _postgres_admin_url() -> str | None:
    url = os.environ.get("TEST_DATABASE_URL") or LOCAL_POSTGRES
    if not url.startswith("postgresql"):
        return None
    try:
        engine = sqlalchemy.create_engine(url, connect_args={"connect_timeout": 2})
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text("SELECT 1"))
        engine.dispose()
        return url
    except Exception:  # noqa: BLE001 - no server: fall back to SQLite
        if "TEST_DATABASE_URL" in os.environ:
            raise
        return None


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    env = os.environ.get("TEST_DATABASE_URL")
    if env and env.startswith("sqlite"):
        yield env
        return
    admin_url = _postgres_admin_url()
    if admin_url is None:
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'qunyun.db'}"
        return
    name = f"qunyun_test_{uuid.uuid4().hex[:10]}"
    admin = sqlalchemy.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as conn:
        conn.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def engine_with_tables(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[str, list[sqlalchemy.Table]], sqlalchemy.Engine]]:
    """A factory: `engine_with_tables(kind, tables)` is an engine holding only `tables`, on
    a SQLite file of its own (`sqlite`) or in a schema of its own on the suite's database
    (`suite`: PostgreSQL when one is reachable, where some statements take another path)."""
    made: list[tuple[sqlalchemy.Engine, str | None]] = []

    def make(kind: str, tables: list[sqlalchemy.Table]) -> sqlalchemy.Engine:
        url = request.getfixturevalue("database_url") if kind == "suite" else None
        if url is None or url.startswith("sqlite"):
            engine = make_engine(f"sqlite:///{tmp_path / f'own-{len(made)}.db'}")
            made.append((engine, None))
        else:
            schema = f"own_{uuid.uuid4().hex[:10]}"
            base = make_engine(url)
            with base.begin() as conn:
                conn.execute(sqlalchemy.text(f'CREATE SCHEMA "{schema}"'))
            made.append((base, schema))
            engine = base.execution_options(schema_translate_map={None: schema})
        SQLModel.metadata.create_all(engine, tables=tables)
        return engine

    yield make
    for base, schema in made:
        if schema is not None:
            with base.begin() as conn:
                conn.execute(sqlalchemy.text(f'DROP SCHEMA "{schema}" CASCADE'))
        base.dispose()


@dataclass(frozen=True)
class Tokens:
    """Bearer tokens written into a test config."""

    admin: str  # every group, read and write
    reader: str  # every group, read only
    limited: str  # read and write on LIMITED_GROUP only


@pytest.fixture(scope="session")
def tokens() -> Tokens:
    return Tokens(
        admin="qy_test_admin_" + uuid.uuid4().hex,
        reader="qy_test_reader_" + uuid.uuid4().hex,
        limited="qy_test_limited_" + uuid.uuid4().hex,
    )


@pytest.fixture(scope="session")
def config_path(tmp_path_factory: pytest.TempPathFactory, tokens: Tokens) -> Path:
    config = QunyunConfig(
        sources=[
            Source(id=source_id, platform=platform, secret=secret, encrypt_key=encrypt_key)
            for source_id, (platform, secret, encrypt_key) in SOURCE_SECRETS.items()
        ],
        tokens=[
            token_entry("admin", tokens.admin, ["*"], ["read", "write"]),
            token_entry("reader", tokens.reader, ["*"], ["read"]),
            token_entry("limited", tokens.limited, [LIMITED_GROUP], ["read", "write"]),
        ],
    )
    return write_config(tmp_path_factory.mktemp("config") / "qunyun.toml", config)


@pytest.fixture
def unique() -> Callable[[str], str]:
    """Return a factory of names unique to this test run: unique('group') -> 'group-1a2b3c…'."""
    run = uuid.uuid4().hex[:8]
    return lambda prefix: f"{prefix}-{run}"


SettingsFactory = Callable[..., Settings]


@pytest.fixture
def make_settings(
    kafka_bootstrap: str, redis_url: str, redis_cluster: bool, database_url: str, config_path: Path
) -> SettingsFactory:
    """Return a factory of Settings on the session servers with this test's own topics and groups.

    Each call creates fresh topics unless `topic_events` etc. are given; pass
    `share_with=other_settings` to reuse another call's topics, every `topic_*` one
    including delivery's receipts (several services, one flow).
    """

    def factory(share_with: Settings | None = None, **overrides: Any) -> Settings:
        run = uuid.uuid4().hex[:8]
        base: dict[str, Any] = {
            "kafka_bootstrap_servers": kafka_bootstrap,
            "redis_url": redis_url,
            "redis_cluster": redis_cluster,
            "database_url": database_url,
            "qunyun_config": str(config_path),
            "kafka_partitions": 3,
            "kafka_session_timeout_ms": 6000,
            "kafka_produce_timeout_seconds": 5.0,
            "consumer_group_prefix": f"t{run}-",
            "topic_events": f"community.events.v1.{run}",
            "topic_moderation_actions": f"moderation.actions.v1.{run}",
            "topic_campaign_notifications": f"campaigns.notifications.v1.{run}",
            "topic_campaign_rewards": f"campaigns.rewards.v1.{run}",
            "topic_deadletter": f"deadletter.v1.{run}",
            "topic_delivery_receipts": f"delivery.receipts.v1.{run}",
        }
        if share_with is not None:
            base.update({k: getattr(share_with, k) for k in base if k.startswith("topic_")})
        base.update(overrides)
        settings = Settings(**base)
        if kafka_bootstrap in settings.kafka_bootstrap_servers:
            ensure_topics(settings)
        return settings

    return factory


@pytest.fixture
def settings(make_settings: SettingsFactory) -> Settings:
    return make_settings()


@pytest.fixture
def run_app() -> Callable[[FastAPI], Any]:
    """Return a context manager factory: `with run_app(app) as client:` runs the lifespan."""

    @contextmanager
    def runner(app: FastAPI) -> Iterator[TestClient]:
        with TestClient(app, raise_server_exceptions=False) as client:
            yield client

    return runner


@pytest.fixture
def producer(kafka_bootstrap: str) -> Iterator[KafkaProducer]:
    """A raw kafka-python producer, for tests that bypass ingest."""
    prod = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", linger_ms=2)
    yield prod
    prod.close(timeout=5)


__all__ = ["LIMITED_GROUP", "SOURCE_SECRETS", "auth", "produce_events", "read_topic"]
