"""What a batch of community events does to the campaigns running in their groups.

Each message counts once per campaign whose window holds its `occurred_at`: the
event's (source, id) is recorded in the same transaction as its effects, so a
redelivered event finds itself processed and changes nothing.
"""

from __future__ import annotations

import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from datetime import date, datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import Session, col, select

from services.campaigns.models import (
    Campaign,
    ChallengeParams,
    CheckinDay,
    CheckinParams,
    EventParams,
    LotteryParams,
    Member,
    Participant,
    ProcessedEvent,
)
from services.campaigns.rewards import Effects, dialect_insert, grant
from services.common.events import Event, MemberJoined, MessageCreated

CHUNK = 500


def normalise(text: str) -> str:
    """Fold width, case and compatibility forms so ＃打卡 and 打卡 match alike."""
    return unicodedata.normalize("NFKC", text).casefold()


def mentions_keyword(keyword: str, text: str) -> bool:
    """Tell whether a message's text contains the keyword."""
    return normalise(keyword) in normalise(text)


def bump_participant(
    *,
    session: Session,
    campaign: Campaign,
    member_id: str,
    first_at: datetime,
    count: int,
    entered: bool,
) -> int:
    """Add `count` to a member's participation (creating it) and return the new count."""
    table = Participant.__table__  # type: ignore[attr-defined]
    stmt = dialect_insert(session, Participant).values(
        campaign_id=campaign.id,
        member_id=member_id,
        joined_at=first_at,
        count=count,
        entered=entered,
        streak=0,
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["campaign_id", "member_id"],
        set_={
            "count": table.c["count"] + stmt.excluded["count"],
            "entered": sa.or_(table.c.entered, stmt.excluded.entered),
            "joined_at": sa.case(
                (stmt.excluded.joined_at < table.c.joined_at, stmt.excluded.joined_at),
                else_=table.c.joined_at,
            ),
        },
    ).returning(table.c["count"])
    return int(session.exec(stmt).scalar_one())


def _firsts(messages: Iterable[MessageCreated]) -> tuple[Counter[str], dict[str, datetime]]:
    counts: Counter[str] = Counter()
    first: dict[str, datetime] = {}
    for m in messages:
        counts[m.member_id] += 1
        if m.member_id not in first or m.occurred_at < first[m.member_id]:
            first[m.member_id] = m.occurred_at
    return counts, first


def streak_through(days: list[date], day: date, grace_days: int) -> int:
    """Return the length of the run of check-in days holding `day` (gaps ≤ grace_days)."""
    ordered = sorted(set(days))
    start = 0
    for i in range(1, len(ordered) + 1):
        if i == len(ordered) or (ordered[i] - ordered[i - 1]).days - 1 > grace_days:
            if ordered[start] <= day <= ordered[i - 1]:
                return i - start
            start = i
    return 0


def apply_checkin(
    *,
    session: Session,
    campaign: Campaign,
    messages: list[MessageCreated],
    tz: ZoneInfo,
    now: datetime,
    effects: Effects,
) -> None:
    """Check members in once per local day; grant points and streak rewards."""
    params = CheckinParams.model_validate(campaign.params)
    for m in messages:
        if not mentions_keyword(params.keyword, m.data.text):
            continue
        day = m.occurred_at.astimezone(tz).date()
        new = session.exec(
            dialect_insert(session, CheckinDay)
            .values(campaign_id=campaign.id, member_id=m.member_id, day=day)
            .on_conflict_do_nothing()
            .returning(CheckinDay.__table__.c.day)  # type: ignore[attr-defined]
        ).first()
        if new is None:
            continue
        bump_participant(
            session=session,
            campaign=campaign,
            member_id=m.member_id,
            first_at=m.occurred_at,
            count=1,
            entered=True,
        )
        grant(
            session=session,
            campaign=campaign,
            member_id=m.member_id,
            reason=f"checkin:{day.isoformat()}",
            points=params.points,
            badge=None,
            now=now,
            effects=effects,
        )
        days: list[date] = list(
            session.exec(
                select(col(CheckinDay.day)).where(
                    col(CheckinDay.campaign_id) == campaign.id,
                    col(CheckinDay.member_id) == m.member_id,
                )
            ).all()
        )
        length = streak_through(days, day, params.grace_days)
        session.exec(
            sa.update(Participant)
            .where(
                col(Participant.campaign_id) == campaign.id,
                col(Participant.member_id) == m.member_id,
            )
            .values(streak=streak_through(days, max(days), params.grace_days))
        )
        for reward in params.streak_rewards:
            if length >= reward.days:
                grant(
                    session=session,
                    campaign=campaign,
                    member_id=m.member_id,
                    reason=f"streak:{reward.days}",
                    points=reward.points,
                    badge=reward.badge,
                    now=now,
                    effects=effects,
                )


def apply_challenge(
    *,
    session: Session,
    campaign: Campaign,
    messages: list[MessageCreated],
    tz: ZoneInfo,
    now: datetime,
    effects: Effects,
) -> None:
    """Count messages; grant the reward when a member reaches the goal."""
    params = ChallengeParams.model_validate(campaign.params)
    counts, first = _firsts(messages)
    for member_id, n in counts.items():
        total = bump_participant(
            session=session,
            campaign=campaign,
            member_id=member_id,
            first_at=first[member_id],
            count=n,
            entered=True,
        )
        if total - n < params.goal_messages <= total:
            grant(
                session=session,
                campaign=campaign,
                member_id=member_id,
                reason="challenge",
                points=params.points,
                badge=params.badge,
                now=now,
                effects=effects,
            )


