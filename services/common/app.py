"""The app factory every service uses: lifespan, middleware, error mapping and `serve`."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import redis
import sqlalchemy.exc
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline

from services.common.config_reload import ConfigReloader, reload_on_sighup
from services.common.errors import Conflict, NotFound
from services.common.health import health_router
from services.common.heap import freeze_startup_heap
from services.common.http_limits import BodyLimitMiddleware, bounded_validation_error
from services.common.kafka.errors import BrokerUnavailable
from services.common.observability import RequestMetricsMiddleware, configure_logging
from services.common.openapi import document_shared_errors
from services.common.resources import Resources, build_resources, close_resources
from services.common.settings import QunyunConfig, Settings

log = logging.getLogger(__name__)

Startup = Callable[[Resources], AbstractAsyncContextManager[Any]]
"""Starts a service's loops and yields its typed state (kept as `resources.state`)."""


@asynccontextmanager
async def _no_startup(_: Resources) -> AsyncIterator[None]:
    yield


def _unavailable(what: str) -> Callable[[Request, Exception], Any]:
    async def handler(_: Request, exc: Exception) -> JSONResponse:
        log.warning("%s unavailable: %s", what, type(exc).__name__)
        return JSONResponse(
            {"detail": f"{what} is unavailable, retry later"},
            status_code=503,
            headers={"Retry-After": "2"},
        )

    return handler


def _status(code: int) -> Callable[[Request, Exception], Any]:
    async def handler(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=code)

    return handler


async def _unstorable(_: Request, exc: Exception) -> JSONResponse:
    # A value the database refuses (NUL character, out of range, too long) is the client's
    # error, not the server's; the statement's parameters are never echoed or logged.
    log.info("request value refused by the database: %s", type(getattr(exc, "orig", exc)).__name__)
    error = {
        "type": "value_error",
        "loc": ["request"],
        "msg": "a value cannot be stored: it has a NUL character, is out of range or too long",
    }
    return JSONResponse({"detail": [error]}, status_code=422)


def _map_errors(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, bounded_validation_error)
    app.add_exception_handler(NotFound, _status(404))
    app.add_exception_handler(Conflict, _status(409))
    app.add_exception_handler(redis.RedisError, _unavailable("redis"))
    app.add_exception_handler(redis.exceptions.RedisClusterException, _unavailable("redis"))
    app.add_exception_handler(sqlalchemy.exc.OperationalError, _unavailable("database"))
    app.add_exception_handler(sqlalchemy.exc.InterfaceError, _unavailable("database"))
    app.add_exception_handler(sqlalchemy.exc.DataError, _unstorable)
    app.add_exception_handler(BrokerUnavailable, _unavailable("kafka"))


def _watch_config(resources: Resources) -> Callable[[], None]:
    """Reload QUNYUN_CONFIG on change or SIGHUP (with log redaction of the new secrets)."""
    path = resources.settings.qunyun_config
    if not path:
        return lambda: None
    settings = resources.settings

    def apply(config: QunyunConfig) -> None:
        configure_logging(
            service=resources.service, level=settings.log_level, secrets=config.secrets()
        )
        resources.apply_config(config)

    reloader = ConfigReloader(path, apply)
    resources.run(reloader)
    return reload_on_sighup(reloader)


def create_service_app(
    *,
    service: str,
    title: str,
    description: str,
    routers: Sequence[APIRouter],
    settings: Settings,
    with_redis: bool = True,
    with_database: bool = False,
    with_kafka: bool = True,
    startup: Startup = _no_startup,
    own_body_limits: tuple[str, ...] = (),
) -> FastAPI:
    """Build a service's FastAPI app; `startup` starts its loops and yields its state.

    Request bodies are limited to 1 MiB (413) except under `own_body_limits` path prefixes,
    whose routes read their bodies with a limit of their own. /docs and /redoc load their
    scripts from the service itself (fastapi-offline), never from a CDN. `with_kafka=False`:
    the service never talks to Kafka, so /readyz does not ask for it.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        resources = build_resources(
            service,
            settings,
            with_redis=with_redis,
            with_database=with_database,
            with_kafka=with_kafka,
        )
        configure_logging(
            service=service, level=settings.log_level, secrets=resources.config.secrets()
        )
        app.state.resources = resources
        restore_sighup = _watch_config(resources)
        try:
            async with startup(resources) as state:
                resources.state = state
                freeze_startup_heap()
                log.info("%s started", service)
                yield
        finally:
            restore_sighup()
            await close_resources(resources)
            log.info("%s stopped", service)

    # qunyun's request telemetry is Prometheus (RequestMetricsMiddleware); FastAPI's own
    # OpenTelemetry hook, left on, looks the OTel providers up (environment reads) on every
    # request to learn that none is configured: ≈ 3 % of an ingest webhook's CPU.
    app = FastAPIOffline(
        title=title,
        description=description,
        version="1.0.0",
        lifespan=lifespan,
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.add_middleware(BodyLimitMiddleware, exempt_prefixes=own_body_limits)
    app.add_middleware(RequestMetricsMiddleware, service=service)
    _map_errors(app)
    app.include_router(health_router())
    for router in routers:
        app.include_router(router)
    document_shared_errors(app)
    return app


def serve(factory: str, default_port: int) -> None:
    """Run a service's app factory under uvicorn on HOST:PORT (defaults 127.0.0.1:default_port)."""
    import uvicorn

    uvicorn.run(
        factory,
        factory=True,
        host=os.environ.get("HOST", "127.0.0.1"),
        port=int(os.environ.get("PORT", default_port)),
        log_config=None,
        timeout_graceful_shutdown=20,
    )
