"""Feedback (反馈): tagged messages collected as items, triaged by operators, rewarded once.

A message in the campaign's window holding `tag` (`#反馈`, full-width `＃反馈` alike) is an
item; the category named right after the tag (`#反馈 bug …`) is detected when it is one of
`categories`, or set later. Setting an item `accepted` grants `points_accepted` to its
author once: the grant's reason is `feedback:<item id>` and grants are unique per campaign,
member and reason, so repeated or concurrent PATCHes grant once.
"""

from __future__ import annotations

from datetime import datetime

from fastapi.exceptions import RequestValidationError
from sqlmodel import Session, col, select

from services.campaigns.effects import Effects
from services.campaigns.matching import clean, detect_category, find_tag
from services.campaigns.models import Campaign, FeedbackItem
from services.campaigns.params import FeedbackParams
from services.campaigns.rewards import grant
from services.campaigns.schemas import FeedbackItemPublic, FeedbackList, FeedbackUpdate
from services.campaigns.store import dialect_insert, find_campaign, is_postgres
from services.common.contracts.events import MessageCreated
from services.common.db import keyset_page, new_id
from services.common.errors import Conflict, NotFound


def collect(
    *, session: Session, campaign: Campaign, messages: list[MessageCreated], now: datetime
) -> list[MessageCreated]:
    """Store the tagged messages as new items (a message once); return the messages stored."""
    params = FeedbackParams.model_validate(campaign.params)
    rows = []
    tagged: dict[str, MessageCreated] = {}
    for m in messages:
        after = find_tag(params.tag, m.data.text)
        if after is None or m.data.message_id in tagged:
            continue
        tagged[m.data.message_id] = m
        rows.append(
            {
                "id": new_id("f"),
                "campaign_id": campaign.id,
                "group_id": campaign.group_id,
                "member_id": m.member_id,
                "message_id": m.data.message_id,
                "text": m.data.text,
                "category": detect_category(after, params.categories),
                "status": "new",
                "created_at": m.occurred_at,
                "updated_at": now,
            }
        )
    if not rows:
        return []
    table = FeedbackItem.__table__  # type: ignore[attr-defined]
    stmt = (
        dialect_insert(session, FeedbackItem).on_conflict_do_nothing().returning(table.c.message_id)
    )
    stored = session.exec(stmt, params=rows).all()
    return [tagged[message_id] for (message_id,) in stored]


def _feedback_campaign(*, session: Session, group_id: str, campaign_id: str) -> Campaign:
    campaign = find_campaign(session=session, group_id=group_id, campaign_id=campaign_id)
    if campaign.kind != "feedback":
        raise Conflict(f"a {campaign.kind} campaign collects no feedback")
    return campaign


def list_feedback(
    *,
    session: Session,
    group_id: str,
    campaign_id: str,
    status: str | None,
    limit: int,
    cursor: str | None,
) -> FeedbackList:
    """A page of a feedback campaign's items, newest first, optionally of one status."""
    campaign = _feedback_campaign(session=session, group_id=group_id, campaign_id=campaign_id)
    query = select(FeedbackItem).where(col(FeedbackItem.campaign_id) == campaign.id)
    if status:
        query = query.where(col(FeedbackItem.status) == status)
    rows, next_cursor = keyset_page(
        session, query, FeedbackItem.id, limit=limit, cursor=cursor, descending=True
    )
    return FeedbackList(
        feedback=[FeedbackItemPublic.model_validate(r, from_attributes=True) for r in rows],
        next_cursor=next_cursor,
    )


def _category(params: FeedbackParams, given: str | None) -> str | None:
    """The campaign's own spelling of a category, or a 422 naming `category`."""
    if given is None:
        return None
    for category in params.categories:
        if clean(category) == clean(given):
            return category
    allowed = ", ".join(params.categories) or "none"
    raise RequestValidationError(
        [
            {
                "type": "value_error",
                "loc": ["body", "category"],
                "msg": f"category must be one of the campaign's categories ({allowed})",
                "input": given,
            }
        ]
    )


def update_item(
    *,
    session: Session,
    group_id: str,
    campaign_id: str,
    item_id: str,
    body: FeedbackUpdate,
    now: datetime,
    effects: Effects,
) -> FeedbackItem:
    """Change an item's status and/or category; `accepted` grants the points (once per item)."""
    campaign = _feedback_campaign(session=session, group_id=group_id, campaign_id=campaign_id)
    if campaign.status == "cancelled":
        raise Conflict("campaign is cancelled")
    params = FeedbackParams.model_validate(campaign.params)
    changes = body.model_dump(exclude_unset=True)
    category = _category(params, changes.get("category")) if "category" in changes else None
    query = select(FeedbackItem).where(
        col(FeedbackItem.id) == item_id, col(FeedbackItem.campaign_id) == campaign.id
    )
    if is_postgres(session):
        query = query.with_for_update()
    item = session.exec(query).first()
    if item is None:
        raise NotFound("feedback item not found")
    if "category" in changes:
        item.category = category
    if changes.get("status") is not None:
        item.status = changes["status"]
    item.updated_at = now
    session.add(item)
    if item.status == "accepted" and params.points_accepted > 0:
        grant(
            session=session,
            campaign=campaign,
            member_id=item.member_id,
            reason=f"feedback:{item.id}",
            points=params.points_accepted,
            badge=None,
            now=now,
            effects=effects,
        )
    session.flush()
    return item
