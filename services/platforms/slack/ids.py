"""Slack ids in qunyun: `slack:TEAM:CHANNEL` groups, `slack:TEAM:USER` members.

Channel and user ids are only unique within a workspace, so both carry the team id.
Inbound formats them from an event callback; outbound parses them back for the Web API.
"""

from __future__ import annotations

from services.platforms.base import split_id

PREFIX = "slack"


def group_id(team: str, channel: str) -> str:
    """A workspace's channel → `slack:TEAM:CHANNEL`."""
    return f"slack:{team}:{channel}"


def member_id(team: str, user: str) -> str:
    """A workspace's user → `slack:TEAM:USER`."""
    return f"slack:{team}:{user}"


def channel_of(group_id: str) -> str:
    """`slack:TEAM:CHANNEL` → the channel id."""
    return split_id(group_id, PREFIX, 2, "group")[1]


def user_of(member_id: str | None) -> str:
    """`slack:TEAM:USER` → the user id."""
    return split_id(member_id, PREFIX, 2, "member")[1]
