"""QQ ids in qunyun (OneBot v11): `qq:GROUP_ID` groups, `qq:USER_ID` members (QQ numbers).

Inbound formats them from an event's numbers; outbound parses them back for the OneBot
HTTP API. A join request is addressed by its `flag`, kept as it came.
"""

from __future__ import annotations

from services.platforms.base import int_id, split_id

PREFIX = "qq"


def group_id(group: int) -> str:
    """A group number → `qq:GROUP_ID`."""
    return f"qq:{group}"


def member_id(user: int) -> str:
    """A QQ number → `qq:USER_ID`."""
    return f"qq:{user}"


def group_of(group_id: str) -> int:
    """`qq:GROUP_ID` → the group number."""
    return int_id(split_id(group_id, PREFIX, 1, "group")[0], "group id")


def user_of(member_id: str | None) -> int:
    """`qq:USER_ID` → the QQ number."""
    return int_id(split_id(member_id, PREFIX, 1, "member")[0], "user id")
