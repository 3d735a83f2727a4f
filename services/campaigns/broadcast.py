"""broadcast (群SOP): each of a campaign's `messages` posted once at its `at` by the scheduler.

Progress lives on the campaign (`broadcasts_sent`, the messages in time order), advanced by
the scheduler in the transaction that claimed the campaign, and each post's id is
`<campaign id>:broadcast:<n>` (unique in the outbox): a restarted or second scheduler
finds the post done and never makes it again. A cancelled campaign is never due again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session

from services.campaigns import notifications
from services.campaigns.effects import Effects
from services.campaigns.models import Campaign
from services.campaigns.texts import Post


def _messages(campaign: Campaign) -> list[dict[str, Any]]:
    """The messages in the order they are posted: by `at`, equal times as given."""
    return sorted(campaign.params.get("messages") or [], key=lambda m: _at(m))


def _at(message: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(message["at"])


def next_at(campaign: Campaign) -> datetime | None:
    """When the next unsent message of a broadcast is due, or None (none left, other kind)."""
    if campaign.kind != "broadcast":
        return None
    messages = _messages(campaign)
    if campaign.broadcasts_sent >= len(messages):
        return None
    return _at(messages[campaign.broadcasts_sent])


def post_next(*, session: Session, campaign: Campaign, now: datetime, effects: Effects) -> None:
    """Queue the next unsent message as it is and count it sent."""
    index = campaign.broadcasts_sent
    message = _messages(campaign)[index]
    notifications.post(
        session=session,
        campaign=campaign,
        kind="broadcast",
        suffix=str(index),
        rendered=Post(message["text"]),
        data={"index": index, "at": message["at"]},
        now=now,
        effects=effects,
    )
    campaign.broadcasts_sent = index + 1


def window_errors(
    messages: list[dict[str, Any]], *, starts_at: datetime, ends_at: datetime, now: datetime
) -> list[tuple[int, str]]:
    """(index, why) for each message whose `at` is outside [starts_at, ends_at) or past."""
    errors = []
    for i, m in enumerate(messages):
        at = _at(m)
        if not starts_at <= at < ends_at:
            errors.append((i, "at must be within the campaign's window [starts_at, ends_at)"))
        elif at < now:
            errors.append((i, "at must not be in the past"))
    return errors
