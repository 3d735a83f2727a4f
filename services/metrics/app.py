"""The metrics FastAPI app and its consumer."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

from fastapi import FastAPI

from services.common.app import create_service_app
from services.common.kafka.consumer import ConsumerRunner
from services.common.resources import Resources
from services.common.settings import Settings, get_settings
from services.metrics import api
from services.metrics.apply import Applier
from services.metrics.consumer import handle_actions, handle_events


@asynccontextmanager
async def startup(resources: Resources) -> AsyncIterator[None]:
    assert resources.redis is not None
    applier = Applier(
        resources.redis,
        tz=resources.settings.tz,
        history_days=resources.settings.metrics_history_days,
    )
    resources.run(
        ConsumerRunner(
            settings=resources.settings,
            group_id=resources.consumer_group("metrics"),
            # Raw records: the handler decodes only what metrics needs (facts.py).
            record_handler=partial(handle_events, applier=applier),
            producer=resources.producer,
            # The handler waits on Redis for most of a batch: poll the next one meanwhile
            # (docs/metrics.md, "Performance").
            overlap=True,
        ),
    )
    # Moderation's actions (deletions, kicks and bans) in a group of their own: one group
    # whose members subscribe to different topics leaves partitions unassigned when the
    # leader lacks the other topic's metadata.
    resources.run(
        ConsumerRunner(
            settings=resources.settings,
            group_id=resources.consumer_group("metrics-actions"),
            record_handler=partial(handle_actions, applier=applier),
            topics=[resources.settings.topic_moderation_actions],
            producer=resources.producer,
        ),
    )
    yield


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the metrics app."""
    return create_service_app(
        service="metrics",
        title="qunyun metrics",
        description="Activity, retention, lifecycle, lurkers and leaders per group.",
        routers=[api.router],
        settings=settings or get_settings(),
        with_redis=True,
        startup=startup,
    )
