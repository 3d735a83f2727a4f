"""What every service app shares: its resources, lifespan, health routes and error mapping."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import redis
import sqlalchemy.exc
from fastapi import APIRouter, FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from services.common.auth import TokenVerifier
from services.common.bus import BrokerUnavailable, ConsumerRunner, ProducerHandle, kafka_reachable
from services.common.observability import (
    RequestMetricsMiddleware,
    configure_logging,
    metrics_payload,
)
from services.common.settings import QunyunConfig, Settings
from services.common.storage import database_problem, make_engine, make_redis, redis_problem

log = logging.getLogger(__name__)


@dataclass
class Resources:
    """The clients a service runs with, built in its lifespan and injected into routes."""

    service: str
    settings: Settings
    config: QunyunConfig
    verifier: TokenVerifier
    producer: ProducerHandle
    redis: redis.Redis | None = None
    engine: Engine | None = None
    runners: list[ConsumerRunner] = field(default_factory=list)
    checks: dict[str, Callable[[], str | None]] = field(default_factory=dict)
    preparations: list[Preparation] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)

    def consumer_group(self, name: str) -> str:
        """Return the consumer group id for this deployment (prefix + contract name)."""
        return self.settings.consumer_group_prefix + name

    def problems(self) -> dict[str, str]:
        """Name each dependency that is not reachable and why."""
        found: dict[str, str] = {}
        if problem := kafka_reachable(self.settings):
            found["kafka"] = problem
        if self.redis is not None and (problem := redis_problem(self.redis)):
            found["redis"] = problem
        if self.engine is not None and (problem := database_problem(self.engine)):
            found["database"] = problem
        for runner in self.runners:
            if runner.problem:
                found[f"consumer:{runner.group_id}"] = runner.problem
        for name, check in self.checks.items():
            if problem := check():
                found[name] = problem
        return found


Startup = Callable[[Resources], AbstractAsyncContextManager[None]]


class Preparation:
    """Run a blocking preparation (migrations) until it succeeds, then start the work.

    A service whose database is down at start still serves /healthz and a /readyz that
    names what is pending; its consumers start only once their tables exist.
    """

    def __init__(
        self,
        *,
        name: str,
        prepare: Callable[[], None],
        start: Callable[[], None],
        max_backoff_seconds: float = 10.0,
    ) -> None:
        self.name = name
        self._prepare = prepare
        self._start = start
        self._max_backoff = max_backoff_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.problem: str | None = "pending"

    def attempt(self) -> bool:
        """Prepare once; on success start the work and return True."""
        try:
            self._prepare()
        except Exception as exc:  # noqa: BLE001 - reported through /readyz and retried
            self.problem = f"pending ({type(exc).__name__})"
            log.warning("%s not ready: %s", self.name, type(exc).__name__)
            return False
        self._start()
        self.problem = None
        return True

    def retry_in_background(self) -> None:
        """Keep attempting with backoff in a thread until it succeeds or is stopped."""

        def loop() -> None:
            backoff = 0.5
            while not self._stop.wait(backoff) and not self.attempt():
                backoff = min(backoff * 2, self._max_backoff)

        self._thread = threading.Thread(target=loop, name=f"prepare-{self.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 15.0) -> None:
        """Stop retrying."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None


async def prepare_then_start(
    resources: Resources, *, name: str, prepare: Callable[[], None], start: Callable[[], None]
) -> Preparation:
    """Prepare (e.g. migrate) now if possible, else keep retrying in the background; then start.

    The lifespan stops the retries; /readyz names `name` until the work has started.
    """
    preparation = Preparation(name=name, prepare=prepare, start=start)
    resources.checks[name] = lambda: preparation.problem
    resources.preparations.append(preparation)
    if not await run_in_threadpool(preparation.attempt):
        preparation.retry_in_background()
    return preparation


@asynccontextmanager
async def _no_startup(_: Resources) -> AsyncIterator[None]:
    yield


def build_resources(
    service: str, settings: Settings, *, with_redis: bool, with_database: bool
) -> Resources:
    """Build (without connecting) the clients a service needs."""
    config = settings.load_config()
    return Resources(
        service=service,
        settings=settings,
        config=config,
        verifier=TokenVerifier(config),
        producer=ProducerHandle(settings),
        redis=make_redis(settings.redis_url) if with_redis else None,
        engine=make_engine(settings.database_url) if with_database else None,
    )


def add_runner(resources: Resources, runner: ConsumerRunner) -> None:
    """Start a consumer loop that the lifespan will stop."""
    resources.runners.append(runner)
    runner.start()


async def start_runner(resources: Resources, runner: ConsumerRunner) -> None:
    """Start a consumer loop that the lifespan will stop."""
    add_runner(resources, runner)


