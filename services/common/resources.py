"""What a service runs with: clients built in its lifespan, its background loops, its state."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from services.common.auth import TokenVerifier
from services.common.db import database_problem, make_engine, migrate
from services.common.kafka.admin import kafka_reachable
from services.common.kafka.producer import ProducerHandle
from services.common.redis_client import make_redis, redis_problem
from services.common.settings import QunyunConfig, Settings
from services.common.worker import BackgroundLoop


@dataclass
class Resources:
    """The clients a service runs with, built in its lifespan and injected into routes.

    `state` is the service's own typed object (its caches, runtime, scheduler), set from
    what the service's startup yields; routes reach it through the service's deps.
    """

    service: str
    settings: Settings
    config: QunyunConfig
    verifier: TokenVerifier
    producer: ProducerHandle
    redis: redis.Redis | None = None
    engine: Engine | None = None
    with_kafka: bool = True  # False: a service that never talks to Kafka (the console)
    loops: list[BackgroundLoop] = field(default_factory=list)
    state: Any = None
    config_listeners: list[Callable[[QunyunConfig], None]] = field(default_factory=list)

    def consumer_group(self, name: str) -> str:
        """Return the consumer group id for this deployment (prefix + contract name)."""
        return self.settings.consumer_group_prefix + name

    def apply_config(self, config: QunyunConfig) -> None:
        """Take a reloaded QUNYUN_CONFIG: new tokens at once, then each listener (sources)."""
        self.config = config
        self.verifier = TokenVerifier(config)
        for listener in self.config_listeners:
            listener(config)

    def run(self, loop: BackgroundLoop) -> BackgroundLoop:
        """Start a background loop that /readyz watches and the lifespan stops."""
        self.loops.append(loop)
        loop.start()
        return loop

    def problems(self) -> dict[str, str]:
        """Name each dependency or background loop that is not working, and why."""
        found: dict[str, str] = {}
        if self.with_kafka and (problem := kafka_reachable(self.settings)):
            found["kafka"] = problem
        if self.redis is not None and (problem := redis_problem(self.redis)):
            found["redis"] = problem
        if self.engine is not None and (problem := database_problem(self.engine)):
            found["database"] = problem
        for loop in self.loops:
            if loop.problem:
                found[loop.name] = loop.problem
        return found


def build_resources(
    service: str,
    settings: Settings,
    *,
    with_redis: bool,
    with_database: bool,
    with_kafka: bool = True,
) -> Resources:
    """Build (without connecting) the clients a service needs."""
    config = settings.load_config()
    return Resources(
        service=service,
        settings=settings,
        config=config,
        verifier=TokenVerifier(config),
        producer=ProducerHandle(settings),
        redis=(
            make_redis(settings.redis_url, cluster=settings.redis_cluster) if with_redis else None
        ),
        engine=make_engine(settings.database_url) if with_database else None,
        with_kafka=with_kafka,
    )


async def close_resources(resources: Resources) -> None:
    """Stop the loops (newest first), flush the producer and close clients, off the event loop.

    kafka-python's network thread can race its own close of a socket and log errors about
    it ("'NoneType' object has no attribute 'recv'", "Invalid file descriptor: -1"): by then
    every effect is durable and every offset committed, so a clean stop keeps them out of
    the log (CRITICAL still shows).
    """
    kafka_log = logging.getLogger("kafka")
    level = kafka_log.level
    kafka_log.setLevel(logging.CRITICAL)
    try:
        for loop in reversed(resources.loops):
            await run_in_threadpool(loop.stop)
        await run_in_threadpool(resources.producer.close)
    finally:
        kafka_log.setLevel(level)
    if resources.redis is not None:
        await run_in_threadpool(resources.redis.close)
    if resources.engine is not None:
        await run_in_threadpool(resources.engine.dispose)


class Preparation(BackgroundLoop):
    """Run a blocking preparation (migrations) until it succeeds, then start the work.

    A service whose database is down at start still serves /healthz and a /readyz that
    names what is pending; its consumers start only once their tables exist.
    """

    initial_problem = "pending"

    def __init__(
        self, *, name: str, prepare: Callable[[], None], start_work: Callable[[], None]
    ) -> None:
        super().__init__(name, min_backoff=0.5, max_backoff=10.0)
        self._prepare = prepare
        self._start_work = start_work
        self.problem = "pending"

    def describe(self, exc: BaseException) -> str:
        return f"pending ({type(exc).__name__})"

    def step(self) -> None:
        self._prepare()
        self._start_work()
        self.finish()

    def attempt(self) -> bool:
        """Prepare once in the caller's thread; on success start the work and return True."""
        try:
            self.step()
        except Exception as exc:  # noqa: BLE001 - reported through /readyz and retried
            self.problem = self.describe(exc)
            return False
        self.problem = None
        return True


async def prepare_then_start(
    resources: Resources, *, name: str, prepare: Callable[[], None], start: Callable[[], None]
) -> None:
    """Prepare (e.g. migrate) now if possible, else keep retrying in the background; then start.

    /readyz names `name` until the work has started; the lifespan stops the retries.
    """
    preparation = Preparation(name=name, prepare=prepare, start_work=start)
    resources.loops.append(preparation)
    if not await run_in_threadpool(preparation.attempt):
        preparation.start()


async def run_after_migrations(
    resources: Resources,
    *,
    migrations_dir: Path,
    version_table: str,
    loops: Sequence[BackgroundLoop],
) -> None:
    """Upgrade the service's tables (unless RUN_MIGRATIONS is off), then run its loops.

    While the database is down the upgrade is retried in the background and /readyz
    names `database-migrations`; the loops start once the tables exist.
    """
    settings = resources.settings

    def upgrade() -> None:
        if settings.run_migrations:
            migrate(
                migrations_dir=migrations_dir,
                version_table=version_table,
                database_url=settings.database_url,
            )

    def start_loops() -> None:
        for loop in loops:
            resources.run(loop)

    await prepare_then_start(
        resources, name="database-migrations", prepare=upgrade, start=start_loops
    )
