"""Campaigns routes: thin views that check access, call a use case, commit and answer.

Use cases raise NotFound/Conflict (404/409, mapped once by the app) and never commit;
each route that changes something commits its one transaction.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, status
from sqlmodel import Session

from services.campaigns import eligibility, feedback, lottery, planning, polls, posted, rewards
from services.campaigns.effects import Effects, Topics, publish
from services.campaigns.kinds import KIND_MODELS
from services.campaigns.models import Campaign
from services.campaigns.schemas import (
    CampaignCreate,
    CampaignList,
    CampaignPublic,
    CampaignUpdate,
    ExclusionCreate,
    ExclusionList,
    ExclusionPublic,
    FeedbackItemPublic,
    FeedbackList,
    FeedbackStatus,
    FeedbackUpdate,
    Kind,
    MemberRewards,
    NotificationList,
    ParticipantList,
    PointsLeaderboard,
    PollResults,
    RerollRequest,
    Status,
    WinnerPublic,
    WinnersPublic,
)
from services.common.db import utcnow
from services.common.deps import (
    PrincipalDep,
    ProducerDep,
    ReadGroup,
    SessionDep,
    SettingsDep,
    WriteGroup,
)

router = APIRouter(prefix="/v1/groups/{group_id}", tags=["campaigns"])

CampaignId = Annotated[str, Path(min_length=1, max_length=32)]
MemberId = Annotated[str, Path(min_length=1, max_length=256)]
Limit = Annotated[int, Query(ge=1, le=500)]
Cursor = Annotated[str | None, Query(max_length=256)]


Responses = dict[int | str, dict[str, Any]]


def _error(description: str, detail: str) -> dict[str, Any]:
    """A documented error answer: `{"detail": …}` with an example."""
    schema = {"$ref": "#/components/schemas/HTTPError"}
    example = {"detail": detail}
    return {
        "description": description,
        "content": {"application/json": {"schema": schema, "example": example}},
    }


NOT_FOUND: Responses = {404: _error("No campaign by this id in this group", "campaign not found")}
NOT_CHANGEABLE: Responses = {
    409: _error(
        "The campaign has started, ended or been cancelled",
        "campaign is active and can no longer be changed",
    )
}
NOT_CANCELLABLE: Responses = {
    409: _error("The campaign has already ended or been cancelled", "campaign is already ended")
}
NOT_REROLLABLE: Responses = {
    409: _error(
        "The lottery has not been drawn, or a given member holds no prize or already claimed it",
        "the lottery has not been drawn yet",
    )
}
NEW_CAMPAIGN = Body(
    openapi_examples={
        kind: {"summary": model.__doc__ or kind, "value": model.EXAMPLE}
        for kind, model in KIND_MODELS.items()
    }
)


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
    group_id: WriteGroup,
    body: Annotated[CampaignCreate, NEW_CAMPAIGN],
    session: SessionDep,
) -> CampaignPublic:
    """Schedule a campaign of one kind: `kind` decides the shape of `params` (see the
    examples for each). The campaign is `scheduled` until `starts_at`, `active` until
    `ends_at`, then `ended`; the announcement, reminders (ISO-8601 durations before the
    start), start, end and a lottery's draw are posted by the scheduler exactly once, as are
    a welcome's batches and a broadcast's messages (each `at` within the window). Every
    kind's posts can be reworded in `params.texts` (an unknown placeholder is a 422).
    Unknown params are rejected and defaults are filled in; a 422 names the bad fields
    (`loc`)."""
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
    """The group's campaigns, newest first, optionally of one status or kind; pass
    `next_cursor` back as `cursor` for the next page (null at the end). A group with no
    campaigns answers an empty list."""
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
    """One campaign of the group with its status and its params, defaults filled in."""
    return CampaignPublic.of(
        planning.get_campaign(session=session, group_id=group_id, campaign_id=campaign_id)
    )


@router.patch(
    "/campaigns/{campaign_id}",
    response_model=CampaignPublic,
    responses={**NOT_FOUND, **NOT_CHANGEABLE},
    summary="Change a campaign before it starts",
)
def update_campaign(
    group_id: WriteGroup, campaign_id: CampaignId, body: CampaignUpdate, session: SessionDep
) -> CampaignPublic:
    """Change the given fields of a campaign that is still `scheduled` and has not reached
    `starts_at` (409 afterwards). `kind` cannot change; `params`, when given, replaces the
    whole params of the kind. Reminders already due are skipped, not sent late."""
    campaign = planning.update_campaign(
        session=session, group_id=group_id, campaign_id=campaign_id, body=body, now=utcnow()
    )
    return _committed(session, campaign)


@router.post(
    "/campaigns/{campaign_id}/cancel",
    response_model=CampaignPublic,
    responses={**NOT_FOUND, **NOT_CANCELLABLE},
    summary="Cancel a scheduled or active campaign",
)
def cancel_campaign(
    group_id: WriteGroup, campaign_id: CampaignId, session: SessionDep
) -> CampaignPublic:
    """Stop a `scheduled` or `active` campaign: nothing more is posted, counted or granted for
    it, and rewards already granted stay. An ended or cancelled campaign answers 409."""
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
    """The members who took part, ordered by member id, with `count`: their check-in days
    (checkin), messages in the window (challenge; lottery and poll, whose lists hold only
    the members who entered or voted), attendance-keyword messages (event), feedback items
    (feedback) or counted invitees (invite: the inviters)."""
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
    """A lottery's winners by round and rank. `seed_sha256` is published at the start and
    `seed` once drawn, so anyone can verify the draw (see docs/campaigns.md); other kinds
    and undrawn lotteries answer an empty list."""
    return lottery.winners(session=session, group_id=group_id, campaign_id=campaign_id)


@router.get(
    "/campaigns/{campaign_id}/notifications",
    response_model=NotificationList,
    responses=NOT_FOUND,
    summary="A campaign's posts to the group and how delivery carried each out",
)
def list_notifications(
    group_id: ReadGroup,
    campaign_id: CampaignId,
    session: SessionDep,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> NotificationList:
    """Every notification the campaign published (announcement, reminders, start, end,
    results), oldest first, as it went on `campaigns.notifications.v1` (`source` is the
    group's latest event's source), with `delivery`: null until delivery answers, then the
    latest receipt's `{"outcome", "detail", "updated_at"}`. Paged by `cursor`."""
    return posted.list_notifications(
        session=session, group_id=group_id, campaign_id=campaign_id, limit=limit, cursor=cursor
    )


