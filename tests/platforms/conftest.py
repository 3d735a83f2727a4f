"""The platform double on a free port for the session, reset before each test, and clients on it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace

import httpx
import pytest

from services.platforms import OutboundCredentials, PlatformClient, client_for
from tools.platform_double import DoubleConfig, DoubleHandle, start_double

CLIENT_TIMEOUT = httpx.Timeout(1.0, connect=1.0)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def double() -> Iterator[DoubleHandle]:
    handle = start_double(DoubleConfig(strict=True))
    yield handle
    handle.stop()


@pytest.fixture(autouse=True)
def clean_double(double: DoubleHandle) -> Iterator[None]:
    double.state.reset()
    double.state.config = DoubleConfig(strict=True)
    yield
    double.state.reset()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def credentials(platform: str, double: DoubleHandle) -> OutboundCredentials:
    """Credentials the double accepts, pointed at it through `api_base`."""
    config = double.state.config
    base = double.base_url
    return {
        "telegram": OutboundCredentials(bot_token=config.telegram_token, api_base=base),
        "slack": OutboundCredentials(
            bot_token=config.slack_bot_token, user_token=config.slack_user_token, api_base=base
        ),
        "feishu": OutboundCredentials(
            app_id=config.feishu_app_id, app_secret=config.feishu_app_secret, api_base=base
        ),
        "onebot": OutboundCredentials(
            api_url="http://napcat.invalid:3000/onebot",
            access_token=config.onebot_token,
            api_base=base,
        ),
        "wecom": OutboundCredentials(
            app_id=config.wecom_corp_id, app_secret=config.wecom_secret, api_base=base
        ),
    }[platform]


@pytest.fixture
def make_client(double: DoubleHandle, http: httpx.AsyncClient) -> Callable[..., PlatformClient]:
    """`make_client(platform, **credential_overrides)` → a client talking to the double."""

    def make(platform: str, **overrides: str | None) -> PlatformClient:
        creds = replace(credentials(platform, double), **overrides)
        return client_for(platform, creds, http, timeout=CLIENT_TIMEOUT)

    return make
