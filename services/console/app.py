"""The console app: the static web app, /config.json and /v1/me on the kernel's app factory.

It needs no Kafka, Redis or database: /readyz is ready as soon as it serves (it refuses to
start without the web app's files).
"""

from __future__ import annotations

import base64
import hashlib
import mimetypes
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
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


# An origin as the CSP may name it: nothing a Host header could smuggle a directive in with.
ORIGIN = re.compile(
    r"^https?://[A-Za-z0-9.\-]+(:[0-9]{1,5})?$|^https?://\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$"
)
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", re.DOTALL)


def inline_script_hashes(page: str) -> list[str]:
    """The CSP hash source of each inline script of the page (only the import map: an
    import map cannot be loaded from a file, so the policy names its exact text)."""
    return [
        "'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'"
        for body in INLINE_SCRIPT.findall(page)
    ]


def content_security_policy(script_hashes: list[str], api_origins: list[str]) -> str:
    """The console's policy: its own files only, the import map by its hash, calls to itself
    and to the five APIs (`/config.json`'s URLs), nothing framed, no plugins.

    ECharts writes its tooltips with inline `style` attributes, so only attributes may be
    inline (`style-src-attr`); no `<style>` element or stylesheet from elsewhere is allowed.
    """
    connect = " ".join(["'self'", *dict.fromkeys(o for o in api_origins if ORIGIN.match(o))])
    return "; ".join(
        [
            "default-src 'none'",
            "script-src " + " ".join(["'self'", *script_hashes]),
            "style-src 'self'",
            "style-src-attr 'unsafe-inline'",
            "img-src 'self' data:",
            f"connect-src {connect}",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


class ConsoleFiles(StaticFiles):
    """The web app's files, revalidated on every load so an upgrade shows at once, with the
    security headers: the Content-Security-Policy, no MIME sniffing, no referrer."""

    def __init__(self, *, directory: Path) -> None:
        super().__init__(directory=directory, html=True)
        index = directory / "index.html"  # missing: the startup refuses to serve
        self.script_hashes = (
            inline_script_hashes(index.read_text("utf-8")) if index.is_file() else []
        )

    async def get_response(self, path: str, scope: Scope):  # type: ignore[no-untyped-def]
        response = await super().get_response(path, scope)
        request = Request(scope)
        urls = api.service_urls(request.app.state.resources.settings, request)
        origins = [origin_of(url) for url in urls.model_dump().values()]
        response.headers["Content-Security-Policy"] = content_security_policy(
            self.script_hashes, origins
        )
        response.headers["Cache-Control"] = "no-cache"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response


def origin_of(url: str) -> str:
    """`scheme://host[:port]` of a URL (a path behind a proxy is not part of an origin)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


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
    app.mount("/", ConsoleFiles(directory=STATIC), name="console")
    return app
