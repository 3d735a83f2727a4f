"""The ingest FastAPI app."""

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.middleware import Middleware

from services.common.app import create_service_app
from services.common.redis_client import make_async_redis
from services.common.resources import Resources
from services.common.settings import Settings, get_settings
from services.ingest import api
from services.ingest.dedup import Dedup
from services.ingest.deps import Runtime, sources_of
from services.ingest.lane import WebhookLane
from services.ingest.openapi import document_webhook_body
from services.ingest.producer import ProduceThread
from services.ingest.publish import claim_ms

YOUNG_GC_THRESHOLD = 10_000


@asynccontextmanager
async def startup(resources: Resources) -> AsyncIterator[Runtime]:
    """Serve webhooks with an asyncio Redis client and a produce thread.

    No blocking call on the loop and no threadpool hop per request; the sync Redis client
    stays for /readyz.
    """
    client = make_async_redis(
        resources.settings.redis_url, cluster=resources.settings.redis_cluster
    )
    sender = ProduceThread(resources.producer)
    resources.run(sender)
    settings = resources.settings
    dedup = Dedup(
        client,
        claim_ms=claim_ms(settings.kafka_produce_timeout_seconds),
        ttl_seconds=settings.dedup_ttl_seconds,
    )
    runtime = Runtime(
        sources=sources_of(resources.config),
        dedup=dedup,
        producer=sender,
        topic=settings.topic_events,
        produce_timeout=settings.kafka_produce_timeout_seconds,
    )
    # A reloaded QUNYUN_CONFIG (file change or SIGHUP) replaces the sources for the next
    # webhook; a file that does not validate never reaches the listener. The watch runs
    # already, so take the config once more in case a reload came before the listener.
    resources.config_listeners.append(runtime.use_config)
    runtime.use_config(resources.config)
    # Profiled under single-event load, the cyclic garbage collector took a fifth of the event
    # loop's CPU: besides the full passes over the start-up heap (frozen by the app factory,
    # services/common/heap.py), each request's few hundred allocations set off a young
    # collection every couple of requests. Collect the young generation every 10,000
    # allocations instead of 700 (undone at shutdown, so a test process that runs several
    # apps is left as it was).
    thresholds = gc.get_threshold()
    gc.set_threshold(YOUNG_GC_THRESHOLD, *thresholds[1:])
    try:
        yield runtime
    finally:
        gc.set_threshold(*thresholds)
        await dedup.flush()
        await client.aclose()  # type: ignore[attr-defined]  # stubs predate aclose


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the ingest app."""
    app = create_service_app(
        service="ingest",
        title="qunyun ingest",
        description="Platform webhooks (generic, Slack, Telegram, Feishu, OneBot, WeCom) to Kafka",
        routers=[api.router],
        settings=settings or get_settings(),
        with_redis=True,
        startup=startup,
        # The webhook route reads its body with its own 1 MiB limit (`body.py`) and counts
        # each rejection against the source, so the shared limit leaves it alone.
        own_body_limits=("/v1/webhooks/",),
    )
    # Innermost of the app's middleware: the request metrics and CORS still wrap webhooks.
    app.user_middleware.append(Middleware(WebhookLane))
    document_webhook_body(app)
    return app
