"""The console app: the static web app, /config.json and /v1/me on the kernel's app factory.

It needs no Kafka, Redis or database: /readyz is ready as soon as it serves (it refuses to
start without the web app's files).
"""

from __future__ import annotations

import mimetypes
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.types import Scope

from services.common.app import create_service_app
from services.common.resources import Resources
from services.common.settings import Settings, get_settings
from services.console import api

STATIC = Path(__file__).parent / "static"
# ES modules must be served as JavaScript whatever the system's mime table says.
mimetypes.add_type("text/javascript", ".mjs")
mimetypes.add_type("text/javascript", ".js")


class ConsoleFiles(StaticFiles):
    """The web app's files, revalidated on every load so an upgrade shows at once."""

    async def get_response(self, path: str, scope: Scope):  # type: ignore[no-untyped-def]
        response = await super().get_response(path, scope)
        response.headers["Cache-Control"] = "no-cache"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


@asynccontextmanager
async def startup(resources: Resources) -> AsyncIterator[None]:
    if not (STATIC / "index.html").is_file():
        raise RuntimeError(f"the console's web app is missing from {STATIC}")
    yield


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the console app."""
    app = create_service_app(
        service="console",
        title="qunyun console",
        description="The operators' web console; it calls the other services' REST APIs.",
        routers=[api.router],
        settings=settings or get_settings(),
        with_redis=False,
        with_database=False,
        with_kafka=False,
        startup=startup,
    )
    app.mount("/", ConsoleFiles(directory=STATIC, html=True), name="console")
    return app
