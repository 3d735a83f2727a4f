"""One package per platform: what qunyun knows of it, inbound (webhooks) and outbound (calls).

`<platform>/inbound.py` is the webhook adapter ingest runs (its signature check included),
`<platform>/outbound.py` the client delivery calls, `<platform>/ids.py` how the platform's
ids are written in qunyun (`telegram:CHAT_ID`…), formatted inbound and parsed outbound.
`inbound.py` and `signing.py` hold what the adapters share, `base.py` what the clients share.

`client_for` builds the outbound client of a source's platform; `missing_credentials` says
which outbound keys a source lacks (delivery answers `no_route` for those, naming them).
"""

from __future__ import annotations

import httpx

from services.platforms.base import (
    DEFAULT_TIMEOUT,
    OPERATIONS,
    OUTCOMES,
    CallResult,
    InvalidTarget,
    Mention,
    Operation,
    OperationRequest,
    OutboundCredentials,
    Outcome,
    PlatformClient,
)
from services.platforms.feishu.outbound import FeishuClient
from services.platforms.onebot.outbound import OneBotClient
from services.platforms.slack.outbound import SlackClient
from services.platforms.telegram.outbound import TelegramClient
from services.platforms.wecom.outbound import WeComClient

__all__ = [
    "DEFAULT_TIMEOUT",
    "OPERATIONS",
    "OUTCOMES",
    "CallResult",
    "InvalidTarget",
    "Mention",
    "Operation",
    "OperationRequest",
    "OutboundCredentials",
    "Outcome",
    "PlatformClient",
    "REQUIRED_CREDENTIALS",
    "client_for",
    "missing_credentials",
]

CLIENTS: dict[
    str, type[TelegramClient | SlackClient | FeishuClient | OneBotClient | WeComClient]
] = {
    "telegram": TelegramClient,
    "slack": SlackClient,
    "feishu": FeishuClient,
    "onebot": OneBotClient,
    "wecom": WeComClient,
}
REQUIRED_CREDENTIALS: dict[str, tuple[str, ...]] = {name: c.needs for name, c in CLIENTS.items()}


def missing_credentials(platform: str, credentials: OutboundCredentials) -> list[str]:
    """The outbound keys this platform needs that the credentials lack (all, if unknown)."""
    needed = REQUIRED_CREDENTIALS.get(platform)
    if needed is None:
        return [f"outbound client for platform {platform!r}"]
    return [key for key in needed if not getattr(credentials, key)]


def client_for(
    platform: str,
    credentials: OutboundCredentials,
    http: httpx.AsyncClient,
    *,
    timeout: httpx.Timeout = DEFAULT_TIMEOUT,
) -> PlatformClient:
    """The outbound client of `platform` bound to a source's credentials.

    Raises ValueError for a platform without a client or missing credentials (check
    `missing_credentials` first to answer `no_route`).
    """
    cls = CLIENTS.get(platform)
    if cls is None:
        raise ValueError(f"no outbound client for platform {platform!r}")
    client: PlatformClient = cls(credentials, http, timeout=timeout)
    return client
