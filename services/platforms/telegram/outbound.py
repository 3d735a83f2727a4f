"""Telegram Bot API: the calls delivery makes in a group, and how their answers map.

https://core.telegram.org/bots/api — every method is `POST {base}/bot{token}/{method}` with
a JSON body, answering `{"ok", "result"}` or `{"ok": false, "error_code", "description",
"parameters": {"retry_after"}}`.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
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
    int_id,
    json_body,
    rate_limited,
    required,
    server_error,
    unsupported,
)
from services.platforms.telegram.ids import chat_id, join_request, user_id

PLATFORM = "telegram"
DEFAULT_BASE = "https://api.telegram.org"
DELETE_WINDOW = timedelta(hours=48)
MIN_RESTRICT_SECONDS = 30  # shorter (or over 366 days) restrictions are forever in Telegram
PERMISSIONS = (
    "can_send_messages",
    "can_send_audios",
    "can_send_documents",
    "can_send_photos",
    "can_send_videos",
    "can_send_video_notes",
    "can_send_voice_notes",
    "can_send_polls",
    "can_send_other_messages",
    "can_add_web_page_previews",
    "can_change_info",
    "can_invite_users",
    "can_pin_messages",
    "can_manage_topics",
    "can_react_to_messages",
    "can_edit_tag",
)
RIGHTS_ERRORS = (
    "not enough rights",
    "have no rights",
    "chat_admin_required",
    "user is an administrator",
    "can't remove chat owner",
    "can't restrict self",
    "message can't be deleted",
)
ALREADY_DONE = ("message to delete not found", "hide_requester_missing", "user_already_participant")


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit of Telegram entity offsets."""
    return len(text.encode("utf-16-le")) // 2


def mention_entities(text: str, mentions: tuple[Mention, ...]) -> tuple[str, list[dict]]:
    """Turn each `@name` into a `text_mention` entity (appending labels not in the text)."""
    entities: list[dict[str, Any]] = []
    taken: list[tuple[int, int]] = []
    for mention in mentions:
        label = mention.label
        start = _free_index(text, label, taken)
        if start < 0:
            text = f"{text} {label}" if text else label
            start = len(text) - len(label)
        taken.append((start, start + len(label)))
        entities.append(
            {
                "type": "text_mention",
                "offset": utf16_len(text[:start]),
                "length": utf16_len(label),
                "user": {
                    "id": user_id(mention.member_id),
                    "is_bot": False,
                    "first_name": mention.display_name or label[1:],
                },
            }
        )
    entities.sort(key=lambda e: e["offset"])
    return text, entities


def _free_index(text: str, label: str, taken: list[tuple[int, int]]) -> int:
    start = text.find(label)
    while start >= 0 and any(a < start + len(label) and start < b for a, b in taken):
        start = text.find(label, start + 1)
    return start


def classify(response: httpx.Response) -> CallResult:
    """Map a Bot API answer to an outcome."""
    body = json_body(response)
    if response.status_code == 200 and body.get("ok") is True:
        result = body.get("result")
        message_id = result.get("message_id") if isinstance(result, dict) else None
        return delivered(message_id=str(message_id) if message_id is not None else None)
    description = str(body.get("description") or f"HTTP {response.status_code}")
    lowered = description.lower()
    if response.status_code == 429:
        parameters = body.get("parameters") or {}
        hint = parameters.get("retry_after") if isinstance(parameters, dict) else None
        return rate_limited(description, hint)
    if response.status_code >= 500:
        return server_error(response)
    if response.status_code in (401, 403) or any(e in lowered for e in RIGHTS_ERRORS):
        return forbidden(description)
    if any(e in lowered for e in ALREADY_DONE):
        return delivered(f"already done: {description}")
    return failed(description)


class TelegramClient(HttpClient):
    """Carries out operations through one bot's token."""

    platform = PLATFORM
    needs = ("bot_token",)

    @property
    def root(self) -> str:
        """The Bot API root of this bot: `{base}/bot{token}`."""
        base = base_url(self.credentials.api_base, DEFAULT_BASE)
        return f"{base}/bot{self.credentials.bot_token}"

    async def call(self, method: str, payload: dict[str, Any]) -> CallResult:
        """Call one Bot API method."""
        answer = await self.request("POST", f"{self.root}/{method}", json=payload)
        return answer if isinstance(answer, CallResult) else classify(answer)

    async def carry_out(self, op: OperationRequest) -> CallResult:
        """Make the Bot API calls for `op`."""
        if op.operation in ("approve_join", "decline_join"):
            chat, user = join_request(op.request_ref)
            method = (
                "approveChatJoinRequest"
                if op.operation == "approve_join"
                else "declineChatJoinRequest"
            )
            return await self.call(method, {"chat_id": chat, "user_id": user})
        chat = chat_id(op.group_id)
        if op.operation == "post":
            return await self.post(chat, op)
        if op.operation == "delete":
            return await self.delete(chat, op)
        member = {"chat_id": chat, "user_id": user_id(op.member_id)}
        if op.operation == "mute":
            return await self.call("restrictChatMember", {**member, **_mute(op.duration_seconds)})
        if op.operation == "unmute":
            permissions = dict.fromkeys(PERMISSIONS, True)
            return await self.call("restrictChatMember", {**member, "permissions": permissions})
        if op.operation == "ban":
            return await self.call("banChatMember", member)
        if op.operation == "unban":
            return await self.call("unbanChatMember", {**member, "only_if_banned": True})
        if op.operation == "kick":
            banned = await self.call("banChatMember", member)
            if banned.outcome != "delivered":
                return banned
            return await self.call("unbanChatMember", {**member, "only_if_banned": True})
        return unsupported(f"telegram has no call for {op.operation}")

    async def delete(self, chat: int, op: OperationRequest) -> CallResult:
        """deleteMessage, unless the message is past Telegram's 48-hour window."""
        if op.message_at is not None:
            at = op.message_at if op.message_at.tzinfo else op.message_at.replace(tzinfo=UTC)
            if datetime.now(UTC) - at > DELETE_WINDOW:
                return CallResult("expired", "Telegram bots delete messages up to 48 h old")
        message = int_id(required(op.message_id, "message_id"), "message id")
        return await self.call("deleteMessage", {"chat_id": chat, "message_id": message})

    async def post(self, chat: int, op: OperationRequest) -> CallResult:
        """sendMessage, as a reply when asked, with mentions as text_mention entities."""
        text, entities = mention_entities(op.text or "", op.mentions)
        payload: dict[str, Any] = {"chat_id": chat, "text": text}
        if entities:
            payload["entities"] = entities
        if op.reply_to:
            payload["reply_parameters"] = {
                "message_id": int_id(op.reply_to, "reply_to"),
                "allow_sending_without_reply": True,
            }
        return await self.call("sendMessage", payload)


def _mute(duration: int | None) -> dict[str, Any]:
    muted: dict[str, Any] = {"permissions": dict.fromkeys(PERMISSIONS, False)}
    if duration:
        muted["until_date"] = int(time.time()) + max(duration, MIN_RESTRICT_SECONDS)
    return muted
