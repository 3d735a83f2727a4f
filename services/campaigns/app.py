"""The campaigns FastAPI app and its consumer."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.campaigns import api
from services.campaigns.consumer import handle_batch
from services.common.bus import ConsumerRunner
from services.common.service import Resources, create_service_app, start_runner
from services.common.settings import Settings, get_settings


@asynccontextmanager
async def startup(resources: Resources) -> AsyncIterator[None]:
    await start_runner(
        resources,
        ConsumerRunner(
            settings=resources.settings,
            group_id=resources.consumer_group("campaigns"),
            handler=handle_batch,
            producer=resources.producer,
        ),
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
        with_redis=True,
        with_database=True,
        startup=startup,
    )