async def close_resources(resources: Resources) -> None:
    """Stop consumers, flush the producer and close clients, off the event loop."""
    for preparation in resources.preparations:
        await run_in_threadpool(preparation.stop)
    for runner in resources.runners:
        await run_in_threadpool(runner.stop)
    await run_in_threadpool(resources.producer.close)
    if resources.redis is not None:
        await run_in_threadpool(resources.redis.close)
    if resources.engine is not None:
        await run_in_threadpool(resources.engine.dispose)


def _unavailable(what: str) -> Callable[[Request, Exception], Any]:
    async def handler(_: Request, exc: Exception) -> JSONResponse:
        log.warning("%s unavailable: %s", what, type(exc).__name__)
        return JSONResponse(
            {"detail": f"{what} is unavailable, retry later"},
            status_code=503,
            headers={"Retry-After": "2"},
        )

    return handler


_ERROR_SCHEMA = {
    "title": "HTTPError",
    "type": "object",
    "properties": {"detail": {"title": "Detail"}},
    "required": ["detail"],
}


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


def _shared_errors(operation: dict[str, Any]) -> dict[str, str]:
    shared = {"503": "Kafka, Redis or the database is unavailable; see Retry-After"}
    if operation.get("security"):
        shared["401"] = "Missing or unknown bearer token"
        shared["403"] = "The token lacks the scope or the group"
        if "requestBody" in operation:
            shared["400"] = "The body cannot be parsed (e.g. not UTF-8)"
    return shared


def document_shared_errors(app: FastAPI) -> None:
    """Add to each /v1 operation's OpenAPI entry the errors that shared code answers for it."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        schema = build()
        schema.setdefault("components", {}).setdefault("schemas", {})["HTTPError"] = _ERROR_SCHEMA
        for path, operations in schema.get("paths", {}).items():
            if not path.startswith("/v1/"):
                continue
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                for code, description in _shared_errors(operation).items():
                    responses.setdefault(
                        code,
                        {
                            "description": description,
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/HTTPError"}
                                }
                            },
                        },
                    )
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def health_router() -> APIRouter:
    """Return the /healthz, /readyz and /metrics routes."""
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get(
        "/readyz",
        summary="Kafka, Redis, the database and the consumers are usable",
        responses={503: {"description": "A dependency is down; detail names it"}},
    )
    def readyz(request: Request) -> JSONResponse:
        resources: Resources = request.app.state.resources
        problems = resources.problems()
        if problems:
            return JSONResponse({"detail": problems}, status_code=503)
        return JSONResponse({"status": "ready"})

    @router.get("/metrics", summary="Prometheus metrics", response_class=Response)
    def metrics() -> Response:
        body, content_type = metrics_payload()
        return Response(body, media_type=content_type)

    return router


def create_service_app(
    *,
    service: str,
    title: str,
    description: str,
    routers: Sequence[APIRouter],
    settings: Settings,
    with_redis: bool = True,
    with_database: bool = False,
    startup: Startup = _no_startup,
) -> FastAPI:
    """Build a service's FastAPI app; `startup` starts its consumers and background work."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        resources = build_resources(
            service, settings, with_redis=with_redis, with_database=with_database
        )
        configure_logging(
            service=service, level=settings.log_level, secrets=resources.config.secrets()
        )
        app.state.resources = resources
        try:
            async with startup(resources):
                log.info("%s started", service)
                yield
        finally:
            await close_resources(resources)
            log.info("%s stopped", service)

    app = FastAPI(title=title, description=description, version="1.0.0", lifespan=lifespan)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.add_middleware(RequestMetricsMiddleware, service=service)
    app.add_exception_handler(redis.RedisError, _unavailable("redis"))
    app.add_exception_handler(sqlalchemy.exc.OperationalError, _unavailable("database"))
    app.add_exception_handler(sqlalchemy.exc.InterfaceError, _unavailable("database"))
    app.add_exception_handler(sqlalchemy.exc.DataError, _unstorable)
    app.add_exception_handler(BrokerUnavailable, _unavailable("kafka"))
    app.include_router(health_router())
    for router in routers:
        app.include_router(router)
    document_shared_errors(app)
    return app


def serve(factory: str, default_port: int) -> None:
    """Run a service's app factory under uvicorn on HOST:PORT (defaults 127.0.0.1:default_port)."""
    import os

    import uvicorn

    uvicorn.run(
        factory,
        factory=True,
        host=os.environ.get("HOST", "127.0.0.1"),
        port=int(os.environ.get("PORT", default_port)),
        log_config=None,
        timeout_graceful_shutdown=20,
    )
