"""The moderation FastAPI app, its consumer and its outbox relay."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

from fastapi import FastAPI

from services.common.app import create_service_app
from services.common.db import migrate
from services.common.kafka.consumer import ConsumerRunner
from services.common.resources import Resources, prepare_then_start
from services.common.settings import Settings, get_settings
from services.moderation import api
from services.moderation.consumer import handle_batch
from services.moderation.deps import ModerationState
from services.moderation.outbox import action_relay
from services.moderation.rulebook_cache import RulebookCache
from services.moderation.tracking import Tracker

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version_moderation"


@asynccontextmanager
async def startup(resources: Resources) -> AsyncIterator[ModerationState]:
    settings = resources.settings
    assert resources.engine is not None and resources.redis is not None
    rulebooks = RulebookCache(db=resources.engine, client=resources.redis)
    runner = ConsumerRunner(
        settings=settings,
        group_id=resources.consumer_group("moderation"),
        handler=partial(
            handle_batch,
            db=resources.engine,
            settings=settings,
            producer=resources.producer,
            rulebooks=rulebooks,
            tracker=Tracker(resources.redis),
        ),
        producer=resources.producer,
    )
    relay = action_relay(db=resources.engine, producer=resources.producer)

    def migrate_moderation() -> None:
        if settings.run_migrations:
            migrate(
                migrations_dir=MIGRATIONS,
                version_table=VERSION_TABLE,
                database_url=settings.database_url,
            )

    def start_work() -> None:
        resources.run(runner)
        resources.run(relay)

    await prepare_then_start(
        resources, name="database-migrations", prepare=migrate_moderation, start=start_work
    )
    yield ModerationState(rulebooks=rulebooks, relay=relay)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the moderation app."""
    return create_service_app(
        service="moderation",
        title="qunyun moderation",
        description="Group rules, strike ladder, cases and moderation actions.",
        routers=[api.router],
        settings=settings or get_settings(),
        with_redis=True,
        with_database=True,
        startup=startup,
    )
