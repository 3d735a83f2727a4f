"""The campaigns FastAPI app: REST, the participation and receipts consumers, the scheduler."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

from fastapi import FastAPI

from services.campaigns import api
from services.campaigns.consumer import (
    events_settings,
    handle_actions,
    handle_batch,
    handle_receipts,
)
from services.campaigns.effects import Topics, relay
from services.campaigns.running import CampaignCache
from services.campaigns.scheduler import Scheduler
from services.common.app import create_service_app
from services.common.db import migrate
from services.common.kafka.consumer import ConsumerRunner
from services.common.resources import Resources, run_after_migrations
from services.common.settings import Settings, get_settings

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version_campaigns"


def migrate_campaigns(database_url: str) -> None:
    """Upgrade the campaigns tables to the newest revision."""
    migrate(migrations_dir=MIGRATIONS, version_table=VERSION_TABLE, database_url=database_url)


@asynccontextmanager
async def startup(resources: Resources) -> AsyncIterator[None]:
    settings = resources.settings
    assert resources.engine is not None
    outbox = relay(engine=resources.engine, producer=resources.producer, topics=Topics.of(settings))
    runner = ConsumerRunner(
        settings=events_settings(settings),
        group_id=resources.consumer_group("campaigns"),
        handler=partial(
            handle_batch,
            engine=resources.engine,
            producer=resources.producer,
            settings=settings,
            cache=CampaignCache(),
            relay=outbox,
        ),
        producer=resources.producer,
    )
    # Its own group: its offsets and rebalances stay apart from the events consumer's.
    receipts = ConsumerRunner(
        settings=settings,
        group_id=resources.consumer_group("campaigns-receipts"),
        record_handler=partial(handle_receipts, engine=resources.engine, settings=settings),
        topics=[settings.topic_delivery_receipts],
        producer=resources.producer,
    )
    # Moderation's mutes, kicks and bans make members ineligible: a group of its own too.
    actions = ConsumerRunner(
        settings=settings,
        group_id=resources.consumer_group("campaigns-actions"),
        record_handler=partial(handle_actions, engine=resources.engine),
        topics=[settings.topic_moderation_actions],
        producer=resources.producer,
    )
    scheduler = Scheduler(engine=resources.engine, settings=settings, producer=resources.producer)

    await run_after_migrations(
        resources,
        migrations_dir=MIGRATIONS,
        version_table=VERSION_TABLE,
        loops=[runner, receipts, actions, scheduler, outbox],
    )
    yield


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the campaigns app."""
    return create_service_app(
        service="campaigns",
        title="qunyun campaigns",
        description="Check-ins, lotteries, challenges and events with exactly-once rewards.",
        routers=[api.router],
        settings=settings or get_settings(),
        with_redis=False,
        with_database=True,
        startup=startup,
    )