def apply_lottery(
    *,
    session: Session,
    campaign: Campaign,
    messages: list[MessageCreated],
    tz: ZoneInfo,
    now: datetime,
    effects: Effects,
) -> None:
    """Count messages and enter members who used the entry keyword (or any message)."""
    params = LotteryParams.model_validate(campaign.params)
    counts, first = _firsts(messages)
    entered = {
        m.member_id
        for m in messages
        if params.entry_keyword is None or mentions_keyword(params.entry_keyword, m.data.text)
    }
    for member_id, n in counts.items():
        bump_participant(
            session=session,
            campaign=campaign,
            member_id=member_id,
            first_at=first[member_id],
            count=n,
            entered=member_id in entered,
        )


def apply_event(
    *,
    session: Session,
    campaign: Campaign,
    messages: list[MessageCreated],
    tz: ZoneInfo,
    now: datetime,
    effects: Effects,
) -> None:
    """Record attendance (the keyword, or any message without one) and grant its points."""
    params = EventParams.model_validate(campaign.params)
    keyword = params.attendance_keyword
    attending = [m for m in messages if keyword is None or mentions_keyword(keyword, m.data.text)]
    counts, first = _firsts(attending)
    for member_id, n in counts.items():
        bump_participant(
            session=session,
            campaign=campaign,
            member_id=member_id,
            first_at=first[member_id],
            count=n,
            entered=True,
        )
        if params.points > 0:
            grant(
                session=session,
                campaign=campaign,
                member_id=member_id,
                reason="attendance",
                points=params.points,
                badge=None,
                now=now,
                effects=effects,
            )


Apply = Callable[..., None]
APPLY: dict[str, Apply] = {
    "checkin": apply_checkin,
    "lottery": apply_lottery,
    "challenge": apply_challenge,
    "event": apply_event,
}


def record_joins(*, session: Session, joins: list[MemberJoined]) -> None:
    """Remember each member's latest join time per group."""
    latest: dict[tuple[str, str], datetime] = {}
    for j in joins:
        key = (j.group_id, j.member_id)
        if key not in latest or j.occurred_at > latest[key]:
            latest[key] = j.occurred_at
    table = Member.__table__  # type: ignore[attr-defined]
    for (group_id, member_id), joined_at in latest.items():
        stmt = dialect_insert(session, Member).values(
            group_id=group_id, member_id=member_id, joined_at=joined_at
        )
        session.exec(
            stmt.on_conflict_do_update(
                index_elements=["group_id", "member_id"],
                set_={
                    "joined_at": sa.case(
                        (stmt.excluded.joined_at > table.c.joined_at, stmt.excluded.joined_at),
                        else_=table.c.joined_at,
                    )
                },
            )
        )


def open_campaigns(*, session: Session, messages: list[MessageCreated]) -> list[Campaign]:
    """Load the campaigns whose window overlaps the messages' times in their groups."""
    groups = sorted({m.group_id for m in messages})
    lo = min(m.occurred_at for m in messages)
    hi = max(m.occurred_at for m in messages)
    return list(
        session.exec(
            select(Campaign).where(
                col(Campaign.group_id).in_(groups),
                col(Campaign.status) != "cancelled",
                col(Campaign.starts_at) <= hi,
                col(Campaign.ends_at) > lo,
                sa.or_(col(Campaign.kind) != "lottery", col(Campaign.drawn_at).is_(None)),
            )
        ).all()
    )


def claim_unprocessed(
    *, session: Session, messages: list[MessageCreated], now: datetime
) -> list[MessageCreated]:
    """Record the messages not processed before and return them (first copy of each)."""
    fresh: dict[tuple[str, str], MessageCreated] = {}
    for m in messages:
        fresh.setdefault((m.source, m.id), m)
    keys = list(fresh)
    for i in range(0, len(keys), CHUNK):
        chunk = keys[i : i + CHUNK]
        seen = session.exec(
            select(ProcessedEvent.source, ProcessedEvent.event_id).where(
                sa.tuple_(col(ProcessedEvent.source), col(ProcessedEvent.event_id)).in_(chunk)
            )
        ).all()
        for key in seen:
            fresh.pop((key[0], key[1]), None)
    if fresh:
        session.exec(
            sa.insert(ProcessedEvent),
            params=[{"source": s, "event_id": e, "processed_at": now} for s, e in fresh],
        )
    return list(fresh.values())


def apply_events(
    *, session: Session, events: list[Event], tz: ZoneInfo, now: datetime, effects: Effects
) -> None:
    """Apply a batch of events to the campaigns in one transaction (the caller commits)."""
    joins = [e for e in events if isinstance(e, MemberJoined)]
    if joins:
        record_joins(session=session, joins=joins)
    messages = [e for e in events if isinstance(e, MessageCreated)]
    if not messages:
        return
    campaigns = open_campaigns(session=session, messages=messages)
    if not campaigns:
        return
    by_group: dict[str, list[Campaign]] = defaultdict(list)
    for c in campaigns:
        by_group[c.group_id].append(c)
    relevant = [
        m
        for m in messages
        if any(c.starts_at <= m.occurred_at < c.ends_at for c in by_group[m.group_id])
    ]
    if not relevant:
        return
    fresh = claim_unprocessed(session=session, messages=relevant, now=now)
    for c in campaigns:
        mine = [
            m
            for m in fresh
            if m.group_id == c.group_id and c.starts_at <= m.occurred_at < c.ends_at
        ]
        if mine:
            APPLY[c.kind](
                session=session, campaign=c, messages=mine, tz=tz, now=now, effects=effects
            )
            effects.participations[c.kind] += len(mine)
