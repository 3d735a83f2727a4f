"""The ingest FastAPI app."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.common.service import Resources, create_service_app
from services.common.settings import Settings, get_settings
from services.ingest import api
from services.ingest.producer import AbandoningProducerHandle


@asynccontextmanager
async def startup(resources: Resources) -> AsyncIterator[None]:
    """Use a producer that never lets an unacknowledged webhook's records land later."""
    resources.producer = AbandoningProducerHandle(resources.settings)
    yield


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the ingest app."""
    return create_service_app(
        service="ingest",
        title="qunyun ingest",
        description="Platform webhooks (generic, Slack, Telegram, Feishu) onto Kafka.",
        routers=[api.router],
        settings=settings or get_settings(),
        with_redis=True,
        startup=startup,
    )
