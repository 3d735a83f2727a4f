"""Who may win a lottery or have a vote counted in a poll: the campaign's `eligibility` params,
and exclusions — members muted, kicked or banned by moderation during the campaign (from
`moderation.actions.v1`) and members an operator excluded by hand.

An exclusion is a row per (campaign, member, cause): `mute`, `kick`, `ban` or `manual`.
An `unmute` lifts the campaign's `mute` rows of that member and an `unban` its `ban` rows
(a reversed case, a manual lift, a verified newcomer); a mute that simply runs out
publishes nothing, so the member stays excluded: they were muted during the campaign.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from services.campaigns.models import Campaign, Exclusion, Member, Participant
from services.campaigns.running import overlapping
from services.campaigns.schemas import ExclusionList, ExclusionPublic
from services.campaigns.store import dialect_insert, find_campaign
from services.common.contracts.actions import ModerationAction
from services.common.db import keyset_page, new_id
from services.common.errors import Conflict, NotFound

ELIGIBILITY_KINDS = ("lottery", "poll")
EXCLUDING = {"mute": "mute", "kick": "kick", "ban": "ban"}
LIFTING = {"unmute": "mute", "unban": "ban"}


def eligible_members(campaign: Campaign) -> Any:
    """A SELECT of the member ids who entered the campaign and may count now."""
    rules = campaign.params.get("eligibility") or {}
    query = select(Participant.member_id).where(
        col(Participant.campaign_id) == campaign.id,
        col(Participant.entered).is_(True),
        col(Participant.count) >= int(rules.get("min_messages") or 0),
        ~sa.exists().where(
            col(Exclusion.campaign_id) == campaign.id,
            col(Exclusion.member_id) == Participant.member_id,
        ),
    )
    if rules.get("joined_before"):
        cutoff = datetime.fromisoformat(rules["joined_before"])
        query = query.where(
            ~sa.exists().where(
                col(Member.group_id) == campaign.group_id,
                col(Member.member_id) == Participant.member_id,
                col(Member.joined_at) >= cutoff,
            )
        )
    return query


def _affected(session: Session, actions: Sequence[ModerationAction]) -> list[Campaign]:
    """The lotteries and polls of the actions' groups still open when the actions were taken."""
    query = overlapping(
        groups=[a.group_id for a in actions],
        lo=min(a.created_at for a in actions),
        hi=max(a.created_at for a in actions),
    )
    return list(
        session.exec(
            query.where(col(Campaign.kind).in_(ELIGIBILITY_KINDS), col(Campaign.drawn_at).is_(None))
        ).all()
    )


def apply_actions(*, session: Session, actions: Sequence[ModerationAction]) -> int:
    """Record the exclusions that moderation's actions make (in order), lift those that an
    `unmute`/`unban` ends; return how many rows were added. Idempotent: replaying the
    actions in order leaves the same rows."""
    relevant = [a for a in actions if a.action in EXCLUDING or a.action in LIFTING]
    if not relevant:
        return 0
    campaigns = _affected(session, relevant)
    added = 0
    table = Exclusion.__table__  # type: ignore[attr-defined]
    for action in relevant:  # in topic order: a lift after its mute undoes it
        mine = [
            c
            for c in campaigns
            if c.group_id == action.group_id and c.starts_at <= action.created_at < c.ends_at
        ]
        if not mine:
            continue
        if action.action in LIFTING:
            session.exec(
                sa.delete(table).where(
                    table.c.campaign_id.in_([c.id for c in mine]),
                    table.c.member_id == action.member_id,
                    table.c.cause == LIFTING[action.action],
                )
            )
            continue
        rows = [
            {
                "id": new_id("x"),
                "campaign_id": c.id,
                "member_id": action.member_id,
                "cause": EXCLUDING[action.action],
                "group_id": c.group_id,
                "reason": action.reason[:1000],
                "by": action.case_id[:256],
                "created_at": action.created_at,
            }
            for c in mine
        ]
        stmt = (
            dialect_insert(session, Exclusion)
            .on_conflict_do_nothing()
            .returning(table.c.campaign_id)
        )
        added += len(session.exec(stmt, params=rows).all())
    return added


def _eligibility_campaign(*, session: Session, group_id: str, campaign_id: str) -> Campaign:
    campaign = find_campaign(session=session, group_id=group_id, campaign_id=campaign_id)
    if campaign.kind not in ELIGIBILITY_KINDS:
        raise Conflict(f"a {campaign.kind} campaign has no eligibility: only lotteries and polls")
    return campaign


def exclude(
    *,
    session: Session,
    group_id: str,
    campaign_id: str,
    member_id: str,
    reason: str,
    by: str,
    now: datetime,
) -> Exclusion:
    """Exclude a member from a lottery or poll by hand (again: the first reason stays)."""
    campaign = _eligibility_campaign(session=session, group_id=group_id, campaign_id=campaign_id)
    if campaign.drawn_at is not None:
        raise Conflict("the campaign's winners or results are already out")
    session.exec(
        dialect_insert(session, Exclusion)
        .values(
            id=new_id("x"),
            campaign_id=campaign.id,
            member_id=member_id,
            cause="manual",
            group_id=group_id,
            reason=reason,
            by=by,
            created_at=now,
        )
        .on_conflict_do_nothing()
    )
    found = session.get(Exclusion, (campaign.id, member_id, "manual"))
    assert found is not None
    return found


def readmit(*, session: Session, group_id: str, campaign_id: str, member_id: str) -> None:
    """Lift a member's manual exclusion (moderation's stay); NotFound when there is none."""
    campaign = _eligibility_campaign(session=session, group_id=group_id, campaign_id=campaign_id)
    found = session.get(Exclusion, (campaign.id, member_id, "manual"))
    if found is None:
        raise NotFound("no manual exclusion of this member")
    session.delete(found)
    session.flush()


def list_exclusions(
    *, session: Session, group_id: str, campaign_id: str, limit: int, cursor: str | None
) -> ExclusionList:
    """A page of a campaign's exclusions, oldest first (a member once per cause)."""
    campaign = find_campaign(session=session, group_id=group_id, campaign_id=campaign_id)
    query = select(Exclusion).where(col(Exclusion.campaign_id) == campaign.id)
    rows, next_cursor = keyset_page(session, query, Exclusion.id, limit=limit, cursor=cursor)
    return ExclusionList(exclusions=[ExclusionPublic.of(e) for e in rows], next_cursor=next_cursor)
