"""Creating, changing, cancelling and listing campaigns, with the checks the contract asks for.

Like every use case here these functions flush and never commit: the route commits.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from sqlmodel import Session, col, select

from services.campaigns.broadcast import window_errors
from services.campaigns.models import Campaign, Participant, PrizeStock
from services.campaigns.scheduler import next_due, skip_past_reminders
from services.campaigns.schemas import (
    PARAMS_MODELS,
    CampaignCreate,
    CampaignUpdate,
    ParticipantList,
    ParticipantPublic,
)
from services.campaigns.store import find_campaign, lock_campaign
from services.common.contracts.events import error_details
from services.common.db import keyset_page, new_id
from services.common.errors import Conflict


def _error(loc: list[str | int], msg: str) -> dict[str, Any]:
    return {"type": "value_error", "loc": ["body", *loc], "msg": msg}


def _checked_params(
    kind: str, params: dict[str, Any] | BaseModel
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Validate a kind's params (a create body's come validated); return them normalised
    (JSON form, defaults filled in) and the errors."""
    try:
        if not isinstance(params, BaseModel):
            params = PARAMS_MODELS[kind].model_validate(params)
    except ValidationError as exc:
        return {}, error_details(exc, ("body", "params"))
    return params.model_dump(mode="json"), []


def check_campaign(
    *,
    kind: str,
    starts_at: datetime,
    ends_at: datetime,
    announce_at: datetime | None,
    reminders: list[timedelta],
    params: dict[str, Any] | BaseModel,
    now: datetime,
) -> dict[str, Any]:
    """Return the normalised params, or raise a 422 naming every bad field."""
    params, errors = _checked_params(kind, params)
    if ends_at <= starts_at:
        errors.append(_error(["ends_at"], "ends_at must be after starts_at"))
    elif ends_at <= now:
        errors.append(_error(["ends_at"], "ends_at must be in the future"))
    if announce_at is not None and announce_at > starts_at:
        errors.append(_error(["announce_at"], "announce_at must not be after starts_at"))
    for i, r in enumerate(reminders):
        if r <= timedelta(0):
            errors.append(_error(["reminders", i], "reminders must be positive durations"))
    if kind == "broadcast" and params:
        found = window_errors(params["messages"], starts_at=starts_at, ends_at=ends_at, now=now)
        errors += [_error(["params", "messages", i, "at"], why) for i, why in found]
    if errors:
        raise RequestValidationError(errors)
    return params


def _seconds(reminders: list[timedelta]) -> list[int]:
    return sorted({int(r.total_seconds()) for r in reminders}, reverse=True)


def _stock(campaign: Campaign) -> list[PrizeStock]:
    return [
        PrizeStock(
            campaign_id=campaign.id,
            position=i,
            name=p["name"],
            quantity=p["quantity"],
            remaining=p["quantity"],
            points=p.get("points", 0),
        )
        for i, p in enumerate(campaign.params.get("prizes", []))
    ]


def create_campaign(
    *, session: Session, group_id: str, body: CampaignCreate, now: datetime
) -> Campaign:
    """Validate and store a new scheduled campaign (and a lottery's prize stock)."""
    new = body.root
    params = check_campaign(
        kind=new.kind,
        starts_at=new.starts_at,
        ends_at=new.ends_at,
        announce_at=new.announce_at,
        reminders=new.reminders,
        params=new.params,
        now=now,
    )
    campaign = Campaign(
        id=new_id("c"),
        group_id=group_id,
        kind=new.kind,
        title=new.title,
        status="scheduled",
        starts_at=new.starts_at,
        ends_at=new.ends_at,
        announce_at=new.announce_at,
        reminders=_seconds(new.reminders),
        params=params,
        created_at=now,
        updated_at=now,
    )
    skip_past_reminders(campaign, now)
    campaign.next_due_at = next_due(campaign)
    session.add(campaign)
    session.add_all(_stock(campaign))
    session.flush()
    return campaign


