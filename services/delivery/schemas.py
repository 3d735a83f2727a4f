"""The REST API's bodies: a delivery as operators see it, its list, and a message to post.

Every input is bounded (text, ids, page size) so no request, however odd, reaches the
database or the platforms unchecked: a bad one is a 422 naming the field.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.delivery.models import Delivery

MAX_TEXT = 4096

Outcome = Literal[
    "delivered", "recorded", "unsupported", "forbidden", "expired", "failed", "no_route"
]


class DeliveryPublic(BaseModel):
    """One record delivery carries out: its latest outcome (null while still under way)."""

    id: str = Field(description="The delivery's id (dl_…), used by retry")
    ref_id: str = Field(description="The record's id: an action, notification or message")
    ref_topic: str = Field(description="The topic the record came from (delivery.messages: REST)")
    group_id: str
    source: str | None = Field(description="The source whose credentials act in the group")
    platform: str | None
    operation: str = Field(description="delete, mute, unmute, kick, ban, unban, post, …")
    outcome: Outcome | None = Field(description="null while the record is still being carried out")
    detail: str = Field(description="What the platform answered, or why nothing was called")
    attempts: int = Field(description="Platform calls made so far, retries included")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: Delivery) -> DeliveryPublic:
        return cls.model_validate(row, from_attributes=True)


class DeliveriesPublic(BaseModel):
    """A page of a group's deliveries, newest first."""

    deliveries: list[DeliveryPublic]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null at the end"
    )


class MessageCreate(BaseModel):
    """A post to make in the group now."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"text": "今晚 8 点直播，别错过！", "reply_to": None, "source": None},
                {"text": "Please read the pinned rules.", "reply_to": "4711", "source": "tg-main"},
            ]
        },
    )

    text: str = Field(min_length=1, max_length=MAX_TEXT, description="The text to post")
    reply_to: str | None = Field(
        default=None, min_length=1, max_length=255, description="A platform message id to reply to"
    )
    source: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="The source to post through; default: the source of the group's latest record",
    )

    @field_validator("text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("text is blank")
        return value


class MessageAccepted(BaseModel):
    """The queued message: its id is the `ref_id` of its delivery and receipt."""

    id: str
