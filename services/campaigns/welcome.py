"""welcome (入群欢迎): newcomers greeted in batches, a join wave in one post.

The consumer keeps each join in a running welcome campaign's window as a pending row
(`campaigns_welcome_join`, keyed by campaign, member and the join's `occurred_at`, so a
redelivered join changes nothing) and marks the pending rows of a member who leaves.
A batch opens with the earliest pending join and holds every join of the next
`batch_seconds`; once that time has passed, the scheduler claims the campaign (as it
claims its other steps) and, in one transaction, posts one welcome mentioning the batch's
members who are still there, and sets the rows' `batch_id`. The post's id is derived from
the batch's first join, unique in the outbox: no replica or restart posts a batch twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, select

from services.campaigns import notifications
from services.campaigns.directory import names_of
from services.campaigns.effects import Effects
from services.campaigns.models import Campaign, WelcomeJoin
from services.campaigns.params import WelcomeParams
from services.campaigns.running import Running, claim_campaign, running_for
from services.campaigns.store import dialect_insert
from services.campaigns.texts import Named, render
from services.common.contracts.events import Event, MemberJoined, MemberLeft

DUE_LIMIT = 200


@dataclass(frozen=True)
class Join:
    """A pending join as the batching reads it."""

    member_id: str
    joined_at: datetime
    left_at: datetime | None = None


@dataclass
class Batch:
    """One welcome post: the joins it settles, and the members it greets (join order)."""

    opened_at: datetime
    joins: list[Join] = field(default_factory=list)

    @property
    def greeted(self) -> list[str]:
        """Members with a join in the batch they have not left since."""
        return list(dict.fromkeys(j.member_id for j in self.joins if j.left_at is None))


def due_batches(pending: Sequence[Join], batch: timedelta, now: datetime) -> list[Batch]:
    """Split pending joins (any order) into the batches due by `now`: each opens with the
    earliest join left and holds the joins before its opening + `batch`."""
    ordered = sorted(pending, key=lambda j: (j.joined_at, j.member_id))
    batches: list[Batch] = []
    i = 0
    while i < len(ordered) and ordered[i].joined_at + batch <= now:
        current = Batch(ordered[i].joined_at)
        closes = current.opened_at + batch
        while i < len(ordered) and ordered[i].joined_at < closes:
            current.joins.append(ordered[i])
            i += 1
        batches.append(current)
    return batches


def batch_id(campaign_id: str, first: Join) -> str:
    """The welcome notification's suffix: the batch's first join (time, member digest)."""
    digest = hashlib.sha256(first.member_id.encode()).hexdigest()[:10]
    return f"{int(first.joined_at.timestamp() * 1000)}-{digest}"


def record_joins(
    *, session: Session, events: Sequence[Event], running: Running | None = None
) -> None:
    """Keep the batch's joins in running welcome campaigns as pending, and mark the pending
    joins of members who left (a leave before the join changes nothing). `running`: the
    poll's campaigns (loaded here when not given)."""
    welcoming = running is None or bool(running.of_kind("welcome"))
    joins = [e for e in events if isinstance(e, MemberJoined)] if welcoming else []
    if joins:
        rows = {}
        if running is None:
            running = running_for(session=session, events=joins)
        for c in running.of_kind("welcome"):
            wait = timedelta(seconds=WelcomeParams.model_validate(c.params).batch_seconds)
            for j in joins:
                if j.group_id == c.group_id and c.starts_at <= j.occurred_at < c.ends_at:
                    rows[(c.id, j.member_id, j.occurred_at)] = {
                        "campaign_id": c.id,
                        "member_id": j.member_id,
                        "joined_at": j.occurred_at,
                        "group_id": j.group_id,
                        "due_at": j.occurred_at + wait,
                    }
        if rows:
            stmt = dialect_insert(session, WelcomeJoin).on_conflict_do_nothing()
            session.exec(stmt, params=[rows[k] for k in sorted(rows)])
    leaves = sorted(
        ((e.group_id, e.member_id, e.occurred_at) for e in events if isinstance(e, MemberLeft)),
    )
    if leaves:
        table = WelcomeJoin.__table__  # type: ignore[attr-defined]
        at = sa.bindparam("at", type_=table.c.left_at.type)
        session.connection().execute(
            sa.update(table)
            .where(
                table.c.group_id == sa.bindparam("g"),
                table.c.member_id == sa.bindparam("m"),
                table.c.batch_id.is_(None),
                table.c.joined_at <= at,
                sa.or_(table.c.left_at.is_(None), table.c.left_at < at),
            )
            .values(left_at=at),
            [{"g": g, "m": m, "at": at_} for g, m, at_ in leaves],
        )


def due_campaigns(*, session: Session, now: datetime) -> list[str]:
    """Welcome campaigns with a batch due by `now`."""
    return list(
        session.exec(
            select(WelcomeJoin.campaign_id)
            .where(col(WelcomeJoin.batch_id).is_(None), col(WelcomeJoin.due_at) <= now)
            .distinct()
            .limit(DUE_LIMIT)
        ).all()
    )


def greet_due(
    *, session: Session, campaign_id: str, now: datetime, effects: Effects
) -> list[str] | None:
    """Post every batch of the campaign due by `now` (a cancelled campaign's are settled
    unposted); return the ids of the posts made, or None when another process holds it."""
    campaign = claim_campaign(
        session=session, query=select(Campaign).where(col(Campaign.id) == campaign_id)
    )
    if campaign is None:
        return None
    rows = session.exec(
        select(WelcomeJoin).where(
            col(WelcomeJoin.campaign_id) == campaign_id, col(WelcomeJoin.batch_id).is_(None)
        )
    ).all()
    by_key = {(r.member_id, r.joined_at): r for r in rows}
    pending = [Join(r.member_id, r.joined_at, r.left_at) for r in rows]
    wait = timedelta(seconds=WelcomeParams.model_validate(campaign.params).batch_seconds)
    posted: list[str] = []
    for batch in due_batches(pending, wait, now):
        suffix = batch_id(campaign.id, batch.joins[0])
        if campaign.status != "cancelled" and _greet(
            session, campaign, batch, suffix, now, effects
        ):
            posted.append(f"{campaign.id}:welcome:{suffix}")
        for j in batch.joins:
            by_key[(j.member_id, j.joined_at)].batch_id = suffix
            session.add(by_key[(j.member_id, j.joined_at)])
    session.add(campaign)
    session.flush()
    return posted


def _greet(
    session: Session,
    campaign: Campaign,
    batch: Batch,
    suffix: str,
    now: datetime,
    effects: Effects,
) -> bool:
    """Queue one batch's welcome; False when nobody in it is still there."""
    greeted = batch.greeted
    if not greeted:
        return False
    names = names_of(session=session, group_id=campaign.group_id, member_ids=greeted)

    def members(named: Named) -> str:
        return " ".join(named.label(m) for m in greeted)

    values = {"title": campaign.title, "members": members, "count": len(greeted)}
    left = sorted({j.member_id for j in batch.joins} - set(greeted))
    return notifications.post(
        session=session,
        campaign=campaign,
        kind="welcome",
        suffix=suffix,
        rendered=render(str(campaign.params.get("text") or ""), values, names),
        data={"members": greeted, "left": left, "batch_opened_at": batch.opened_at.isoformat()},
        now=now,
        effects=effects,
    )
