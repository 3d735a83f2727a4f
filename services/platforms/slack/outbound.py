"""Slack Web API: the calls delivery makes in a channel, and how their answers map.

https://api.slack.com/web — `POST {base}/api/{method}` with a JSON body and the token as
`Authorization: Bearer`; answers `{"ok": true, …}` or `{"ok": false, "error": "<code>"}`
(HTTP 200), and HTTP 429 with `Retry-After` when rate limited.
"""

from __future__ import annotations

from typing import Any

import httpx

from services.platforms.base import (
    CallResult,
    HttpClient,
    Mention,
    OperationRequest,
    base_url,
    delivered,
    failed,
    forbidden,
    json_body,
    rate_limited,
    render_mentions,
    required,
    server_error,
    unsupported,
)
from services.platforms.slack.ids import channel_of, user_of

PLATFORM = "slack"
DEFAULT_BASE = "https://slack.com"
FORBIDDEN_ERRORS = frozenset(
    {
        "not_in_channel",
        "missing_scope",
        "not_authed",
        "invalid_auth",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "no_permission",
        "not_allowed_token_type",
        "cant_kick_self",
        "cant_kick_from_general",
        "restricted_action",
        "cant_delete_message",
        "ekm_access_denied",
        "access_denied",
    }
)
RETRYABLE_ERRORS = frozenset(
    {"internal_error", "fatal_error", "service_unavailable", "request_timeout", "ratelimited"}
)
# For these methods the error means the effect is already there (a retry after an unknown
# outcome): conversations.kick's not_in_channel is "User was not in the channel".
ALREADY_DONE = {
    "chat.delete": frozenset({"message_not_found"}),
    "conversations.kick": frozenset({"not_in_channel"}),
}
NO_MUTE = "Slack has no mute: no Web API call restricts a member's posting"
NO_BAN = "Slack has no ban: removed from the channel with conversations.kick"
NO_JOIN_REQUESTS = "Slack has no join requests to approve or decline"


def escape(text: str) -> str:
    """Escape the three characters Slack's mrkdwn treats as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render(text: str, mentions: tuple[Mention, ...]) -> str:
    """The post's text with each `@name` as `<@USER>`."""
    return render_mentions(
        text, mentions, render=lambda m: f"<@{user_of(m.member_id)}>", escape=escape
    )


def classify(response: httpx.Response, method: str) -> CallResult:
    """Map a Web API answer to an outcome."""
    body = json_body(response)
    if response.status_code == 429:
        return rate_limited("ratelimited", response.headers.get("Retry-After"))
    if response.status_code >= 500:
        return server_error(response)
    if response.status_code in (401, 403):
        return forbidden(f"HTTP {response.status_code}")
    if response.status_code == 200 and body.get("ok") is True:
        ts = body.get("ts")
        return delivered(message_id=str(ts) if ts else None)
    error = str(body.get("error") or f"HTTP {response.status_code}")
    if error in ALREADY_DONE.get(method, ()):
        return delivered(f"already done: {error}")
    if error in FORBIDDEN_ERRORS:
        return forbidden(f"{method}: {error}")
    return failed(f"{method}: {error}", retryable=error in RETRYABLE_ERRORS)


class SlackClient(HttpClient):
    """Carries out operations through a workspace's bot token (and an admin's user token)."""

    platform = PLATFORM
    needs = ("bot_token",)

    @property
    def root(self) -> str:
        """The Web API root: `{base}/api`."""
        return f"{base_url(self.credentials.api_base, DEFAULT_BASE)}/api"

    @property
    def bot_token(self) -> str:
        """The xoxb- token: posts, kicks."""
        return self.credentials.bot_token or ""

    @property
    def user_token(self) -> str | None:
        """An admin's xoxp- token: deleting members' messages."""
        return self.credentials.user_token

    async def call(self, method: str, payload: dict[str, Any], token: str) -> CallResult:
        """Call one Web API method with a token."""
        headers = {"Authorization": f"Bearer {token}"}
        answer = await self.request("POST", f"{self.root}/{method}", json=payload, headers=headers)
        return answer if isinstance(answer, CallResult) else classify(answer, method)

    async def carry_out(self, op: OperationRequest) -> CallResult:
        """Make the Web API calls for `op`."""
        channel = channel_of(op.group_id)
        if op.operation == "post":
            payload: dict[str, Any] = {
                "channel": channel,
                "text": render(op.text or "", op.mentions),
            }
            if op.reply_to:
                payload["thread_ts"] = op.reply_to
            return await self.call("chat.postMessage", payload, self.bot_token)
        if op.operation == "delete":
            if not self.user_token:
                return unsupported(
                    "chat.delete needs the source's user_token (an admin's xoxp- token): "
                    "a bot token deletes only the bot's own messages"
                )
            payload = {"channel": channel, "ts": required(op.message_id, "message_id")}
            return await self.call("chat.delete", payload, self.user_token)
        if op.operation in ("kick", "ban"):
            payload = {"channel": channel, "user": user_of(op.member_id)}
            result = await self.call("conversations.kick", payload, self.bot_token)
            if op.operation == "ban" and result.outcome == "delivered":
                return delivered(NO_BAN)
            return result
        if op.operation in ("mute", "unmute"):
            return unsupported(NO_MUTE)
        if op.operation == "unban":
            return unsupported("Slack has no ban to lift (a removed member may be invited back)")
        return unsupported(NO_JOIN_REQUESTS)
