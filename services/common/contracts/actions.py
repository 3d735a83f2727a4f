"""The action contract of topic moderation.actions.v1: what moderation decided to do.

One record per action, keyed by group id. `id` is unique per action (a case's own
action has the case id, its ladder step `<case>-ladder`, a lift `<action>-lift`, the
deletion of the judged message `<case>-delete`, of a burst's later messages
`<case>-delete-<n>`) and
stays the same when a record is published again, so consumers deduplicate on it.

`source` is the webhook source the group's events arrive through (delivery acts through
its outbound credentials); `text` is a notice to post with the action, `mentions` the
member ids it mentions, `mention_names` the display name each is named by in `text`
(`@<display name>`; a member without one is named `@<member id>`), `request_ref` the
platform's handle of a join request (join actions), `message_at` the judged message's
`occurred_at`. These fields came later: they are optional with defaults, so records
published before them still read.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, PlainSerializer

PublishedAction = Literal[
    "flag",
    "delete",
    "warn",
    "mute",
    "unmute",
    "kick",
    "ban",
    "unban",
    "approve_join",
    "decline_join",
]

# In UTC, written as ISO 8601 with a "+00:00" offset (datetime.isoformat), as the topic
# has always had it (pydantic alone would write "Z").
UtcIsoTimestamp = Annotated[
    AwareDatetime,
    AfterValidator(lambda value: value.astimezone(UTC)),
    PlainSerializer(datetime.isoformat, return_type=str, when_used="json"),
]


class ModerationAction(BaseModel):
    """One action on a member or message, as published on moderation.actions.v1."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str
    case_id: str
    group_id: str
    source: str | None = None
    member_id: str
    event_id: str | None
    message_id: str | None
    action: PublishedAction
    duration_seconds: int | None
    rule_id: str | None
    reason: str
    text: str | None = None
    mentions: list[str] = Field(default_factory=list)
    mention_names: dict[str, str] = Field(default_factory=dict)
    request_ref: str | None = None
    message_at: UtcIsoTimestamp | None = None
    created_at: UtcIsoTimestamp
