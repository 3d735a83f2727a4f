"""Feishu/Lark Open Platform: the calls delivery makes in a chat, and how their answers map.

https://open.feishu.cn/document/server-docs — JSON answers `{"code", "msg", "data"}` (code 0
is success); every call carries `Authorization: Bearer <tenant_access_token>`, fetched from
`/open-apis/auth/v3/tenant_access_token/internal` and cached until shortly before `expire`.
Lark is the same API on https://open.larksuite.com (set `api_base`).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

import httpx

from services.platforms.base import (
    DEFAULT_TIMEOUT,
    CallResult,
    HttpClient,
    Mention,
    OperationRequest,
    OutboundCredentials,
    base_url,
    delivered,
    failed,
    forbidden,
    json_body,
    rate_limited,
    render_mentions,
    required,
    server_error,
    stable_uuid,
    unsupported,
)
from services.platforms.feishu.ids import chat_of, open_id_of

PLATFORM = "feishu"
DEFAULT_BASE = "https://open.feishu.cn"
TOKEN_PATH = "/open-apis/auth/v3/tenant_access_token/internal"
RATE_LIMITED = 99991400
TOKEN_INVALID = frozenset({99991661, 99991663, 99991668})
FORBIDDEN_CODES = frozenset(
    {
        99991672,  # the app lacks the scope the API needs
        99991679,  # the user has not granted the scope
        230002,  # the bot is not in the chat
        230027,  # lack of necessary permissions
        10003,  # invalid app_id / app_secret when fetching the token
        10014,  # app secret invalid
    }
)
REFRESH_MARGIN = 300.0  # seconds before `expire` at which a cached token is replaced
NO_MUTE = "Feishu has no timed mute for a chat member"
NO_BAN = "Feishu has no ban: removed from the chat (DELETE …/chats/{chat_id}/members)"


def escape(text: str) -> str:
    """Keep literal text from being read as an `<at>` tag."""
    return re.sub(r"<(/?at\b)", r"&lt;\1", text)


def render(text: str, mentions: tuple[Mention, ...]) -> str:
    """The post's text with each `@name` as `<at user_id="ou_…">name</at>`."""
    return render_mentions(
        text,
        mentions,
        render=lambda m: f'<at user_id="{open_id_of(m.member_id)}">{m.label[1:]}</at>',
        escape=escape,
    )


def message_uuid(record_id: str) -> str:
    """Feishu's de-duplication key for a post: a stable digest of the record id (≤ 50)."""
    return stable_uuid(record_id, 40)


def classify(response: httpx.Response) -> CallResult:
    """Map an Open Platform answer to an outcome."""
    body = json_body(response)
    code = body.get("code")
    msg = str(body.get("msg") or f"HTTP {response.status_code}")
    if response.status_code == 429 or code == RATE_LIMITED:
        return rate_limited(f"{code}: {msg}", response.headers.get("x-ogw-ratelimit-reset"))
    if response.status_code >= 500:
        return server_error(response)
    if response.status_code == 200 and code == 0:
        data = body.get("data") if isinstance(body.get("data"), dict) else {}
        message_id = data.get("message_id") if data else None
        return delivered(message_id=str(message_id) if message_id else None)
    if code in FORBIDDEN_CODES or response.status_code in (401, 403):
        return forbidden(f"{code}: {msg}")
    return failed(f"{code}: {msg}")


class FeishuClient(HttpClient):
    """Carries out operations as one custom app's bot."""

    platform = PLATFORM
    needs = ("app_id", "app_secret")

    def __init__(
        self,
        credentials: OutboundCredentials,
        http: httpx.AsyncClient,
        *,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        refresh_margin: float = REFRESH_MARGIN,
    ) -> None:
        super().__init__(credentials, http, timeout=timeout)
        self._root = base_url(credentials.api_base, DEFAULT_BASE)
        self._app = {"app_id": credentials.app_id, "app_secret": credentials.app_secret}
        self._margin = refresh_margin
        self._token: str | None = None
        self._refresh_at = 0.0
        self._lock = asyncio.Lock()

    async def token(self) -> str | CallResult:
        """The cached tenant_access_token, fetched again shortly before it expires."""
        async with self._lock:
            if self._token and time.monotonic() < self._refresh_at:
                return self._token
            answer = await self.request("POST", self._root + TOKEN_PATH, json=self._app)
            if isinstance(answer, CallResult):
                return answer
            body = json_body(answer)
            token, expire = body.get("tenant_access_token"), body.get("expire")
            if answer.status_code != 200 or body.get("code") != 0 or not token:
                result = classify(answer)
                if result.outcome == "delivered":
                    return failed("tenant_access_token: no token in the answer")
                return result
            lifetime = float(expire) if isinstance(expire, int | float) else 7200.0
            self._token = str(token)
            self._refresh_at = time.monotonic() + lifetime - min(self._margin, lifetime / 10)
            return self._token

    def forget_token(self) -> None:
        """Drop the cached token (the platform said it is no longer valid)."""
        self._token = None

    async def call(self, method: str, path: str, **kwargs: Any) -> CallResult:
        """Call one Open Platform API with the tenant token, refreshing it once if rejected."""
        for _ in range(2):
            token = await self.token()
            if isinstance(token, CallResult):
                return token
            headers = {"Authorization": f"Bearer {token}"}
            answer = await self.request(method, self._root + path, headers=headers, **kwargs)
            if isinstance(answer, CallResult):
                return answer
            if json_body(answer).get("code") not in TOKEN_INVALID:
                return classify(answer)
            self.forget_token()
        return forbidden("tenant_access_token rejected twice")

    async def carry_out(self, op: OperationRequest) -> CallResult:
        """Make the Open Platform calls for `op`."""
        chat = chat_of(op.group_id)
        if op.operation == "post":
            return await self.post(chat, op)
        if op.operation == "delete":
            return await self.call(
                "DELETE", f"/open-apis/im/v1/messages/{required(op.message_id, 'message_id')}"
            )
        if op.operation in ("kick", "ban"):
            result = await self.call(
                "DELETE",
                f"/open-apis/im/v1/chats/{chat}/members",
                params={"member_id_type": "open_id"},
                json={"id_list": [open_id_of(op.member_id)]},
            )
            if op.operation == "ban" and result.outcome == "delivered":
                return delivered(NO_BAN)
            return result
        if op.operation in ("mute", "unmute"):
            return unsupported(NO_MUTE)
        if op.operation == "unban":
            return unsupported("Feishu has no ban to lift (a removed member may be added back)")
        return unsupported("Feishu has no join-request API for chats")

    async def post(self, chat: str, op: OperationRequest) -> CallResult:
        """Send a text message (a reply when asked), de-duplicated by `uuid`."""
        body = {
            "msg_type": "text",
            "content": json.dumps({"text": render(op.text or "", op.mentions)}, ensure_ascii=False),
            "uuid": message_uuid(op.record_id),
        }
        if op.reply_to:
            return await self.call(
                "POST", f"/open-apis/im/v1/messages/{op.reply_to}/reply", json=body
            )
        return await self.call(
            "POST",
            "/open-apis/im/v1/messages",
            params={"receive_id_type": "chat_id"},
            json={"receive_id": chat, **body},
        )
