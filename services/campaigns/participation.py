"""What a batch of community events does to the campaigns running in their groups.

Each message counts once per campaign whose window holds its `occurred_at`: the
event's (source, id) is recorded in the same transaction as its effects, so a
redelivered event finds itself processed and changes nothing.
"""

from __future__ import annotations

import unicodedata
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
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
from services.campaigns.rewards import Award, Effects, dialect_insert, grant_many
from services.common.events import Event, MemberJoined, MessageCreated

CHUNK = 500


def normalise(text: str) -> str:
    """Fold width, case and compatibility forms so ＃打卡 and 打卡 match alike."""
    return unicodedata.normalize("NFKC", text).casefold()


def mentions_keyword(keyword: str, text: str) -> bool:
    """Tell whether a message's text contains the keyword."""
    return normalise(keyword) in normalise(text)


@dataclass
class Tally:
    """One member's participation in a batch: messages counted, first time, entry."""

    count: int = 0
    first_at: datetime | None = None
    entered: bool = False

    def add(self, at: datetime, *, entered: bool) -> None:
        self.count += 1
        self.first_at = at if self.first_at is None or at < self.first_at else self.first_at
        self.entered = self.entered or entered


def bump_participants(
    *, session: Session, campaign: Campaign, tallies: dict[str, Tally]
) -> dict[str, int]:
    """Add each member's tally to their participation (one upsert); return the new counts."""
    if not tallies:
        return {}
    table = Participant.__table__  # type: ignore[attr-defined]
    stmt = dialect_insert(session, Participant).values(
        [
            {
                "campaign_id": campaign.id,
                "member_id": member_id,
                "joined_at": t.first_at,
                "count": t.count,
                "entered": t.entered,
                "streak": 0,
            }
            for member_id, t in tallies.items()
        ]
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
    ).returning(table.c.member_id, table.c["count"])
    return {m: int(c) for m, c in session.exec(stmt).all()}


def tally(
    messages: Iterable[MessageCreated], entered: Callable[[MessageCreated], bool]
) -> dict[str, Tally]:
    """Sum the messages per member."""
    tallies: dict[str, Tally] = defaultdict(Tally)
    for m in messages:
        tallies[m.member_id].add(m.occurred_at, entered=entered(m))
    return dict(tallies)


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


def _new_checkins(
    *, session: Session, campaign: Campaign, checkins: dict[tuple[str, date], MessageCreated]
) -> list[tuple[str, date]]:
    table = CheckinDay.__table__  # type: ignore[attr-defined]
    stmt = (
        dialect_insert(session, CheckinDay)
        .values([{"campaign_id": campaign.id, "member_id": m, "day": d} for m, d in checkins])
        .on_conflict_do_nothing()
        .returning(table.c.member_id, table.c.day)
    )
    return [(m, d) for m, d in session.exec(stmt).all()]


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
    checkins: dict[tuple[str, date], MessageCreated] = {}
    for m in messages:
        if mentions_keyword(params.keyword, m.data.text):
            checkins.setdefault((m.member_id, m.occurred_at.astimezone(tz).date()), m)
    if not checkins:
        return
    new = _new_checkins(session=session, campaign=campaign, checkins=checkins)
    if not new:
        return
    bump_participants(
        session=session,
        campaign=campaign,
        tallies=tally((checkins[k] for k in new), lambda _: True),
    )
    awards = [Award(m, f"checkin:{d.isoformat()}", params.points) for m, d in new]
    members = sorted({m for m, _ in new})
    history: dict[str, list[date]] = defaultdict(list)
    for member_id, day in session.exec(
        select(col(CheckinDay.member_id), col(CheckinDay.day)).where(
            col(CheckinDay.campaign_id) == campaign.id, col(CheckinDay.member_id).in_(members)
        )
    ).all():
        history[member_id].append(day)
    for member_id, day in new:
        length = streak_through(history[member_id], day, params.grace_days)
        awards += [
            Award(member_id, f"streak:{r.days}", r.points, r.badge)
            for r in params.streak_rewards
            if length >= r.days
        ]
    table = Participant.__table__  # type: ignore[attr-defined]
    session.exec(
        sa.update(table)
        .where(table.c.campaign_id == campaign.id, table.c.member_id == sa.bindparam("m"))
        .values(streak=sa.bindparam("s")),
        params=[
            {"m": m, "s": streak_through(history[m], max(history[m]), params.grace_days)}
            for m in members
        ],
    )
    grant_many(session=session, campaign=campaign, awards=awards, now=now, effects=effects)


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
    tallies = tally(messages, lambda _: True)
    totals = bump_participants(session=session, campaign=campaign, tallies=tallies)
    awards = [
        Award(member_id, "challenge", params.points, params.badge)
        for member_id, total in totals.items()
        if total - tallies[member_id].count < params.goal_messages <= total
    ]
    grant_many(session=session, campaign=campaign, awards=awards, now=now, effects=effects)


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
    keyword = LotteryParams.model_validate(campaign.params).entry_keyword
    tallies = tally(messages, lambda m: keyword is None or mentions_keyword(keyword, m.data.text))
    bump_participants(session=session, campaign=campaign, tallies=tallies)


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
    tallies = tally(attending, lambda _: True)
    bump_participants(session=session, campaign=campaign, tallies=tallies)
    if params.points > 0:
        awards = [Award(m, "attendance", params.points) for m in tallies]
        grant_many(session=session, campaign=campaign, awards=awards, now=now, effects=effects)


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
