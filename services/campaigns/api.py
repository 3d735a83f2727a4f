"""Campaigns routes: thin views that check access, call a use case, commit and answer.

Use cases raise NotFound/Conflict (404/409, mapped once by the app) and never commit;
each route that changes something commits its one transaction.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, status
from sqlmodel import Session

from services.campaigns import lottery, planning, rewards
from services.campaigns.effects import Effects, Topics, publish
from services.campaigns.models import Campaign
from services.campaigns.schemas import (
    CampaignCreate,
    CampaignList,
    CampaignPublic,
    CampaignUpdate,
    Kind,
    MemberRewards,
    ParticipantList,
    PointsLeaderboard,
    RerollRequest,
    Status,
    WinnerPublic,
    WinnersPublic,
)
from services.common.db import utcnow
from services.common.deps import ProducerDep, ReadGroup, SessionDep, SettingsDep, WriteGroup

router = APIRouter(prefix="/v1/groups/{group_id}", tags=["campaigns"])

CampaignId = Annotated[str, Path(min_length=1, max_length=32)]
MemberId = Annotated[str, Path(min_length=1, max_length=256)]
Limit = Annotated[int, Query(ge=1, le=500)]
Cursor = Annotated[str | None, Query(max_length=256)]
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such campaign in this group"}
}
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"description": "The campaign's status does not allow this"}
}


def _committed(session: Session, campaign: Campaign) -> CampaignPublic:
    session.commit()
    return CampaignPublic.of(campaign)


@router.post(
    "/campaigns",
    status_code=status.HTTP_201_CREATED,
    response_model=CampaignPublic,
    summary="Schedule a campaign",
)
def create_campaign(
    group_id: WriteGroup, body: CampaignCreate, session: SessionDep
) -> CampaignPublic:
    campaign = planning.create_campaign(session=session, group_id=group_id, body=body, now=utcnow())
    return _committed(session, campaign)


@router.get("/campaigns", response_model=CampaignList, summary="List a group's campaigns")
def list_campaigns(
    group_id: ReadGroup,
    session: SessionDep,
    status_: Annotated[Status | None, Query(alias="status")] = None,
    kind: Kind | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> CampaignList:
    rows, next_cursor = planning.list_campaigns(
        session=session, group_id=group_id, status=status_, kind=kind, limit=limit, cursor=cursor
    )
    return CampaignList(campaigns=[CampaignPublic.of(c) for c in rows], next_cursor=next_cursor)


@router.get(
    "/campaigns/{campaign_id}",
    response_model=CampaignPublic,
    responses=NOT_FOUND,
    summary="Get a campaign",
)
def get_campaign(
    group_id: ReadGroup, campaign_id: CampaignId, session: SessionDep
) -> CampaignPublic:
    return CampaignPublic.of(
        planning.get_campaign(session=session, group_id=group_id, campaign_id=campaign_id)
    )


@router.patch(
    "/campaigns/{campaign_id}",
    response_model=CampaignPublic,
    responses={**NOT_FOUND, **CONFLICT},
    summary="Change a campaign before it starts",
)
def update_campaign(
    group_id: WriteGroup, campaign_id: CampaignId, body: CampaignUpdate, session: SessionDep
) -> CampaignPublic:
    campaign = planning.update_campaign(
        session=session, group_id=group_id, campaign_id=campaign_id, body=body, now=utcnow()
    )
    return _committed(session, campaign)


@router.post(
    "/campaigns/{campaign_id}/cancel",
    response_model=CampaignPublic,
    responses={**NOT_FOUND, **CONFLICT},
    summary="Cancel a scheduled or active campaign",
)
def cancel_campaign(
    group_id: WriteGroup, campaign_id: CampaignId, session: SessionDep
) -> CampaignPublic:
    campaign = planning.cancel_campaign(
        session=session, group_id=group_id, campaign_id=campaign_id, now=utcnow()
    )
    return _committed(session, campaign)


@router.get(
    "/campaigns/{campaign_id}/participants",
    response_model=ParticipantList,
    responses=NOT_FOUND,
    summary="List a campaign's participants (count: check-ins, messages or attendances)",
)
def list_participants(
    group_id: ReadGroup,
    campaign_id: CampaignId,
    session: SessionDep,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> ParticipantList:
    return planning.list_participants(
        session=session, group_id=group_id, campaign_id=campaign_id, limit=limit, cursor=cursor
    )


@router.get(
    "/campaigns/{campaign_id}/winners",
    response_model=WinnersPublic,
    responses=NOT_FOUND,
    summary="A lottery's winners and, once drawn, its seed",
)
def list_winners(
    group_id: ReadGroup, campaign_id: CampaignId, session: SessionDep
) -> WinnersPublic:
    return lottery.winners(session=session, group_id=group_id, campaign_id=campaign_id)


@router.post(
    "/campaigns/{campaign_id}/reroll",
    response_model=WinnersPublic,
    responses={**NOT_FOUND, **CONFLICT},
    summary="Redraw the unclaimed prizes of the given winners among the other eligible entrants",
)
def reroll(
    group_id: WriteGroup,
    campaign_id: CampaignId,
    body: RerollRequest,
    session: SessionDep,
    settings: SettingsDep,
    producer: ProducerDep,
) -> WinnersPublic:
    effects = Effects(Topics.of(settings))
    lottery.reroll(
        session=session,
        group_id=group_id,
        campaign_id=campaign_id,
        member_ids=body.member_ids,
        now=utcnow(),
        effects=effects,
    )
    session.commit()
    effects.record()
    publish(engine=session.get_bind(), producer=producer, topics=effects.topics)  # type: ignore[arg-type]
    return lottery.winners(session=session, group_id=group_id, campaign_id=campaign_id)


@router.post(
    "/campaigns/{campaign_id}/winners/{member_id}/claim",
    response_model=WinnerPublic,
    responses={404: {"description": "No such winner"}, **CONFLICT},
    summary="Mark a winner's prize as handed over (a reroll can no longer take it)",
)
def claim_prize(
    group_id: WriteGroup, campaign_id: CampaignId, member_id: MemberId, session: SessionDep
) -> WinnerPublic:
    winner = lottery.claim(
        session=session, group_id=group_id, campaign_id=campaign_id, member_id=member_id
    )
    session.commit()
    return WinnerPublic.of(winner)


@router.get(
    "/members/{member_id}/rewards",
    response_model=MemberRewards,
    summary="A member's points balance, badges and ledger (newest first)",
)
def member_rewards(
    group_id: ReadGroup,
    member_id: MemberId,
    session: SessionDep,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> MemberRewards:
    return rewards.member_rewards(
        session=session, group_id=group_id, member_id=member_id, limit=limit, cursor=cursor
    )


@router.get(
    "/points/leaderboard",
    response_model=PointsLeaderboard,
    summary="Members with the most points in the group (optionally one campaign)",
)
def points_leaderboard(
    group_id: ReadGroup,
    session: SessionDep,
    limit: Limit = 20,
    campaign_id: Annotated[str | None, Query(max_length=32)] = None,
) -> PointsLeaderboard:
    return rewards.points_leaderboard(
        session=session, group_id=group_id, limit=limit, campaign_id=campaign_id
    )