def get_campaign(*, session: Session, group_id: str, campaign_id: str) -> Campaign:
    """Return a group's campaign; raise NotFound when the group has none by that id."""
    return find_campaign(session=session, group_id=group_id, campaign_id=campaign_id)


def update_campaign(
    *, session: Session, group_id: str, campaign_id: str, body: CampaignUpdate, now: datetime
) -> Campaign:
    """Change a campaign that has not started; raise Conflict once it has."""
    campaign = lock_campaign(session=session, group_id=group_id, campaign_id=campaign_id)
    if campaign.status != "scheduled" or campaign.starts_at <= now:
        raise Conflict(f"campaign is {campaign.status} and can no longer be changed")
    given = body.model_dump(exclude_unset=True)
    changes = {k: v for k, v in given.items() if v is not None or k == "announce_at"}
    reminders = changes.get("reminders")
    params = check_campaign(
        kind=campaign.kind,
        starts_at=changes.get("starts_at", campaign.starts_at),
        ends_at=changes.get("ends_at", campaign.ends_at),
        announce_at=changes.get("announce_at", campaign.announce_at),
        reminders=reminders if reminders is not None else [],
        params=changes.get("params", campaign.params),
        now=now,
    )
    for name in ("title", "starts_at", "ends_at", "announce_at"):
        if name in changes:
            setattr(campaign, name, changes[name])
    if reminders is not None:
        campaign.reminders = _seconds(reminders)
    if "starts_at" in changes or reminders is not None:
        skip_past_reminders(campaign, now)
    if "params" in changes:
        campaign.params = params
        if campaign.kind == "lottery":
            session.exec(sa.delete(PrizeStock).where(col(PrizeStock.campaign_id) == campaign.id))
            session.add_all(_stock(campaign))
    campaign.next_due_at = next_due(campaign)
    campaign.updated_at = now
    campaign.version += 1
    session.add(campaign)
    session.flush()
    return campaign


def cancel_campaign(
    *, session: Session, group_id: str, campaign_id: str, now: datetime
) -> Campaign:
    """Cancel a scheduled or active campaign; raise Conflict once it ended."""
    campaign = lock_campaign(session=session, group_id=group_id, campaign_id=campaign_id)
    if campaign.status not in ("scheduled", "active"):
        raise Conflict(f"campaign is already {campaign.status}")
    campaign.status = "cancelled"
    campaign.next_due_at = None
    campaign.updated_at = now
    campaign.version += 1
    session.add(campaign)
    session.flush()
    return campaign


def list_campaigns(
    *,
    session: Session,
    group_id: str,
    status: str | None,
    kind: str | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[Campaign], str | None]:
    """Return a page of a group's campaigns, newest first, and the next cursor."""
    query = select(Campaign).where(col(Campaign.group_id) == group_id)
    if status:
        query = query.where(col(Campaign.status) == status)
    if kind:
        query = query.where(col(Campaign.kind) == kind)
    return keyset_page(session, query, Campaign.id, limit=limit, cursor=cursor, descending=True)


def list_participants(
    *, session: Session, group_id: str, campaign_id: str, limit: int, cursor: str | None
) -> ParticipantList:
    """Return a page of a group's campaign's participants ordered by member id."""
    find_campaign(session=session, group_id=group_id, campaign_id=campaign_id)
    # Only members who took part: a lottery counts everyone's messages (min_messages) but
    # lists those who entered, a poll those who voted.
    query = select(Participant).where(
        col(Participant.campaign_id) == campaign_id, col(Participant.entered).is_(True)
    )
    rows, next_cursor = keyset_page(
        session, query, Participant.member_id, limit=limit, cursor=cursor
    )
    return ParticipantList(
        participants=[
            ParticipantPublic(member_id=p.member_id, joined_at=p.joined_at, count=p.count)
            for p in rows
        ],
        next_cursor=next_cursor,
    )
