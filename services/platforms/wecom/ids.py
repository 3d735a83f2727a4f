"""WeCom ids in qunyun: `wecom:CHAT_ID` customer groups (wr…), `wecom:USERID` members.

A member is staff (`USERID`) or a customer (`EXTERNAL_USERID`, wm…/wo…): WeCom gives both
in the same fields, so one format covers them. Inbound formats them from a callback or
`groupchat/get`; outbound parses them back for the API.
"""

from __future__ import annotations

from services.platforms.base import split_id

PREFIX = "wecom"


def group_id(chat: str) -> str:
    """A customer group's chat id → `wecom:CHAT_ID`."""
    return f"{PREFIX}:{chat}"


def member_id(userid: str) -> str:
    """A staff userid or a customer's external_userid → `wecom:USERID`."""
    return f"{PREFIX}:{userid}"


def chat_of(group_id: str) -> str:
    """`wecom:CHAT_ID` → the chat id."""
    return split_id(group_id, PREFIX, 1, "group")[0]


def user_of(member_id: str | None) -> str:
    """`wecom:USERID` → the userid (or external_userid)."""
    return split_id(member_id, PREFIX, 1, "member")[0]
