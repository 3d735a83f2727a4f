"""Feishu/Lark ids in qunyun: `feishu:CHAT_ID` groups (oc_…), `feishu:OPEN_ID` members (ou_…).

Inbound formats them from an event; outbound parses them back for the Open Platform.
"""

from __future__ import annotations

from services.platforms.base import split_id

PREFIX = "feishu"


def group_id(chat: str) -> str:
    """A chat id → `feishu:CHAT_ID`."""
    return f"feishu:{chat}"


def member_id(open_id: str) -> str:
    """An open_id → `feishu:OPEN_ID`."""
    return f"feishu:{open_id}"


def chat_of(group_id: str) -> str:
    """`feishu:CHAT_ID` → the chat id (oc_…)."""
    return split_id(group_id, PREFIX, 1, "group")[0]


def open_id_of(member_id: str | None) -> str:
    """`feishu:OPEN_ID` → the member's open_id (ou_…)."""
    return split_id(member_id, PREFIX, 1, "member")[0]
