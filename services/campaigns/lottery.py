"""Verifiable lottery draws: HMAC-SHA256 ranking of the eligible entrants under a committed seed.

Algorithm "hmac-sha256-rank-v1": the seed is 32 random bytes made at the start, and
SHA-256(seed bytes) is published then. At the end every eligible entrant gets the
score HMAC-SHA256(key=seed bytes, msg=UTF-8 member id); entrants ranked by score
(bytes, ascending) take the prize units in order: every unit of the first prize,
then of the second, and so on. A reroll continues down the same ranking past
everyone who has already won.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select

from services.campaigns import notifications
from services.campaigns.effects import Effects
from services.campaigns.eligibility import eligible_members
from services.campaigns.models import Campaign, Participant, PrizeStock, Winner
from services.campaigns.rewards import grant, take_prize
from services.campaigns.schemas import WinnerPublic, WinnersPublic
from services.campaigns.store import find_campaign, lock_campaign
from services.common.errors import Conflict, NotFound


def new_seed() -> tuple[str, str]:
    """Return a random 32-byte seed (hex) and the hex SHA-256 of its bytes."""
    seed = os.urandom(32)
    return seed.hex(), hashlib.sha256(seed).hexdigest()


def rank(seed_hex: str, member_ids: list[str]) -> list[str]:
    """Order member ids by HMAC-SHA256(seed, member id), the draw order."""
    key = bytes.fromhex(seed_hex)
    return sorted(
        sorted(member_ids),
        key=lambda m: hmac.new(key, m.encode("utf-8"), hashlib.sha256).digest(),
    )


def eligible_entrants(*, session: Session, campaign: Campaign) -> list[str]:
    """Return the sorted ids of the entrants who may win now (earlier winners excluded)."""
    rules = campaign.params.get("eligibility") or {}
    query = eligible_members(campaign).where(
        ~sa.exists().where(
            col(Winner.campaign_id) == campaign.id,
            col(Winner.member_id) == Participant.member_id,
        ),
    )
    if rules.get("exclude_previous_winners"):
        query = query.where(
            ~sa.exists().where(
                col(Winner.group_id) == campaign.group_id,
                col(Winner.member_id) == Participant.member_id,
                col(Winner.campaign_id) != campaign.id,
                col(Winner.status) != "forfeited",
            )
        )
    return sorted(session.exec(query).all())


def _fill(
    *,
    session: Session,
    campaign: Campaign,
    eligible: list[str],
    round: int,
    now: datetime,
    effects: Effects,
) -> list[dict[str, str]]:
    assert campaign.seed is not None
    ranked = iter(enumerate(rank(campaign.seed, eligible)))
    won: list[dict[str, str]] = []
    stock = session.exec(
        select(PrizeStock)
        .where(col(PrizeStock.campaign_id) == campaign.id)
        .order_by(col(PrizeStock.position))
    ).all()
    for prize in stock:
        for _ in range(prize.remaining):
            for place, member_id in ranked:
                name = take_prize(
                    session=session,
                    campaign=campaign,
                    member_id=member_id,
                    position=prize.position,
                    round=round,
                    rank=place,
                    now=now,
                    effects=effects,
                )
                if name is not None:
                    won.append({"member_id": member_id, "prize": name})
                    break
            else:
                return won
    return won


def draw(*, session: Session, campaign: Campaign, now: datetime, effects: Effects) -> None:
    """Draw the winners at the end and queue the result notification."""
    eligible = eligible_entrants(session=session, campaign=campaign)
    won = _fill(
        session=session, campaign=campaign, eligible=eligible, round=0, now=now, effects=effects
    )
    campaign.drawn_at = now
    notifications.winners(
        session=session,
        campaign=campaign,
        round=0,
        winners=won,
        eligible=eligible,
        now=now,
        effects=effects,
    )


def _forfeit(
    *, session: Session, campaign: Campaign, member_id: str, now: datetime, effects: Effects
) -> None:
    """Forfeit a winner's unclaimed prize: the unit returns to the stock, its points go back."""
    winner = session.get(Winner, (campaign.id, member_id))
    if winner is None or winner.status == "forfeited":
        raise Conflict(f"{member_id} holds no prize in this lottery")
    if winner.status == "claimed":
        raise Conflict(f"{member_id} already claimed the prize")
    winner.status = "forfeited"
    session.exec(
        sa.update(PrizeStock)
        .where(
            col(PrizeStock.campaign_id) == campaign.id,
            col(PrizeStock.position) == winner.position,
        )
        .values(remaining=PrizeStock.remaining + 1)
    )
    stock = session.get(PrizeStock, (campaign.id, winner.position))
    if stock is not None and stock.points:
        grant(
            session=session,
            campaign=campaign,
            member_id=member_id,
            reason=f"forfeit:{winner.prize}",
            points=-stock.points,
            badge=None,
            now=now,
            effects=effects,
        )


def reroll(
    *,
    session: Session,
    group_id: str,
    campaign_id: str,
    member_ids: list[str],
    now: datetime,
    effects: Effects,
) -> Campaign:
    """Forfeit the given winners' unclaimed prizes and draw them again among the others."""
    campaign = lock_campaign(session=session, group_id=group_id, campaign_id=campaign_id)
    if campaign.kind != "lottery" or campaign.drawn_at is None:
        raise Conflict("the lottery has not been drawn yet")
    for member_id in dict.fromkeys(member_ids):
        _forfeit(session=session, campaign=campaign, member_id=member_id, now=now, effects=effects)
    session.flush()
    campaign.draw_round += 1
    eligible = eligible_entrants(session=session, campaign=campaign)
    won = _fill(
        session=session,
        campaign=campaign,
        eligible=eligible,
        round=campaign.draw_round,
        now=now,
        effects=effects,
    )
    notifications.winners(
        session=session,
        campaign=campaign,
        round=campaign.draw_round,
        winners=won,
        eligible=eligible,
        now=now,
        effects=effects,
    )
    session.add(campaign)
    session.flush()
    return campaign


def claim(*, session: Session, group_id: str, campaign_id: str, member_id: str) -> Winner:
    """Mark a winner's prize as handed over, so a reroll can no longer take it."""
    winner = session.exec(
        select(Winner).where(
            col(Winner.campaign_id) == campaign_id,
            col(Winner.group_id) == group_id,
            col(Winner.member_id) == member_id,
        )
    ).first()
    if winner is None:
        raise NotFound("no such winner")
    if winner.status == "forfeited":
        raise Conflict(f"{member_id} forfeited the prize")
    winner.status = "claimed"
    session.add(winner)
    session.flush()
    return winner


def winners(*, session: Session, group_id: str, campaign_id: str) -> WinnersPublic:
    """Return a lottery's winners by round and rank, and its seed once drawn."""
    campaign = find_campaign(session=session, group_id=group_id, campaign_id=campaign_id)
    rows = session.exec(
        select(Winner)
        .where(col(Winner.campaign_id) == campaign.id)
        .order_by(col(Winner.round), col(Winner.rank))
    ).all()
    return WinnersPublic(
        seed_sha256=campaign.seed_sha256,
        seed=campaign.seed if campaign.drawn_at is not None else None,
        drawn_at=campaign.drawn_at,
        winners=[WinnerPublic.of(w) for w in rows],
    )
