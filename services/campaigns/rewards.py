"""Grants written exactly once, prize stock that never goes below zero, and the points ledger."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from services.campaigns.effects import Effects
from services.campaigns.models import Campaign, Grant, PrizeStock, Winner
from services.campaigns.schemas import LedgerEntry, MemberRewards, PointsLeaderboard, PointsRow
from services.campaigns.store import built, dialect_insert
from services.common.contracts.notifications import RewardGranted
from services.common.db import insert_rows, keyset_page, new_id, rows_params


@dataclass(frozen=True)
class Award:
    """A reward for one member: points and/or a badge, once per campaign and reason."""

    campaign: Campaign
    member_id: str
    reason: str
    points: int = 0
    badge: str | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.campaign.id, self.member_id, self.reason)


def grant_many(
    *, session: Session, awards: list[Award], now: datetime, effects: Effects
) -> list[Award]:
    """Insert the grants not given before, and their outbox records, in two statements."""
    unique = sorted({a.key: a for a in awards}.values(), key=lambda a: a.key)
    if not unique:
        return []
    ids = {a.key: new_id("g") for a in unique}
    rows = [
        {
            "id": ids[a.key],
            "group_id": a.campaign.group_id,
            "campaign_id": a.campaign.id,
            "kind": a.campaign.kind,
            "member_id": a.member_id,
            "reason": a.reason,
            "points": a.points,
            "badge": a.badge,
            "created_at": now,
        }
        for a in unique
    ]
    stmt = built(session, "grants", _grants)
    found = session.exec(stmt, params=rows_params(session, rows)).all()
    inserted = {(c, m, r) for c, m, r in found}
    granted = [a for a in unique if a.key in inserted]
    effects.granted(
        session,
        [
            RewardGranted(
                id=ids[a.key],
                group_id=a.campaign.group_id,
                campaign_id=a.campaign.id,
                member_id=a.member_id,
                reason=a.reason,
                points=a.points,
                badge=a.badge,
                created_at=now,
            )
            for a in granted
        ],
    )
    for a in granted:
        effects.grants[a.campaign.kind] += 1
        effects.points[a.campaign.kind] += a.points
    return granted


GRANT_COLUMNS = (
    "id",
    "group_id",
    "campaign_id",
    "kind",
    "member_id",
    "reason",
    "points",
    "badge",
    "created_at",
)


def _grants(postgres: bool) -> Any:
    table = Grant.__table__  # type: ignore[attr-defined]
    insert = insert_rows(Grant, GRANT_COLUMNS, postgres=postgres)
    return insert.on_conflict_do_nothing(
        index_elements=["campaign_id", "member_id", "reason"]
    ).returning(table.c.campaign_id, table.c.member_id, table.c.reason)


def grant(
    *,
    session: Session,
    campaign: Campaign,
    member_id: str,
    reason: str,
    points: int,
    badge: str | None,
    now: datetime,
    effects: Effects,
) -> bool:
    """Grant one reward unless this campaign, member and reason has one; say if it was new."""
    award = Award(campaign, member_id, reason, points, badge)
    return bool(grant_many(session=session, awards=[award], now=now, effects=effects))


def take_prize(
    *,
    session: Session,
    campaign: Campaign,
    member_id: str,
    position: int,
    round: int,
    rank: int,
    now: datetime,
    effects: Effects,
) -> str | None:
    """Take one unit of a prize for a member and grant it; return the prize name or None."""
    # A savepoint rolls back when the stock is empty or the member already won, so the
    # stock, the winners and the grants always agree.
    with session.begin_nested() as savepoint:
        taken = session.exec(
            sa.update(PrizeStock)
            .where(
                col(PrizeStock.campaign_id) == campaign.id,
                col(PrizeStock.position) == position,
                col(PrizeStock.remaining) > 0,
            )
            .values(remaining=PrizeStock.remaining - 1)
            .returning(PrizeStock.__table__.c.name, PrizeStock.__table__.c.points)  # type: ignore[attr-defined]
        ).first()
        if taken is None:
            savepoint.rollback()
            return None
        name, points = taken
        won = session.exec(
            dialect_insert(session, Winner)
            .values(
                campaign_id=campaign.id,
                member_id=member_id,
                group_id=campaign.group_id,
                prize=name,
                position=position,
                round=round,
                rank=rank,
                status="won",
                created_at=now,
            )
            .on_conflict_do_nothing(index_elements=["campaign_id", "member_id"])
            .returning(Winner.__table__.c.member_id)  # type: ignore[attr-defined]
        ).first()
        if won is None or not grant(
            session=session,
            campaign=campaign,
            member_id=member_id,
            reason=f"prize:{name}",
            points=points,
            badge=None,
            now=now,
            effects=effects,
        ):
            savepoint.rollback()
            return None
    return str(name)


def member_rewards(
    *, session: Session, group_id: str, member_id: str, limit: int, cursor: str | None
) -> MemberRewards:
    """Return a member's points balance, badges and ledger page (newest first) in a group."""
    mine = (col(Grant.group_id) == group_id, col(Grant.member_id) == member_id)
    points = session.exec(select(func.coalesce(func.sum(Grant.points), 0)).where(*mine)).one()
    badges = session.exec(
        select(Grant.badge)
        .where(*mine, col(Grant.badge).is_not(None))
        .group_by(Grant.badge)
        .order_by(func.min(Grant.id))
    ).all()
    rows, next_cursor = keyset_page(
        session, select(Grant).where(*mine), Grant.id, limit=limit, cursor=cursor, descending=True
    )
    return MemberRewards(
        member_id=member_id,
        points=int(points),
        badges=[b for b in badges if b],
        ledger=[
            LedgerEntry(
                campaign_id=g.campaign_id,
                reason=g.reason,
                points=g.points,
                badge=g.badge,
                created_at=g.created_at,
            )
            for g in rows
        ],
        next_cursor=next_cursor,
    )


def points_leaderboard(
    *, session: Session, group_id: str, limit: int, campaign_id: str | None
) -> PointsLeaderboard:
    """Return the members with the most points in a group (or one campaign)."""
    total = func.sum(Grant.points).label("points")
    query = (
        select(Grant.member_id, total)
        .where(col(Grant.group_id) == group_id)
        .group_by(Grant.member_id)
        .having(func.sum(Grant.points) > 0)
        .order_by(total.desc(), col(Grant.member_id))
        .limit(limit)
    )
    if campaign_id:
        query = query.where(col(Grant.campaign_id) == campaign_id)
    return PointsLeaderboard(
        members=[PointsRow(member_id=m, points=int(p)) for m, p in session.exec(query).all()]
    )