@router.post(
    "/campaigns/{campaign_id}/reroll",
    response_model=WinnersPublic,
    responses={**NOT_FOUND, **NOT_REROLLABLE},
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
    """The given winners forfeit their unclaimed prizes (and the points that came with them),
    and those prizes are drawn again among the remaining eligible entrants in a new round,
    announced like the draw. Answers the winners after the reroll."""
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
    responses={
        404: _error("The member did not win this lottery", "no such winner"),
        409: _error("The winner forfeited the prize in a reroll", "bob forfeited the prize"),
    },
    summary="Mark a winner's prize as handed over (a reroll can no longer take it)",
)
def claim_prize(
    group_id: WriteGroup, campaign_id: CampaignId, member_id: MemberId, session: SessionDep
) -> WinnerPublic:
    """Record that a winner received the prize (`status: claimed`); a reroll can no longer
    take it. Claiming again is harmless; a forfeited prize answers 409."""
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
    """A member's points balance and badges in the group, with the ledger of grants
    (newest first, paged by `cursor`); each reward is granted exactly once per campaign,
    member and reason. A member with no rewards answers zero points."""
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
    """Members with points in the group, most first (ties by member id); only the points
    of one campaign when `campaign_id` is given."""
    return rewards.points_leaderboard(
        session=session, group_id=group_id, limit=limit, campaign_id=campaign_id
    )


# ---- polls, feedback, exclusions -----------------------------------------------------------

NOT_A_POLL: Responses = {
    409: _error("The campaign is not a poll", "a lottery campaign has no poll results")
}
NOT_FEEDBACK: Responses = {
    409: _error(
        "The campaign is not a feedback campaign, or (PATCH) it was cancelled",
        "a poll campaign collects no feedback",
    )
}
NO_ELIGIBILITY: Responses = {
    409: _error(
        "Only lotteries and polls have eligibility; or (POST) the winners or results are out",
        "a checkin campaign has no eligibility: only lotteries and polls",
    )
}
ItemId = Annotated[str, Path(min_length=1, max_length=32)]


@router.get(
    "/campaigns/{campaign_id}/results",
    response_model=PollResults,
    responses={**NOT_FOUND, **NOT_A_POLL},
    summary="A poll's results: votes per option and voters",
)
def poll_results(group_id: ReadGroup, campaign_id: CampaignId, session: SessionDep) -> PollResults:
    """Votes per option (numbered from 1) and the number of voters, counting only eligible
    members (the `eligibility` params; not muted, kicked or banned by moderation during the
    poll, not excluded by an operator). Live while the poll runs; once the results are
    posted (`results_delay_seconds` after the end) the posted results, which later events
    no longer change. Other kinds answer 409."""
    return polls.results(session=session, group_id=group_id, campaign_id=campaign_id)


