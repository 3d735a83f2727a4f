"""Polls (投票): votes from members' messages, the results, and the results post at the end.

A vote is a message in the poll's window that starts with `vote_keyword` and an option
number (`matching.parse_vote`); numbers outside 1..len(options) are ignored. A single-choice
poll keeps one vote per member, the newest by `occurred_at` (a late or redelivered older
vote never replaces a newer one); a multiple-choice poll keeps one row per member and
option. Results count only eligible voters (`eligibility.eligible_members`), live until
the scheduler posts them once at `ends_at + results_delay_seconds`; from then on the
posted results are the results and later votes are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from services.campaigns import notifications
from services.campaigns.effects import Effects
from services.campaigns.eligibility import eligible_members
from services.campaigns.matching import parse_vote
from services.campaigns.models import Campaign, Notification, Vote
from services.campaigns.params import PollParams
from services.campaigns.schemas import PollOptionResult, PollResults
from services.campaigns.store import dialect_insert, find_campaign
from services.campaigns.texts import render, template_for
from services.common.errors import Conflict

RESULTS = "results"


@dataclass(frozen=True)
class Ballot:
    """The options one message votes for in one poll."""

    campaign_id: str
    member_id: str
    options: tuple[int, ...]
    at: datetime
    message_id: str


def read_ballot(
    params: PollParams,
    *,
    campaign_id: str,
    member_id: str,
    text: str,
    at: datetime,
    message_id: str,
) -> Ballot | None:
    """Return the message's ballot in the poll, or None when it casts no valid vote."""
    chosen = parse_vote(params.vote_keyword, text, multiple=params.multiple)
    valid = tuple(n for n in chosen if 1 <= n <= len(params.options))
    if not valid or (not params.multiple and len(valid) != len(chosen)):
        return None
    return Ballot(campaign_id, member_id, valid, at, message_id)


def record_votes(*, session: Session, ballots: list[Ballot], multiple: dict[str, bool]) -> None:
    """Write a batch's ballots: single-choice polls keep each member's newest vote, multiple-
    choice polls add the options not voted before (`multiple`: campaign id → the flag)."""
    newest: dict[tuple[str, str], Ballot] = {}
    added: dict[tuple[str, str, int], Ballot] = {}
    for b in ballots:  # batch order breaks ties of equal times: the later message wins
        if multiple[b.campaign_id]:
            for option in b.options:
                added.setdefault((b.campaign_id, b.member_id, option), b)
        elif (key := (b.campaign_id, b.member_id)) not in newest or b.at >= newest[key].at:
            newest[key] = b
    table = Vote.__table__  # type: ignore[attr-defined]
    if newest:
        stmt = dialect_insert(session, Vote)
        newer = stmt.excluded.voted_at >= table.c.voted_at
        stmt = stmt.on_conflict_do_update(
            index_elements=["campaign_id", "member_id", "slot"],
            set_={
                name: sa.case((newer, stmt.excluded[name]), else_=table.c[name])
                for name in ("option", "voted_at", "message_id")
            },
        )
        rows = [
            {
                "campaign_id": c,
                "member_id": m,
                "slot": 0,
                "option": b.options[0],
                "voted_at": b.at,
                "message_id": b.message_id,
            }
            for (c, m), b in sorted(newest.items())
        ]
        session.exec(stmt, params=rows)
    if added:
        rows = [
            {
                "campaign_id": c,
                "member_id": m,
                "slot": option,
                "option": option,
                "voted_at": b.at,
                "message_id": b.message_id,
            }
            for (c, m, option), b in sorted(added.items())
        ]
        session.exec(dialect_insert(session, Vote).on_conflict_do_nothing(), params=rows)


def count_results(*, session: Session, campaign: Campaign) -> PollResults:
    """Count the eligible voters' votes now."""
    params = PollParams.model_validate(campaign.params)
    eligible = eligible_members(campaign).scalar_subquery()
    counted = (col(Vote.campaign_id) == campaign.id, col(Vote.member_id).in_(eligible))
    per_option = dict(
        session.exec(
            select(Vote.option, func.count(col(Vote.member_id).distinct()))
            .where(*counted)
            .group_by(col(Vote.option))
        ).all()
    )
    voters = session.exec(select(func.count(col(Vote.member_id).distinct())).where(*counted)).one()
    return PollResults(
        question=params.question,
        options=[
            PollOptionResult(option=i, text=text, votes=int(per_option.get(i, 0)))
            for i, text in enumerate(params.options, start=1)
        ],
        voters=int(voters),
    )


def results(*, session: Session, group_id: str, campaign_id: str) -> PollResults:
    """A poll's results: as posted once the poll has posted them, else counted now."""
    campaign = find_campaign(session=session, group_id=group_id, campaign_id=campaign_id)
    if campaign.kind != "poll":
        raise Conflict(f"a {campaign.kind} campaign has no poll results")
    if campaign.drawn_at is not None:
        posted = session.get(Notification, f"{campaign.id}:{RESULTS}")
        if posted is not None:
            return PollResults.model_validate(posted.data)
    return count_results(session=session, campaign=campaign)


def post_results(*, session: Session, campaign: Campaign, now: datetime, effects: Effects) -> None:
    """Count the poll once and queue the `results` notification (`data` = the results)."""
    counted = count_results(session=session, campaign=campaign)
    campaign.drawn_at = now
    lines = [f"{o.option}. {o.text} — {o.votes} 票" for o in counted.options]
    values = {
        "title": campaign.title,
        "question": counted.question,
        "results": "\n".join(lines),
        "voters": counted.voters,
    }
    template = template_for(campaign.kind, RESULTS, campaign.params.get("texts"))
    notifications.post(
        session=session,
        campaign=campaign,
        kind=RESULTS,
        suffix="",
        rendered=render(template, values, {}),
        data=counted.model_dump(mode="json"),
        now=now,
        effects=effects,
    )
