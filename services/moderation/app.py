"""The moderation FastAPI app and its consumer."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.common.bus import ConsumerRunner
from services.common.service import Resources, create_service_app, start_runner
from services.common.settings import Settings, get_settings
from services.moderation import api
from services.moderation.consumer import handle_batch


@asynccontextmanager
async def startup(resources: Resources) -> AsyncIterator[None]:
    await start_runner(
        resources,
        ConsumerRunner(
            settings=resources.settings,
            group_id=resources.consumer_group("moderation"),
            handler=handle_batch,
            producer=resources.producer,
        ),
    )
    yield


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
