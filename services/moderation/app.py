"""The moderation FastAPI app, its consumers (events; delivery receipts) and its outbox relay."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

from fastapi import FastAPI

from services.common.app import create_service_app
from services.common.kafka.consumer import ConsumerRunner
from services.common.resources import Resources, run_after_migrations
from services.common.settings import Settings, get_settings
from services.moderation import api, membership_api
from services.moderation.consumer import handle_batch
from services.moderation.deps import ModerationState
from services.moderation.enforcement import handle_receipts
from services.moderation.outbox import action_relay
from services.moderation.rulebook_cache import RulebookCache
from services.moderation.sources import SourceTracker
from services.moderation.timers import MembershipTimers
from services.moderation.tracking import Tracker

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version_moderation"
RECEIPTS_FETCH_WAIT_MS = 500
RECEIPTS_FETCH_MIN_BYTES = 64 * 1024


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
            sources=SourceTracker(),
        ),
        producer=resources.producer,
    )
    # Receipts in a group of their own: its offsets move independently of the events'.
    # Nobody waits on a receipt (it only shows as a case's enforcement), so the broker may
    # hold a fetch up to RECEIPTS_FETCH_WAIT_MS to fill it: a transaction per ~50 receipts
    # instead of one per receipt or two, at 100 deletions a second.
    receipts = ConsumerRunner(
        settings=settings,
        group_id=resources.consumer_group("moderation-receipts"),
        record_handler=partial(handle_receipts, db=resources.engine, settings=settings),
        topics=[settings.topic_delivery_receipts],
        producer=resources.producer,
        consumer_overrides={
            "fetch_max_wait_ms": RECEIPTS_FETCH_WAIT_MS,
            "fetch_min_bytes": RECEIPTS_FETCH_MIN_BYTES,
        },
    )
    relay = action_relay(db=resources.engine, producer=resources.producer)
    timers = MembershipTimers(
        engine=resources.engine, settings=settings, producer=resources.producer
    )

    await run_after_migrations(
        resources,
        migrations_dir=MIGRATIONS,
        version_table=VERSION_TABLE,
        loops=[runner, receipts, relay, timers],
    )
    yield ModerationState(rulebooks=rulebooks, relay=relay)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the moderation app."""
    return create_service_app(
        service="moderation",
        title="qunyun moderation",
        description="Group rules, strike ladder, cases and moderation actions.",
        routers=[api.router, membership_api.router, membership_api.blocklist_router],
        settings=settings or get_settings(),
        with_redis=True,
        with_database=True,
        startup=startup,
    )
