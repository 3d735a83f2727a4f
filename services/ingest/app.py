"""The ingest FastAPI app."""

from fastapi import FastAPI

from services.common.service import create_service_app
from services.common.settings import Settings, get_settings
from services.ingest import api


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the ingest app."""
    return create_service_app(
        service="ingest",
        title="qunyun ingest",
        description="Platform webhooks (generic, Slack, Telegram, Feishu) onto Kafka.",
        routers=[api.router],
        settings=settings or get_settings(),
        with_redis=True,
    )
