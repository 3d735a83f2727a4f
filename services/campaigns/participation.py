"""What a batch of community events does to the campaigns running in their groups.

Each message counts once per campaign whose window holds its `occurred_at`: the
event's (source, id) is recorded in the same transaction as its effects, so a
redelivered event finds itself processed and changes nothing. Joins and leaves feed
invite campaigns, whose rows are keyed by campaign and invitee (idempotent by themselves).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import Session, select

from services.campaigns import feedback, invites, polls
from services.campaigns.directory import record_directory
from services.campaigns.effects import Effects
from services.campaigns.matching import Keyword, mentions_keyword
from services.campaigns.models import Campaign, CheckinDay, Participant, ProcessedEvent
from services.campaigns.params import (
    ChallengeParams,
    CheckinParams,
    EventParams,
    LotteryParams,
    PollParams,
)
from services.campaigns.rewards import Award, grant_many
from services.campaigns.running import Running, running_for
from services.campaigns.store import incoming_rows, is_postgres, rows_insert, rows_param
from services.common.contracts.events import Event, MemberJoined, MemberLeft, MessageCreated

__all__ = ["Tally", "apply_events", "mentions_keyword", "streak_through"]


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


Pair = tuple[str, str]  # (campaign id, member id)


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


class BatchPlan:
    """The effects of one batch on every open campaign, written in a handful of statements
    (one per table, whatever the number of campaigns and members)."""

    def __init__(self, *, session: Session, tz: ZoneInfo, now: datetime, effects: Effects) -> None:
        self.session = session
        self.tz = tz
        self.now = now
        self.effects = effects
        self.campaigns: dict[str, Campaign] = {}
        self.tallies: dict[Pair, Tally] = defaultdict(Tally)
        self.checkins: dict[tuple[str, str, date], MessageCreated] = {}
        self.awards: list[Award] = []
        self.ballots: list[polls.Ballot] = []
        self.multiple: dict[str, bool] = {}
        self.feedback: dict[str, list[MessageCreated]] = {}
        self._checkin_params: dict[str, CheckinParams] = {}

    def checkin_params(self, campaign_id: str) -> CheckinParams:
        """Return a check-in campaign's params, parsed once per batch."""
        if campaign_id not in self._checkin_params:
            campaign = self.campaigns[campaign_id]
            self._checkin_params[campaign_id] = CheckinParams.model_validate(campaign.params)
        return self._checkin_params[campaign_id]

    def count(self, campaign: Campaign, messages: list[MessageCreated]) -> None:
        """Gather what the campaign's kind makes of its messages."""
        self.campaigns[campaign.id] = campaign
        self.effects.participations[campaign.kind] += len(messages)
        if campaign.kind == "checkin":
            params = self.checkin_params(campaign.id)
            keyword = Keyword(params.keyword, params.match)
            for m in messages:
                if keyword.matches(m.data.text):
                    day = m.occurred_at.astimezone(self.tz).date()
                    self.checkins.setdefault((campaign.id, m.member_id, day), m)
            return
        if campaign.kind == "poll":
            self._count_votes(campaign, messages)
            return
        if campaign.kind == "feedback":
            self.feedback[campaign.id] = messages
            return
        if campaign.kind not in ("lottery", "challenge", "event"):
            return  # kinds that read no messages here (invite counts joins)
        entry: str | None = None
        if campaign.kind == "lottery":
            entry = LotteryParams.model_validate(campaign.params).entry_keyword
        attendance = None
        if campaign.kind == "event":
            attendance = EventParams.model_validate(campaign.params).attendance_keyword
        for m in messages:
            if attendance is not None and not mentions_keyword(attendance, m.data.text):
                continue
            entered = entry is None or mentions_keyword(entry, m.data.text)
            self.tallies[(campaign.id, m.member_id)].add(m.occurred_at, entered=entered)

    def _count_votes(self, campaign: Campaign, messages: list[MessageCreated]) -> None:
        """Every message counts (min_messages); a valid vote enters the member."""
        params = PollParams.model_validate(campaign.params)
        self.multiple[campaign.id] = params.multiple
        for m in messages:
            ballot = polls.read_ballot(
                params,
                campaign_id=campaign.id,
                member_id=m.member_id,
                text=m.data.text,
                at=m.occurred_at,
                message_id=m.data.message_id,
            )
            if ballot is not None:
                self.ballots.append(ballot)
            self.tallies[(campaign.id, m.member_id)].add(m.occurred_at, entered=ballot is not None)

    def count_invitees(self, counted: list[invites.Counted]) -> None:
        """Count each newly counted invitee for their inviter."""
        for c in counted:
            self.campaigns[c.campaign.id] = c.campaign
            self.tallies[(c.campaign.id, c.inviter_id)].add(c.joined_at, entered=True)

    def write(self) -> None:
        """Write check-ins, participations, streaks and grants."""
        new_checkins = self._insert_checkins()
        for campaign_id, member_id, day in new_checkins:
            m = self.checkins[(campaign_id, member_id, day)]
            self.tallies[(campaign_id, member_id)].add(m.occurred_at, entered=True)
            params = self.checkin_params(campaign_id)
            self.awards.append(
                Award(self.campaigns[campaign_id], member_id, f"checkin:{day}", params.points)
            )
        for campaign_id, messages in sorted(self.feedback.items()):
            stored = feedback.collect(
                session=self.session,
                campaign=self.campaigns[campaign_id],
                messages=messages,
                now=self.now,
            )
            for m in stored:
                self.tallies[(campaign_id, m.member_id)].add(m.occurred_at, entered=True)
        if self.ballots:
            polls.record_votes(session=self.session, ballots=self.ballots, multiple=self.multiple)
        totals = self._bump_participants()
        self._award_goals(totals)
        if new_checkins:
            self._award_streaks(new_checkins)
        grant_many(session=self.session, awards=self.awards, now=self.now, effects=self.effects)

    def _insert_checkins(self) -> list[tuple[str, str, date]]:
        if not self.checkins:
            return []
        table = CheckinDay.__table__  # type: ignore[attr-defined]
        rows = [{"campaign_id": c, "member_id": m, "day": d} for c, m, d in sorted(self.checkins)]
        insert, params = rows_insert(self.session, CheckinDay, rows)
        stmt = insert.on_conflict_do_nothing().returning(
            table.c.campaign_id, table.c.member_id, table.c.day
        )
        return [(c, m, d) for c, m, d in self.session.exec(stmt, params=params).all()]

    def _bump_participants(self) -> dict[Pair, int]:
        if not self.tallies:
            return {}
        table = Participant.__table__  # type: ignore[attr-defined]
        rows = [
            {
                "campaign_id": c,
                "member_id": m,
                "joined_at": t.first_at,
                "count": t.count,
                "entered": t.entered,
                "streak": 0,
            }
            for (c, m), t in sorted(self.tallies.items())
        ]
        stmt, params = rows_insert(self.session, Participant, rows)
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
        ).returning(table.c.campaign_id, table.c.member_id, table.c["count"])
        return {(c, m): int(n) for c, m, n in self.session.exec(stmt, params=params).all()}

    def _award_goals(self, totals: dict[Pair, int]) -> None:
        goals = {
            c.id: ChallengeParams.model_validate(c.params)
            for c in self.campaigns.values()
            if c.kind == "challenge"
        }
        attendance = {
            c.id: EventParams.model_validate(c.params).points
            for c in self.campaigns.values()
            if c.kind == "event"
        }
        for (campaign_id, member_id), total in totals.items():
            campaign = self.campaigns[campaign_id]
            before = total - self.tallies[(campaign_id, member_id)].count
            if (goal := goals.get(campaign_id)) and before < goal.goal_messages <= total:
                self.awards.append(Award(campaign, member_id, "challenge", goal.points, goal.badge))
            if attendance.get(campaign_id, 0) > 0:
                self.awards.append(
                    Award(campaign, member_id, "attendance", attendance[campaign_id])
                )

    def _award_streaks(self, new_checkins: list[tuple[str, str, date]]) -> None:
        pairs = sorted({(c, m) for c, m, _ in new_checkins})
        history: dict[Pair, list[date]] = defaultdict(list)
        for campaign_id, member_id, day in self._checkin_history(pairs):
            history[(campaign_id, member_id)].append(day)
        for campaign_id, member_id, day in new_checkins:
            campaign = self.campaigns[campaign_id]
            params = self.checkin_params(campaign_id)
            length = streak_through(history[(campaign_id, member_id)], day, params.grace_days)
            self.awards += [
                Award(campaign, member_id, f"streak:{r.days}", r.points, r.badge)
                for r in params.streak_rewards
                if length >= r.days
            ]
        streaks = [
            {
                "campaign_id": c,
                "member_id": m,
                "streak": streak_through(
                    history[(c, m)], max(history[(c, m)]), self.checkin_params(c).grace_days
                ),
            }
            for c, m in pairs
        ]
        self._set_streaks(streaks)

    def _checkin_history(self, pairs: list[Pair]) -> Sequence[tuple[str, str, date]]:
        """Every check-in day of the given (campaign, member) pairs: one statement."""
        table = CheckinDay.__table__  # type: ignore[attr-defined]
        columns = (table.c.campaign_id, table.c.member_id, table.c.day)
        if not is_postgres(self.session):
            pair = sa.tuple_(table.c.campaign_id, table.c.member_id)
            return self.session.exec(select(*columns).where(pair.in_(pairs))).all()
        rows = [{"campaign_id": c, "member_id": m} for c, m in pairs]
        incoming = incoming_rows(CheckinDay, ["campaign_id", "member_id"])
        query = select(*columns).join(
            incoming,
            sa.and_(
                table.c.campaign_id == incoming.c.campaign_id,
                table.c.member_id == incoming.c.member_id,
            ),
        )
        return self.session.exec(query, params=rows_param(rows)).all()

    def _set_streaks(self, streaks: list[dict[str, Any]]) -> None:
        """Set the participants' streaks: one UPDATE … FROM the rows on PostgreSQL."""
        table = Participant.__table__  # type: ignore[attr-defined]
        if not is_postgres(self.session):
            self.session.exec(
                sa.update(table)
                .where(
                    table.c.campaign_id == sa.bindparam("c"),
                    table.c.member_id == sa.bindparam("m"),
                )
                .values(streak=sa.bindparam("s")),
                params=[
                    {"c": r["campaign_id"], "m": r["member_id"], "s": r["streak"]} for r in streaks
                ],
            )
            return
        incoming = incoming_rows(Participant, ["campaign_id", "member_id", "streak"])
        self.session.exec(
            sa.update(table)
            .where(
                table.c.campaign_id == incoming.c.campaign_id,
                table.c.member_id == incoming.c.member_id,
            )
            .values(streak=incoming.c.streak),
            params=rows_param(streaks),
        )


