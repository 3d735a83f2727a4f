"""The delivery FastAPI app: its consumer, dispatcher and receipts relay.

The consumer (group `delivery`) turns records of moderation.actions.v1 and
campaigns.notifications.v1 into rows; the dispatcher carries them out; the outbox relay
publishes receipts to delivery.receipts.v1. /readyz names each loop.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from fastapi import FastAPI

from services.common.app import create_service_app
from services.common.db import migrate
from services.common.kafka.consumer import ConsumerRunner
from services.common.outbox import OutboxRelay
from services.common.resources import Resources, run_after_migrations
from services.common.settings import Settings, get_settings
from services.delivery import api
from services.delivery.dispatcher import Dispatcher
from services.delivery.intake import handle_records
from services.delivery.models import DeliveryOutbox

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version_delivery"
# Every poll of records costs delivery an insert transaction, a pacing round trip and a
# hand-off to the dispatcher, and every fetch kafka-python's network thread: with the
# kernel's 5 ms wait a trickle of 100 records/s came one per poll. A bare consumer of
# delivery's topics against Tansu at 100 records/s: 50 ms gives about two records per poll
# and a third of the polling CPU per record, for ≈ +8 ms at p50 (a fetch is answered at a
# fraction of its wait); docs/delivery.md, "When records trickle".
FETCH_WAIT_FLOWING_MS = 50
# A poll's offsets are committed (a broker round trip) at most every 200 ms, once its rows
# are committed: a crash replays at most that much, and a replayed record inserts nothing
# (unique on its id), so nothing is called twice.
COMMIT_INTERVAL_MS = 200


@dataclass
class DeliveryState:
    """What delivery's routes reach: the dispatcher to wake after queuing work."""

    dispatcher: Dispatcher
    relay: OutboxRelay


def migrate_delivery(database_url: str) -> None:
    """Upgrade the delivery tables to the newest revision."""
    migrate(migrations_dir=MIGRATIONS, version_table=VERSION_TABLE, database_url=database_url)


@asynccontextmanager
async def startup(resources: Resources) -> AsyncIterator[DeliveryState]:
    settings = resources.settings
    # httpx logs every request at INFO: one line per platform call is noise, not news.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    assert resources.engine is not None and resources.redis is not None
    relay = OutboxRelay(engine=resources.engine, table=DeliveryOutbox, producer=resources.producer)
    dispatcher = Dispatcher(
        engine=resources.engine,
        redis_client=resources.redis,
        settings=settings,
        config=resources.config,
        on_receipt=relay.wake,
    )
    resources.config_listeners.append(dispatcher.use_config)
    runner = ConsumerRunner(
        settings=settings,
        group_id=resources.consumer_group("delivery"),
        record_handler=partial(
            handle_records,
            engine=resources.engine,
            settings=settings,
            config=lambda: resources.config,
            dispatcher=dispatcher,
        ),
        topics=[settings.topic_moderation_actions, settings.topic_campaign_notifications],
        producer=resources.producer,
        fetch_wait_flowing_ms=FETCH_WAIT_FLOWING_MS,
        commit_interval_ms=COMMIT_INTERVAL_MS,
    )

    await run_after_migrations(
        resources,
        migrations_dir=MIGRATIONS,
        version_table=VERSION_TABLE,
        loops=[relay, dispatcher, runner],
    )
    yield DeliveryState(dispatcher=dispatcher, relay=relay)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the delivery app."""
    return create_service_app(
        service="delivery",
        title="qunyun delivery",
        description="Carries out moderation actions and campaign posts on the platforms.",
        routers=[api.router],
        settings=settings or get_settings(),
        with_redis=True,
        with_database=True,
        startup=startup,
    )
