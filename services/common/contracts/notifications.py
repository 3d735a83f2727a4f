"""What campaigns publishes: notifications (campaigns.notifications.v1) and grants
(campaigns.rewards.v1), both keyed by `group_id` and deduplicated on `id` by consumers."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

NOTIFICATIONS_TOPIC = "campaigns.notifications.v1"
REWARDS_TOPIC = "campaigns.rewards.v1"

IsoTime = Annotated[datetime, PlainSerializer(lambda v: v.isoformat(), return_type=str)]
"""A time written with `datetime.isoformat()` (`+00:00`, not `Z`), as consumers already read it."""


class _Record(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class CampaignNotification(_Record):
    """A post for the group: an announcement, reminder, start, end or lottery result.

    `id` is `<campaign id>:<kind>[:n]`, stable across retries; delivery answers it on
    delivery.receipts.v1 with `ref_id` = this id. `source` is the source of the group's
    latest event when the notification was made (null before the group's first event):
    delivery posts through its credentials. `reply_to` is a message id to answer, or
    null. `mentions` are the member ids named in `text` as `@<display name>` (or
    `@群友` when no name is known: internal ids never show); `mention_names` maps a
    member id to the name used, so delivery finds the `@name` in `text`.
    A winners post keeps the same map in `data.mention_names` too (older consumers).
    """

    id: str
    group_id: str
    source: str | None = None
    campaign_id: str
    kind: str
    text: str
    reply_to: str | None = None
    mentions: list[str] = Field(default_factory=list)
    mention_names: dict[str, str] = Field(default_factory=dict)
    data: dict[str, Any] = Field(default_factory=dict)
    created_at: IsoTime


class RewardGranted(_Record):
    """Points and/or a badge granted once to a member for a campaign and reason."""

    id: str
    group_id: str
    campaign_id: str
    member_id: str
    reason: str
    points: int = 0
    badge: str | None = None
    created_at: IsoTime