def claim_unprocessed(
    *, session: Session, messages: list[MessageCreated], now: datetime
) -> list[MessageCreated]:
    """Record the messages not processed before and return them (first copy of each)."""
    # A concurrent transaction inserting the same keys makes this one wait for it and
    # then skip them, so two consumers never both apply an event.
    fresh: dict[tuple[str, str], MessageCreated] = {}
    for m in messages:
        fresh.setdefault((m.source, m.id), m)
    table = ProcessedEvent.__table__  # type: ignore[attr-defined]
    # Sorted so that racing transactions lock rows in the same order (no deadlock).
    rows = [{"source": s, "event_id": e, "processed_at": now} for s, e in sorted(fresh)]
    insert, params = rows_insert(session, ProcessedEvent, rows)
    stmt = insert.on_conflict_do_nothing().returning(table.c.source, table.c.event_id)
    claimed = {(s, e) for s, e in session.exec(stmt, params=params).all()}
    return [m for key, m in fresh.items() if key in claimed]


def apply_events(
    *,
    session: Session,
    events: list[Event],
    tz: ZoneInfo,
    now: datetime,
    effects: Effects,
    running: Running | None = None,
) -> None:
    """Apply a batch of events to the campaigns in one transaction (the caller commits).
    `running`: the poll's campaigns (loaded here when not given)."""
    record_directory(session=session, events=events)
    if running is None:
        running = running_for(session=session, events=events)
    plan = BatchPlan(session=session, tz=tz, now=now, effects=effects)
    joins = [e for e in events if isinstance(e, MemberJoined)]
    if joins:
        plan.count_invitees(invites.record_joins(session=session, joins=joins, running=running))
    invites.record_leaves(session=session, leaves=[e for e in events if isinstance(e, MemberLeft)])
    messages = [e for e in events if isinstance(e, MessageCreated)]
    if messages:
        _count_messages(session=session, plan=plan, messages=messages, running=running, now=now)
    plan.write()


def _count_messages(
    *,
    session: Session,
    plan: BatchPlan,
    messages: list[MessageCreated],
    running: Running,
    now: datetime,
) -> None:
    """Claim the messages that fall in the window of a campaign reading messages, and count
    them (a message no such campaign of its group reads costs no row)."""
    campaigns = running.reading_messages()
    if not campaigns:
        return
    windows: dict[str, list[tuple[datetime, datetime]]] = defaultdict(list)
    for c in campaigns:
        windows[c.group_id].append((c.starts_at, c.ends_at))
    relevant = [
        m
        for m in messages
        if any(start <= m.occurred_at < end for start, end in windows[m.group_id])
    ]
    if not relevant:
        return
    fresh = claim_unprocessed(session=session, messages=relevant, now=now)
    fresh_by_group: dict[str, list[MessageCreated]] = defaultdict(list)
    for m in fresh:
        fresh_by_group[m.group_id].append(m)
    for c in campaigns:
        start, end = c.starts_at, c.ends_at
        mine = [m for m in fresh_by_group[c.group_id] if start <= m.occurred_at < end]
        if mine:
            plan.count(c, mine)
