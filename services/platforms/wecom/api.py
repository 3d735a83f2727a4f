"""WeCom server API (qyapi.weixin.qq.com): the access token and the JSON calls both sides make.

https://developer.work.weixin.qq.com/document/path/91039 — `GET /cgi-bin/gettoken?corpid&
corpsecret` answers `{"errcode": 0, "access_token", "expires_in": 7200}`, the same token
until it expires (so two replicas fetching at once is harmless). Every other call carries
`?access_token=` and answers `{"errcode", "errmsg", …}`, errcode 0 meaning success
(https://developer.work.weixin.qq.com/document/path/90313 lists the codes). Ingest uses this
for `groupchat/get` (joins' inviter and join way), delivery for `add_msg_template`.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

import httpx

from services.platforms.base import (
    DEFAULT_TIMEOUT,
    CallResult,
    base_url,
    delivered,
    failed,
    forbidden,
    json_body,
    rate_limited,
    send,
    server_error,
)

DEFAULT_BASE = "https://qyapi.weixin.qq.com"
TOKEN_PATH = "/cgi-bin/gettoken"
TOKEN_INVALID = frozenset({40014, 42001})  # invalid access_token; access_token expired
RATE_LIMITED = frozenset({45009, 45033})  # API frequency; API concurrency
SYSTEM_BUSY = -1
FORBIDDEN_CODES = {
    40001: "invalid secret: check app_secret",
    40013: "invalid corp id: check app_id",
    48002: "API forbidden: give the app 客户联系 permission (可调用应用)",
    60011: "no privilege: the group owner or sender is outside the app's visible range",
    60020: "this server's IP is not in the app's trusted IPs (企业可信IP)",
}
# WeCom's limits are per minute and per hour (10,000 calls a minute per API) with no hint.
RATE_LIMIT_WAIT = 60.0
REFRESH_MARGIN = 300.0  # seconds before `expires_in` at which a cached token is replaced

# (api root, corp id, digest of the secret) → (token, monotonic time to fetch a new one).
# Shared by every client of the process: ingest builds one per callback.
_TOKENS: dict[tuple[str, str, str], tuple[str, float]] = {}


def describe(body: dict[str, Any], response: httpx.Response) -> str:
    """`errcode: errmsg` of an answer (or its HTTP status)."""
    code = body.get("errcode")
    return (
        f"{code}: {body.get('errmsg') or ''}".strip()
        if code is not None
        else (f"HTTP {response.status_code}")
    )


def classify(response: httpx.Response) -> CallResult:
    """Map a WeCom answer to an outcome."""
    body = json_body(response)
    code = body.get("errcode")
    if response.status_code == 429 or code in RATE_LIMITED:
        return rate_limited(describe(body, response), None, RATE_LIMIT_WAIT)
    if response.status_code >= 500:
        return server_error(response)
    if code == SYSTEM_BUSY:
        return failed(f"{describe(body, response)} (system busy)", retryable=True)
    if response.status_code == 200 and code == 0:
        msgid = body.get("msgid")
        return delivered(message_id=str(msgid) if msgid else None)
    if isinstance(code, int) and code in FORBIDDEN_CODES:
        return forbidden(f"{describe(body, response)} — {FORBIDDEN_CODES[code]}")
    if response.status_code in (401, 403):
        return forbidden(describe(body, response))
    return failed(describe(body, response))


class WeComApi:
    """Calls to one corp's API as one app (corp id + the app's secret), token cached."""

    def __init__(
        self,
        *,
        corp_id: str,
        secret: str,
        http: httpx.AsyncClient,
        api_base: str | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        refresh_margin: float = REFRESH_MARGIN,
    ) -> None:
        self.root = base_url(api_base, DEFAULT_BASE)
        self._corp_id = corp_id
        self._secret = secret
        self._http = http
        self._timeout = timeout
        self._margin = refresh_margin
        digest = hashlib.sha256(secret.encode()).hexdigest()
        self._cache_key = (self.root, corp_id, digest)

    async def token(self) -> str | CallResult:
        """The cached access_token, fetched again shortly before it expires."""
        cached = _TOKENS.get(self._cache_key)
        if cached and time.monotonic() < cached[1]:
            return cached[0]
        params = {"corpid": self._corp_id, "corpsecret": self._secret}
        answer = await send(
            self._http, "GET", self.root + TOKEN_PATH, limits=self._timeout, params=params
        )
        if isinstance(answer, CallResult):
            return answer
        body = json_body(answer)
        token, expires = body.get("access_token"), body.get("expires_in")
        if answer.status_code != 200 or body.get("errcode", 0) != 0 or not token:
            result = classify(answer)
            return (
                failed("gettoken: no token in the answer")
                if result.outcome == "delivered"
                else (result)
            )
        lifetime = float(expires) if isinstance(expires, int | float) else 7200.0
        refresh_at = time.monotonic() + lifetime - min(self._margin, lifetime / 10)
        _TOKENS[self._cache_key] = (str(token), refresh_at)
        return str(token)

    def forget_token(self) -> None:
        """Drop the cached token (WeCom said it is invalid or expired)."""
        _TOKENS.pop(self._cache_key, None)

    async def call(self, path: str, body: dict[str, Any]) -> dict[str, Any] | CallResult:
        """POST one JSON call; the answer on errcode 0, else its outcome.

        A token WeCom calls invalid or expired (40014, 42001) is fetched again and the call
        made once more.
        """
        for _ in range(2):
            token = await self.token()
            if isinstance(token, CallResult):
                return token
            answer = await send(
                self._http,
                "POST",
                self.root + path,
                limits=self._timeout,
                params={"access_token": token},
                json=body,
            )
            if isinstance(answer, CallResult):
                return answer
            data = json_body(answer)
            if data.get("errcode") in TOKEN_INVALID:
                self.forget_token()
                continue
            result = classify(answer)
            return data if result.outcome == "delivered" else result
        return forbidden("access_token rejected twice: check app_id and app_secret")
