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
from services.campaigns.store import built, is_postgres
from services.common.contracts.events import Event, MemberJoined, MemberLeft, MessageCreated
from services.common.db import insert_rows, rows_params

__all__ = ["Tally", "apply_events", "mentions_keyword", "streak_through"]


@dataclass(slots=True)
class Tally:
    """One member's participation in a batch: messages counted, first time, entry."""

    count: int = 0
    first_at: datetime | None = None
    entered: bool = False

    def add(self, at: datetime, entered: bool) -> None:
        self.count += 1
        self.first_at = at if self.first_at is None or at < self.first_at else self.first_at
        self.entered = self.entered or entered


Pair = tuple[str, str]  # (campaign id, member id)
CheckinKey = tuple[str, str, date]  # (campaign id, member id, day)


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
        cid, tallies = campaign.id, self.tallies
        for m in messages:
            if attendance is not None and not mentions_keyword(attendance, m.data.text):
                continue
            entered = entry is None or mentions_keyword(entry, m.data.text)
            tallies[(cid, m.member_id)].add(m.occurred_at, entered)

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
            self.tallies[(campaign.id, m.member_id)].add(m.occurred_at, ballot is not None)

    def count_invitees(self, counted: list[invites.Counted]) -> None:
        """Count each newly counted invitee for their inviter."""
        for c in counted:
            self.campaigns[c.campaign.id] = c.campaign
            self.tallies[(c.campaign.id, c.inviter_id)].add(c.joined_at, True)

    def write(self) -> None:
        """Write check-ins, participations (with their streaks) and grants."""
        new_checkins, history = self._insert_checkins()
        for campaign_id, member_id, day in new_checkins:
            m = self.checkins[(campaign_id, member_id, day)]
            self.tallies[(campaign_id, member_id)].add(m.occurred_at, True)
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
                self.tallies[(campaign_id, m.member_id)].add(m.occurred_at, True)
        if self.ballots:
            polls.record_votes(session=self.session, ballots=self.ballots, multiple=self.multiple)
        streaks = self._award_streaks(new_checkins, history) if new_checkins else {}
        totals = self._bump_participants(streaks)
        self._award_goals(totals)
        grant_many(session=self.session, awards=self.awards, now=self.now, effects=self.effects)

    def _insert_checkins(self) -> tuple[list[CheckinKey], dict[Pair, list[date]]]:
        """Insert the batch's check-in days; return the new ones and every check-in day of
        the (campaign, member) pairs that have a new one (the new ones included).

        PostgreSQL: one statement (the insert in a CTE, the earlier days of its pairs read
        beside it: the CTE's rows are not yet visible to the statement's own read, so the
        two parts never overlap). SQLite: the insert, then the read."""
        if not self.checkins:
            return [], {}
        rows = [{"campaign_id": c, "member_id": m, "day": d} for c, m, d in sorted(self.checkins)]
        stmt = built(self.session, "checkin_days", _checkin_days)
        found = self.session.exec(stmt, params=rows_params(self.session, rows)).all()
        if is_postgres(self.session):
            new = [(c, m, d) for c, m, d, is_new in found if is_new]
            days: Sequence[tuple[str, str, date]] = [(c, m, d) for c, m, d, _ in found]
        else:
            new = [(c, m, d) for c, m, d in found]
            days = self._history({(c, m) for c, m, _ in new})
        history: dict[Pair, list[date]] = defaultdict(list)
        for c, m, d in days:
            history[(c, m)].append(d)
        return new, history

    def _history(self, pairs: set[Pair]) -> Sequence[tuple[str, str, date]]:
        """SQLite: every check-in day of the given (campaign, member) pairs."""
        if not pairs:
            return []
        table = CheckinDay.__table__  # type: ignore[attr-defined]
        pair = sa.tuple_(table.c.campaign_id, table.c.member_id)
        query = select(table.c.campaign_id, table.c.member_id, table.c.day)
        return self.session.exec(query.where(pair.in_(sorted(pairs)))).all()

    def _bump_participants(self, streaks: dict[Pair, int]) -> dict[Pair, int]:
        """Add the batch's counts; set the streak of the pairs that checked in (0 in a row
        means "keep": a pair with a new check-in has a streak of at least 1)."""
        if not self.tallies:
            return {}
        rows = [
            {
                "campaign_id": c,
                "member_id": m,
                "joined_at": t.first_at,
                "count": t.count,
                "entered": t.entered,
                "streak": streaks.get((c, m), 0),
            }
            for (c, m), t in sorted(self.tallies.items())
        ]
        stmt = built(self.session, "participants", _participants)
        found = self.session.exec(stmt, params=rows_params(self.session, rows)).all()
        return {(c, m): int(n) for c, m, n in found}

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
        if not goals and not attendance:
            return
        for (campaign_id, member_id), total in totals.items():
            campaign = self.campaigns[campaign_id]
            before = total - self.tallies[(campaign_id, member_id)].count
            if (goal := goals.get(campaign_id)) and before < goal.goal_messages <= total:
                self.awards.append(Award(campaign, member_id, "challenge", goal.points, goal.badge))
            if attendance.get(campaign_id, 0) > 0:
                self.awards.append(
                    Award(campaign, member_id, "attendance", attendance[campaign_id])
                )

    def _award_streaks(
        self, new_checkins: list[CheckinKey], history: dict[Pair, list[date]]
    ) -> dict[Pair, int]:
        """Award the streak rewards the new check-ins reach; return each pair's streak (the
        run holding its latest check-in day)."""
        for campaign_id, member_id, day in new_checkins:
            campaign = self.campaigns[campaign_id]
            params = self.checkin_params(campaign_id)
            length = streak_through(history[(campaign_id, member_id)], day, params.grace_days)
            self.awards += [
                Award(campaign, member_id, f"streak:{r.days}", r.points, r.badge)
                for r in params.streak_rewards
                if length >= r.days
            ]
        return {
            (c, m): streak_through(
                history[(c, m)], max(history[(c, m)]), self.checkin_params(c).grace_days
            )
            for c, m in {(c, m) for c, m, _ in new_checkins}
        }


