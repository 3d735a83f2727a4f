"""OneBot v11 HTTP API (NapCat, Lagrange.OneBot, go-cqhttp): the calls delivery makes in a QQ group.

https://github.com/botuniverse/onebot-11 (api/public.md, communication/http.md) — every
action is `POST {api_url}/{action}` with a JSON body and `Authorization: Bearer
{access_token}`; answers `{"status": "ok"|"async"|"failed", "retcode", "data"}`; HTTP 401
(no token), 403 (wrong token), 404 (no such action). The implementations differ on the last
two: NapCat answers any token refusal 403; an action an implementation lacks is HTTP 200
`failed` with retcode 404 from go-cqhttp and Lagrange.OneBot, with retcode 200 and
`不支持的Api <action>` from NapCat — all `unsupported`, like the spec's 404.
"""

from __future__ import annotations

from typing import Any

import httpx

from services.platforms.base import (
    CallResult,
    HttpClient,
    Mention,
    OperationRequest,
    delivered,
    failed,
    forbidden,
    int_id,
    json_body,
    rate_limited,
    render_mentions,
    required,
    server_error,
    unsupported,
    with_base,
)
from services.platforms.onebot.ids import group_of, user_of

PLATFORM = "onebot"
MAX_MUTE_SECONDS = 30 * 24 * 3600  # QQ's longest mute; a mute without a duration gets it
# The spec's WebSocket forms of HTTP 401 / 403 (communication/ws.md), which a gateway relaying
# a WebSocket API answers over HTTP.
FORBIDDEN_RETCODES = frozenset({1401, 1403})
# No such action: go-cqhttp's and Lagrange.OneBot's retcode over HTTP; the spec's WebSocket form.
MISSING_ACTION_RETCODES = frozenset({404, 1404})
MISSING_ACTION_WORDS = "不支持的Api"  # NapCat's (retcode 200, like any error it caught)
RIGHTS_WORDS = ("权限", "管理员", "permission", "not admin", "no access")


def escape(text: str) -> str:
    """Escape plain text so no part of it is read as a CQ code."""
    return text.replace("&", "&amp;").replace("[", "&#91;").replace("]", "&#93;")


def render(text: str, mentions: tuple[Mention, ...], reply_to: str | None) -> str:
    """The CQ-coded message: `[CQ:reply,id=…]` first, each `@name` as `[CQ:at,qq=…]`."""
    body = render_mentions(
        text, mentions, render=lambda m: f"[CQ:at,qq={user_of(m.member_id)}]", escape=escape
    )
    return f"[CQ:reply,id={int_id(reply_to, 'reply_to')}]{body}" if reply_to else body


def classify(response: httpx.Response, action: str) -> CallResult:
    """Map a OneBot answer to an outcome."""
    if response.status_code in (401, 403):
        return forbidden(f"HTTP {response.status_code}: the access_token was refused")
    if response.status_code == 404:
        return unsupported(f"this OneBot implementation has no action {action}")
    if response.status_code == 429:
        return rate_limited("HTTP 429", response.headers.get("Retry-After"))
    if response.status_code >= 500:
        return server_error(response)
    body = json_body(response)
    status = body.get("status")
    if response.status_code == 200 and status in ("ok", "async"):
        data = body.get("data")
        message_id = data.get("message_id") if isinstance(data, dict) else None
        return delivered(message_id=str(message_id) if message_id is not None else None)
    retcode = body.get("retcode")
    words = str(body.get("wording") or body.get("message") or body.get("msg") or "")
    detail = f"{action}: retcode {retcode}" + (f" ({words})" if words else "")
    if retcode in MISSING_ACTION_RETCODES or words.startswith(MISSING_ACTION_WORDS):
        return unsupported(f"this OneBot implementation has no action {action} ({detail})")
    if retcode in FORBIDDEN_RETCODES or any(w in words.lower() for w in RIGHTS_WORDS):
        return forbidden(detail)
    return failed(detail)


class OneBotClient(HttpClient):
    """Carries out operations through one QQ bot's OneBot v11 HTTP API."""

    platform = PLATFORM
    needs = ("api_url",)

    @property
    def root(self) -> str:
        """`api_url`, its scheme and host replaced by `api_base` when set."""
        return with_base(self.credentials.api_url or "", self.credentials.api_base)

    async def call(self, action: str, params: dict[str, Any]) -> CallResult:
        """Call one OneBot action."""
        token = self.credentials.access_token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        answer = await self.request("POST", f"{self.root}/{action}", json=params, headers=headers)
        return answer if isinstance(answer, CallResult) else classify(answer, action)

    async def carry_out(self, op: OperationRequest) -> CallResult:
        """Make the OneBot actions for `op`."""
        if op.operation in ("approve_join", "decline_join"):
            flag = required(op.request_ref, "request_ref (the request's flag)")
            approve = op.operation == "approve_join"
            params = {"flag": flag, "sub_type": "add", "type": "add", "approve": approve}
            return await self.call("set_group_add_request", params)
        group = group_of(op.group_id)
        if op.operation == "post":
            message = render(op.text or "", op.mentions, op.reply_to)
            return await self.call(
                "send_group_msg", {"group_id": group, "message": message, "auto_escape": False}
            )
        if op.operation == "delete":
            message_id = int_id(required(op.message_id, "message_id"), "message id")
            return await self.call("delete_msg", {"message_id": message_id})
        if op.operation == "unban":
            return unsupported(
                "OneBot v11 has no unban: set_group_kick's reject_add_request cannot be undone"
            )
        member = {"group_id": group, "user_id": user_of(op.member_id)}
        if op.operation in ("mute", "unmute"):
            duration = 0 if op.operation == "unmute" else op.duration_seconds or MAX_MUTE_SECONDS
            duration = min(duration, MAX_MUTE_SECONDS)
            return await self.call("set_group_ban", {**member, "duration": duration})
        if op.operation in ("kick", "ban"):
            reject = op.operation == "ban"
            return await self.call("set_group_kick", {**member, "reject_add_request": reject})
        return unsupported(f"onebot has no call for {op.operation}")
