"""Telegram ids in qunyun: `telegram:CHAT_ID` groups, `telegram:USER_ID` members.

Inbound formats them from an Update's numeric ids; outbound parses them back for the
Bot API. A join request is addressed by the handle `CHAT_ID:USER_ID`.
"""

from __future__ import annotations

from services.platforms.base import InvalidTarget, int_id, split_id

PREFIX = "telegram"


def group_id(chat: int) -> str:
    """A chat id → `telegram:CHAT_ID`."""
    return f"telegram:{chat}"


def member_id(user: int) -> str:
    """A user id → `telegram:USER_ID`."""
    return f"telegram:{user}"


def chat_id(group_id: str) -> int:
    """`telegram:CHAT_ID` → the chat id."""
    return int_id(split_id(group_id, PREFIX, 1, "group")[0], "chat id")


def user_id(member_id: str | None) -> int:
    """`telegram:USER_ID` → the user id."""
    return int_id(split_id(member_id, PREFIX, 1, "member")[0], "user id")


def join_request_ref(chat: int, user: int) -> str:
    """A join request's handle: `CHAT_ID:USER_ID`."""
    return f"{chat}:{user}"


def join_request(ref: str | None) -> tuple[int, int]:
    """A join request's `chat_id:user_id` handle → both ids."""
    chat, _, user = (ref or "").rpartition(":")
    if not chat or not user:
        raise InvalidTarget(f"request_ref {ref!r} is not chat_id:user_id")
    return int_id(chat, "chat id"), int_id(user, "user id")