@router.get(
    "/campaigns/{campaign_id}/feedback",
    response_model=FeedbackList,
    responses={**NOT_FOUND, **NOT_FEEDBACK},
    summary="A feedback campaign's items, newest first",
)
def list_feedback(
    group_id: ReadGroup,
    campaign_id: CampaignId,
    session: SessionDep,
    status_: Annotated[FeedbackStatus | None, Query(alias="status")] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> FeedbackList:
    """The items collected from messages holding the campaign's `tag`, newest first,
    optionally of one `status` (new, accepted, rejected, done); each with the category
    detected after the tag or set later. Paged by `cursor`."""
    return feedback.list_feedback(
        session=session,
        group_id=group_id,
        campaign_id=campaign_id,
        status=status_,
        limit=limit,
        cursor=cursor,
    )


@router.patch(
    "/campaigns/{campaign_id}/feedback/{item_id}",
    response_model=FeedbackItemPublic,
    responses={
        404: _error("No such campaign, or no such item in it", "feedback item not found"),
        **NOT_FEEDBACK,
    },
    summary="Triage a feedback item: status and category (accepted earns points once)",
)
def update_feedback(
    group_id: WriteGroup,
    campaign_id: CampaignId,
    item_id: ItemId,
    body: FeedbackUpdate,
    session: SessionDep,
    settings: SettingsDep,
    producer: ProducerDep,
) -> FeedbackItemPublic:
    """Set an item's `status` and/or `category` (one of the campaign's `categories`, else
    422; null clears it). Setting `accepted` grants the author the campaign's
    `points_accepted` once per item, however often or concurrently it is set."""
    effects = Effects(Topics.of(settings))
    item = feedback.update_item(
        session=session,
        group_id=group_id,
        campaign_id=campaign_id,
        item_id=item_id,
        body=body,
        now=utcnow(),
        effects=effects,
    )
    session.commit()
    effects.record()
    if effects.grants:
        publish(engine=session.get_bind(), producer=producer, topics=effects.topics)  # type: ignore[arg-type]
    return FeedbackItemPublic.model_validate(item, from_attributes=True)


@router.get(
    "/campaigns/{campaign_id}/exclusions",
    response_model=ExclusionList,
    responses=NOT_FOUND,
    summary="Members left out of a lottery or poll, and why",
)
def list_exclusions(
    group_id: ReadGroup,
    campaign_id: CampaignId,
    session: SessionDep,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> ExclusionList:
    """Who may not win or vote, oldest first: `mute`, `kick` or `ban` (moderation acted on
    them during the campaign; `by` is the case id) or `manual` (an operator; `by` is the
    token's name). A member appears once per cause."""
    return eligibility.list_exclusions(
        session=session, group_id=group_id, campaign_id=campaign_id, limit=limit, cursor=cursor
    )


@router.post(
    "/campaigns/{campaign_id}/exclusions",
    status_code=status.HTTP_201_CREATED,
    response_model=ExclusionPublic,
    responses={**NOT_FOUND, **NO_ELIGIBILITY},
    summary="Exclude a member from a lottery or poll by hand",
)
def exclude_member(
    group_id: WriteGroup,
    campaign_id: CampaignId,
    body: ExclusionCreate,
    session: SessionDep,
    principal: PrincipalDep,
) -> ExclusionPublic:
    """The member is not drawn (lottery) and their votes are not counted (poll), until the
    exclusion is deleted. Allowed until the winners or results are out (409 afterwards);
    excluding again keeps the first reason."""
    excluded = eligibility.exclude(
        session=session,
        group_id=group_id,
        campaign_id=campaign_id,
        member_id=body.member_id,
        reason=body.reason,
        by=principal.name,
        now=utcnow(),
    )
    session.commit()
    return ExclusionPublic.of(excluded)


@router.delete(
    "/campaigns/{campaign_id}/exclusions/{member_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={
        404: _error(
            "No campaign by this id, or no manual exclusion of the member",
            "no manual exclusion of this member",
        ),
        **NO_ELIGIBILITY,
    },
    summary="Lift a member's manual exclusion",
)
def readmit_member(
    group_id: WriteGroup, campaign_id: CampaignId, member_id: MemberId, session: SessionDep
) -> None:
    """Lift the operator's exclusion of a member (exclusions by moderation stay)."""
    eligibility.readmit(
        session=session, group_id=group_id, campaign_id=campaign_id, member_id=member_id
    )
    session.commit()