def _checkin_days(postgres: bool) -> Any:
    """The check-in days insert (see BatchPlan._insert_checkins): on PostgreSQL it returns
    (campaign, member, day, new) for the new days and the earlier days of their pairs."""
    table = CheckinDay.__table__  # type: ignore[attr-defined]
    insert = insert_rows(CheckinDay, ("campaign_id", "member_id", "day"), postgres=postgres)
    insert = insert.on_conflict_do_nothing().returning(
        table.c.campaign_id, table.c.member_id, table.c.day
    )
    if not postgres:
        return insert
    fresh = insert.cte("fresh")
    pairs = sa.select(fresh.c.campaign_id, fresh.c.member_id).distinct().subquery("pairs")
    earlier = sa.select(table.c.campaign_id, table.c.member_id, table.c.day, sa.false()).join(
        pairs,
        sa.and_(table.c.campaign_id == pairs.c.campaign_id, table.c.member_id == pairs.c.member_id),
    )
    return sa.union_all(
        sa.select(fresh.c.campaign_id, fresh.c.member_id, fresh.c.day, sa.true()), earlier
    )


def _participants(postgres: bool) -> Any:
    """The participants upsert: counts added, `entered` once true, the earliest `joined_at`,
    the streak set when the row brings one (> 0); returns each row's new count."""
    table = Participant.__table__  # type: ignore[attr-defined]
    names = ("campaign_id", "member_id", "joined_at", "count", "entered", "streak")
    stmt = insert_rows(Participant, names, postgres=postgres)
    return stmt.on_conflict_do_update(
        index_elements=["campaign_id", "member_id"],
        set_={
            "count": table.c["count"] + stmt.excluded["count"],
            "entered": sa.or_(table.c.entered, stmt.excluded.entered),
            "joined_at": sa.case(
                (stmt.excluded.joined_at < table.c.joined_at, stmt.excluded.joined_at),
                else_=table.c.joined_at,
            ),
            "streak": sa.case(
                (stmt.excluded.streak > 0, stmt.excluded.streak), else_=table.c.streak
            ),
        },
    ).returning(table.c.campaign_id, table.c.member_id, table.c["count"])


def claim_unprocessed(
    *, session: Session, messages: list[MessageCreated], now: datetime
) -> list[MessageCreated]:
    """Record the messages not processed before and return them (first copy of each)."""
    # A concurrent transaction inserting the same keys makes this one wait for it and
    # then skip them, so two consumers never both apply an event.
    fresh: dict[tuple[str, str], MessageCreated] = {}
    for m in messages:
        fresh.setdefault((m.source, m.id), m)
    # Sorted so that racing transactions lock rows in the same order (no deadlock).
    rows = [{"source": s, "event_id": e, "processed_at": now} for s, e in sorted(fresh)]
    stmt = built(session, "processed", _processed)
    claimed = {(s, e) for s, e in session.exec(stmt, params=rows_params(session, rows)).all()}
    return [m for key, m in fresh.items() if key in claimed]


def _processed(postgres: bool) -> Any:
    table = ProcessedEvent.__table__  # type: ignore[attr-defined]
    insert = insert_rows(ProcessedEvent, ("source", "event_id", "processed_at"), postgres=postgres)
    return insert.on_conflict_do_nothing().returning(table.c.source, table.c.event_id)


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
    windows: dict[str, set[tuple[datetime, datetime]]] = defaultdict(set)
    for c in campaigns:
        windows[c.group_id].add((c.starts_at, c.ends_at))
    relevant = []
    for m in messages:
        for start, end in windows.get(m.group_id, ()):
            if start <= m.occurred_at < end:
                relevant.append(m)
                break
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
