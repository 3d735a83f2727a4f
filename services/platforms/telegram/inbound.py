"""Telegram Bot API webhook updates: group messages, chat_member changes (joins and leaves),
join requests.

A join or leave reaches a bot twice, as a `new_chat_members`/`left_chat_member` service
message and as a `chat_member` update, under different update ids. Only `chat_member` is
mapped: it names the invite link and approvals, and is sent even where join messages are
hidden; the service messages are acknowledged and ignored, so a join counts once.

Formats: https://core.telegram.org/bots/api#update, #message, #chatmemberupdated,
#chatjoinrequest, #chatinvitelink, #setwebhook
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.common.settings import Source
from services.platforms.inbound import (
    Adapted,
    Loc,
    Unauthenticated,
    from_unix,
    optional,
    parse_object,
    require,
)
from services.platforms.signing import header, same
from services.platforms.telegram import ids

_GROUP_CHATS = {"group", "supergroup"}
# Message fields that carry content, in the order that decides the canonical kind.
_CONTENT_KINDS = (
    ("photo", "image"),
    ("sticker", "sticker"),
    ("video", "video"),
    ("video_note", "video"),
    ("animation", "video"),
    ("voice", "voice"),
    ("audio", "voice"),
    ("document", "file"),
)
_OTHER_CONTENT = ("contact", "location", "venue", "poll", "dice", "game", "story")
_MEMBER_STATUSES = {"creator", "administrator", "member"}
# Service messages announcing what a chat_member update also says (mapped from that one).
_MEMBERSHIP_SERVICE_FIELDS = ("new_chat_members", "left_chat_member")


def verify_telegram(*, secret: str, headers: Mapping[str, str]) -> None:
    """Check X-Telegram-Bot-Api-Secret-Token (Telegram sends no timestamp or signature)."""
    if not same(secret, header(headers, "x-telegram-bot-api-secret-token")):
        raise Unauthenticated("secret token does not match")


def _name(user: dict[str, Any]) -> str | None:
    parts = [user.get("first_name"), user.get("last_name")]
    name = " ".join(p for p in parts if isinstance(p, str) and p)
    return name or None


def _attachment(kind: str, value: Any) -> dict[str, Any]:
    # A photo is a list of sizes; the last is the largest.
    item = value[-1] if isinstance(value, list) and value else value
    item = item if isinstance(item, dict) else {}
    return {"kind": kind, "name": item.get("file_name") or item.get("file_unique_id")}


def _message(update: dict[str, Any], update_id: int, loc: Loc) -> dict[str, Any] | None:
    message = update["message"]
    if optional(update, *loc, "chat", "type") not in _GROUP_CHATS:
        return None  # a private chat
    if any(field in message for field in _MEMBERSHIP_SERVICE_FIELDS):
        return None  # the join or leave is mapped from its chat_member update
    chat_id = require(update, *loc, "chat", "id", kind=int)
    user_id = require(update, *loc, "from", "id", kind=int)
    date = require(update, *loc, "date", kind=int)
    message_id = require(update, *loc, "message_id", kind=int)
    text = message.get("text") or message.get("caption") or ""
    entities = message.get("entities") or message.get("caption_entities") or []
    entities = [e for e in entities if isinstance(e, dict)] if isinstance(entities, list) else []
    kind, attachments = "text", []
    for field, field_kind in _CONTENT_KINDS:
        if field in message:
            kind = field_kind
            attachments = [_attachment(field_kind, message[field])]
            break
    else:
        if any(field in message for field in _OTHER_CONTENT):
            kind = "other"
        elif any(e.get("type") in ("url", "text_link") for e in entities):
            kind = "link"
        elif not isinstance(text, str) or not text:
            return None  # a service message (title change, pin…): nothing a member said
    mentions = [
        ids.member_id(e["user"]["id"])
        for e in entities
        if e.get("type") == "text_mention" and isinstance(optional(e, "user", "id"), int)
    ]
    reply_to = optional(message, "reply_to_message", "message_id")
    return {
        "id": str(update_id),
        "type": "message.created",
        "group_id": ids.group_id(chat_id),
        "member_id": ids.member_id(user_id),
        "occurred_at": from_unix(date, (*loc, "date")),
        "data": {
            "message_id": str(message_id),
            "text": text if isinstance(text, str) else "",
            "kind": kind,
            "mentions": list(dict.fromkeys(mentions)),
            "reply_to": str(reply_to) if isinstance(reply_to, int) else None,
            "display_name": _name(message["from"]),
            "attachments": attachments,
        },
    }


def _is_member(member: Any) -> bool:
    if not isinstance(member, dict):
        return False
    status = member.get("status")
    return status in _MEMBER_STATUSES or (
        status == "restricted" and member.get("is_member") is True
    )


def _channel(change: dict[str, Any]) -> str | None:
    """The name the admins gave the invite link the member came through, if any."""
    name = optional(change, "invite_link", "name")
    return name if isinstance(name, str) and name else None


def _join_method(change: dict[str, Any], *, actor: int, user_id: int) -> str:
    """How the member came in: approved, added by someone else, or by a link themselves."""
    # A link that creates join requests lets nobody in unapproved; via_join_request covers
    # requests sent without a link.
    approval_link = optional(change, "invite_link", "creates_join_request") is True
    if approval_link or change.get("via_join_request") is True:
        return "approval"
    return "invite" if actor != user_id else "link"


def _chat_member(update: dict[str, Any], update_id: int, adapted: Adapted) -> None:
    loc: Loc = ("chat_member",)
    change = update["chat_member"]
    chat_id = require(update, *loc, "chat", "id", kind=int)
    actor = require(update, *loc, "from", "id", kind=int)
    user_id = require(update, *loc, "new_chat_member", "user", "id", kind=int)
    occurred = from_unix(require(update, *loc, "date", kind=int), (*loc, "date"))
    was, now_member = (
        _is_member(change.get("old_chat_member")),
        _is_member(change.get("new_chat_member")),
    )
    base = {
        "id": f"{update_id}:{user_id}",
        "group_id": ids.group_id(chat_id),
        "member_id": ids.member_id(user_id),
        "occurred_at": occurred,
    }
    if optional(change, "new_chat_member", "user", "is_bot") is True:
        adapted.ignored += 1  # other bots coming and going are no members to count
    elif not was and now_member:
        method = _join_method(change, actor=actor, user_id=user_id)
        data = {
            "display_name": _name(change["new_chat_member"]["user"]),
            "invited_by": ids.member_id(actor) if method == "invite" else None,
            "method": method,
            "channel": _channel(change),
        }
        adapted.add({**base, "type": "member.joined", "data": data})
    elif was and not now_member:
        removed = actor != user_id or optional(change, "new_chat_member", "status") == "kicked"
        data = {
            "reason": "removed" if removed else "left",
            "by": ids.member_id(actor) if removed else None,
        }
        adapted.add({**base, "type": "member.left", "data": data})
    else:
        adapted.ignored += 1  # promoted, muted, banned while away…: no join or leave


def _join_request(update: dict[str, Any], update_id: int, adapted: Adapted) -> None:
    loc: Loc = ("chat_join_request",)
    request = update["chat_join_request"]
    chat_id = require(update, *loc, "chat", "id", kind=int)
    user_id = require(update, *loc, "from", "id", kind=int)
    bio = request.get("bio")
    adapted.add(
        {
            "id": f"{update_id}:{user_id}",
            "type": "member.join_requested",
            "group_id": ids.group_id(chat_id),
            "member_id": ids.member_id(user_id),
            "occurred_at": from_unix(require(update, *loc, "date", kind=int), (*loc, "date")),
            "data": {
                "display_name": _name(request["from"]),
                "answer": bio if isinstance(bio, str) else "",
                "request_ref": ids.join_request_ref(chat_id, user_id),
                "channel": _channel(request),
            },
        }
    )


def adapt(*, source: Source, headers: Mapping[str, str], body: bytes, now: float) -> Adapted:
    """Check the secret token and map one Update."""
    verify_telegram(secret=source.secret, headers=headers)
    update = parse_object(body)
    update_id = require(update, "update_id", kind=int)
    adapted = Adapted()
    if isinstance(update.get("message"), dict):
        raw = _message(update, update_id, ("message",))
        if raw is None:
            adapted.ignored = 1
        else:
            adapted.add(raw)
    elif isinstance(update.get("chat_member"), dict):
        if optional(update, "chat_member", "chat", "type") in _GROUP_CHATS:
            _chat_member(update, update_id, adapted)
        else:
            adapted.ignored = 1
    elif isinstance(update.get("chat_join_request"), dict):
        if optional(update, "chat_join_request", "chat", "type") in _GROUP_CHATS:
            _join_request(update, update_id, adapted)
        else:
            adapted.ignored = 1  # a request to join a channel: not a group
    else:
        # edited_message, channel_post, my_chat_member, callback_query…: no member activity.
        adapted.ignored = 1
    return adapted
