"""The Bot API `Update`s Telegram posts to a bot's webhook about members, for tests and the demo.

Joins and leaves are `chat_member` updates (https://core.telegram.org/bots/api#chatmemberupdated),
the one form ingest maps: Telegram also posts `new_chat_members`/`left_chat_member` service
messages for them, which ingest acknowledges and ignores.
"""

from __future__ import annotations

from typing import Any


def _chat_member_update(
    *,
    update_id: int,
    chat: int,
    date: int,
    performer: dict[str, Any],
    old: dict[str, Any],
    new: dict[str, Any],
) -> dict[str, Any]:
    change = {
        "chat": {"id": chat, "type": "supergroup", "title": "Test Group"},
        "from": performer,
        "date": date,
        "old_chat_member": old,
        "new_chat_member": new,
    }
    return {"update_id": update_id, "chat_member": change}


def member_joined(
    *,
    update_id: int,
    chat: int,
    user: dict[str, Any],
    date: int,
    by: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """`user` left → member: added by `by`, else joined by themselves (through a link)."""
    return _chat_member_update(
        update_id=update_id,
        chat=chat,
        date=date,
        performer=by or user,
        old={"status": "left", "user": user},
        new={"status": "member", "user": user},
    )


def member_left(
    *, update_id: int, chat: int, user: dict[str, Any], date: int, by: dict[str, Any] | None = None
) -> dict[str, Any]:
    """`user` member → left, or → kicked (banned for good) by `by`."""
    gone = {"status": "kicked", "user": user, "until_date": 0} if by else {"status": "left"}
    return _chat_member_update(
        update_id=update_id,
        chat=chat,
        date=date,
        performer=by or user,
        old={"status": "member", "user": user},
        new={"user": user, **gone},
    )
