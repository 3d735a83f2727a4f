"""The console's own routes: where the browser finds the APIs, and what a token may do.

The console holds no data: the browser calls metrics, moderation, campaigns and delivery
directly with the operator's token (CORS). These two routes only tell it where those are
and what the token allows, so the pages can hide what the token cannot do.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel

from services.common.deps import PrincipalDep, SettingsDep
from services.common.settings import Settings

router = APIRouter()

# Where `make run` and docker compose publish each service.
DEFAULT_PORTS = {
    "ingest": 8001,
    "metrics": 8002,
    "moderation": 8003,
    "campaigns": 8004,
    "delivery": 8005,
}


class ServiceUrls(BaseModel):
    """The base URL of each service's REST API, as the browser reaches it."""

    ingest: str
    metrics: str
    moderation: str
    campaigns: str
    delivery: str


class ConsoleConfig(BaseModel):
    """What the web app needs before the operator logs in."""

    services: ServiceUrls
    locale: Literal["zh-CN", "en"]
    timezone: str


class TokenInfo(BaseModel):
    """What a token may do: its name, its groups (`*` for all) and its scopes."""

    name: str
    groups: list[str]
    scopes: list[str]


def service_urls(settings: Settings, request: Request) -> ServiceUrls:
    """Return each configured URL, or the page's own host with the service's default port."""
    host = request.url.hostname or "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    urls = {}
    for name, port in DEFAULT_PORTS.items():
        configured: str = getattr(settings, f"console_{name}_url")
        urls[name] = configured.rstrip("/") or f"{request.url.scheme}://{host}:{port}"
    return ServiceUrls(**urls)


@router.get(
    "/config.json",
    response_model=ConsoleConfig,
    summary="Where the web app finds the APIs, its default language and timezone",
    tags=["console"],
)
def console_config(request: Request, settings: SettingsDep) -> ConsoleConfig:
    return ConsoleConfig(
        services=service_urls(settings, request),
        locale=settings.console_locale,
        timezone=settings.qunyun_timezone,
    )


@router.get(
    "/v1/me",
    response_model=TokenInfo,
    summary="The token's name, groups and scopes (401 for an unknown token)",
    tags=["console"],
)
def me(principal: PrincipalDep) -> TokenInfo:
    return TokenInfo(
        name=principal.name, groups=sorted(principal.groups), scopes=sorted(principal.scopes)
    )
