"""Invite rewards (拉新, 老带新): inviters earn points for invitees who stay.

A `member.joined` whose `occurred_at` falls in an invite campaign's window, with
`invited_by` set to someone else, counts the member as that inviter's invitee — once per
campaign: the first counted join wins and a re-join counts nothing more. The invitee is
due at `joined_at + retain_days`. A `member.left` between the join and that moment marks
them left (even if they come back). The scheduler settles due invitees a few seconds
after `due_at` (so a leave still in the consumer's lag is seen): the inviter is granted
`points_per_invitee` with reason `invitee:<member id>` (unique per campaign, member and
reason: exactly once, whatever the replicas or restarts), or nothing for one who left or
a cancelled campaign.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, select

from services.campaigns.effects import Effects
from services.campaigns.models import Campaign, Invitee
from services.campaigns.params import InviteParams
from services.campaigns.rewards import Award, grant_many
from services.campaigns.running import Running, running_for
from services.campaigns.store import dialect_insert, is_postgres
from services.common.contracts.events import MemberJoined, MemberLeft
from services.common.db import UTCDateTime

SETTLE_LAG = timedelta(seconds=3)
SETTLE_BATCH = 500


@dataclass(frozen=True)
class Counted:
    """A newly counted invitee: the campaign, the inviter and when the invitee joined."""

    campaign: Campaign
    inviter_id: str
    joined_at: datetime


def reason_for(member_id: str) -> str:
    """The grant reason of an invitee (within the 128 characters of a reason)."""
    if len(member_id) <= 100:
        return f"invitee:{member_id}"
    return "invitee:sha256:" + hashlib.sha256(member_id.encode()).hexdigest()


def record_joins(
    *, session: Session, joins: list[MemberJoined], running: Running | None = None
) -> list[Counted]:
    """Count the invited joins of a batch (each invitee once per campaign); return the new.
    `running`: the poll's campaigns (loaded here when not given)."""
    invited = [
        j for j in joins if j.data.invited_by is not None and j.data.invited_by != j.member_id
    ]
    if not invited:
        return []
    rows: dict[tuple[str, str], dict[str, object]] = {}
    campaigns: dict[str, Campaign] = {}
    if running is None:
        running = running_for(session=session, events=invited)
    for c in running.of_kind("invite", include_ended=True):
        campaigns[c.id] = c
        retain = timedelta(days=InviteParams.model_validate(c.params).retain_days)
        for j in sorted(invited, key=lambda j: j.occurred_at):
            if j.group_id == c.group_id and c.starts_at <= j.occurred_at < c.ends_at:
                rows.setdefault(
                    (c.id, j.member_id),
                    {
                        "campaign_id": c.id,
                        "member_id": j.member_id,
                        "group_id": c.group_id,
                        "inviter_id": j.data.invited_by,
                        "joined_at": j.occurred_at,
                        "due_at": j.occurred_at + retain,
                    },
                )
    if not rows:
        return []
    table = Invitee.__table__  # type: ignore[attr-defined]
    stmt = (
        dialect_insert(session, Invitee)
        .on_conflict_do_nothing()
        .returning(table.c.campaign_id, table.c.inviter_id, table.c.joined_at)
    )
    new = session.exec(stmt, params=[rows[k] for k in sorted(rows)]).all()
    return [Counted(campaigns[c], inviter, at) for c, inviter, at in new]


def record_leaves(*, session: Session, leaves: list[MemberLeft]) -> None:
    """Mark the unsettled invitees who left before they were due (the earliest leave stays)."""
    if not leaves:
        return
    table = Invitee.__table__  # type: ignore[attr-defined]
    at = sa.bindparam("at", type_=UTCDateTime())
    session.connection().execute(
        sa.update(table)
        .where(
            table.c.group_id == sa.bindparam("g"),
            table.c.member_id == sa.bindparam("m"),
            table.c.settled_at.is_(None),
            table.c.joined_at <= at,
            table.c.due_at > at,
            sa.or_(table.c.left_at.is_(None), table.c.left_at > at),
        )
        .values(left_at=at),
        [{"g": e.group_id, "m": e.member_id, "at": e.occurred_at} for e in leaves],
    )


def settle_due(
    *, session: Session, now: datetime, effects: Effects, campaign_ids: list[str] | None = None
) -> Counter[str]:
    """Settle the invitees due (up to a batch): grant their inviters or mark them left or
    cancelled; return the outcomes. On PostgreSQL rows another replica is settling are
    skipped; elsewhere the grants' uniqueness keeps a double settlement harmless."""
    query = select(Invitee).where(
        col(Invitee.settled_at).is_(None), col(Invitee.due_at) <= now - SETTLE_LAG
    )
    if campaign_ids is not None:
        query = query.where(col(Invitee.campaign_id).in_(campaign_ids))
    query = query.order_by(col(Invitee.due_at)).limit(SETTLE_BATCH)
    if is_postgres(session):
        query = query.with_for_update(skip_locked=True)
    due = list(session.exec(query).all())
    if not due:
        return Counter()
    found = session.exec(
        select(Campaign).where(col(Campaign.id).in_(sorted({i.campaign_id for i in due})))
    ).all()
    campaigns = {c.id: c for c in found}
    awards: list[Award] = []
    for invitee in due:
        campaign = campaigns[invitee.campaign_id]
        points = InviteParams.model_validate(campaign.params).points_per_invitee
        if campaign.status == "cancelled":
            invitee.outcome = "cancelled"
        elif invitee.left_at is not None:
            invitee.outcome = "left"
        else:
            invitee.outcome = "retained"
            if points > 0:
                reason = reason_for(invitee.member_id)
                awards.append(Award(campaign, invitee.inviter_id, reason, points))
        invitee.settled_at = now
        session.add(invitee)
    grant_many(session=session, awards=awards, now=now, effects=effects)
    session.flush()
    return Counter(i.outcome for i in due if i.outcome)
