"""The scheduler: due announcements, reminders, starts, ends and draws, each done once.

Due work is derived from the database (`next_due_at` and the campaign's progress
columns), never from in-memory timers, so a restarted process catches up on every
step it missed. A campaign's steps are claimed by bumping its `version` with a
conditional UPDATE (PostgreSQL first skips rows another process has locked), and the
notifications are queued in the outbox in the same transaction as the status change.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy import Engine
from sqlmodel import Session, col, func, select

from services.campaigns import broadcast, invites, lottery, notifications, polls, telemetry, welcome
from services.campaigns.effects import Effects, Topics, publish
from services.campaigns.models import Campaign, Outbox, Participant, ProcessedEvent
from services.campaigns.running import claim_campaign
from services.common.db import utcnow
from services.common.kafka.producer import ProducerHandle
from services.common.settings import Settings
from services.common.worker import BackgroundLoop

log = logging.getLogger(__name__)

OPEN = ("scheduled", "active", "ended")  # an ended lottery may still have to draw


def reminder_due(campaign: Campaign, index: int) -> datetime:
    """Return when reminder `index` (reminders are sorted earliest first) is due."""
    return campaign.starts_at - timedelta(seconds=campaign.reminders[index])


def next_due(campaign: Campaign) -> datetime | None:
    """Return when the campaign's next step is due, or None when nothing is left."""
    if campaign.status == "scheduled":
        times = [campaign.starts_at]
        if campaign.announce_at is not None and campaign.announced_at is None:
            times.append(campaign.announce_at)
        if campaign.reminders_sent < len(campaign.reminders):
            times.append(reminder_due(campaign, campaign.reminders_sent))
        return min(times)
    if campaign.status == "active":
        return min(t for t in (campaign.ends_at, broadcast.next_at(campaign)) if t is not None)
    if campaign.status == "ended" and campaign.kind == "lottery" and campaign.drawn_at is None:
        delay = int(campaign.params.get("draw_delay_seconds", 0))
        return campaign.ends_at + timedelta(seconds=delay)
    if campaign.status == "ended" and campaign.kind == "poll" and campaign.drawn_at is None:
        delay = int(campaign.params.get("results_delay_seconds", 0))
        return campaign.ends_at + timedelta(seconds=delay)
    return None


def skip_past_reminders(campaign: Campaign, now: datetime) -> None:
    """Mark reminders already due at creation or reschedule as done: they would only be late."""
    campaign.reminders_sent = sum(
        1 for i in range(len(campaign.reminders)) if reminder_due(campaign, i) <= now
    )


def _participants(session: Session, campaign: Campaign) -> int:
    return int(
        session.exec(select(func.count()).where(col(Participant.campaign_id) == campaign.id)).one()
    )


def _run_due_steps(
    *, session: Session, campaign: Campaign, now: datetime, tz: ZoneInfo, effects: Effects
) -> list[float]:
    lags: list[float] = []
    while (due := next_due(campaign)) is not None and due <= now:
        lags.append((now - due).total_seconds())
        if campaign.status == "ended" and campaign.kind == "poll":
            polls.post_results(session=session, campaign=campaign, now=now, effects=effects)
        elif campaign.status == "ended":
            lottery.draw(session=session, campaign=campaign, now=now, effects=effects)
        elif campaign.status == "active" and broadcast.next_at(campaign) == due:
            broadcast.post_next(session=session, campaign=campaign, now=now, effects=effects)
        elif campaign.status == "active":
            campaign.status = "ended"
            campaign.ended_at = now
            notifications.ended(
                session=session,
                campaign=campaign,
                participants=_participants(session, campaign),
                tz=tz,
                now=now,
                effects=effects,
            )
        elif campaign.announce_at == due and campaign.announced_at is None:
            campaign.announced_at = now
            if due < campaign.starts_at:  # one due at the start is merged into the start notice
                notifications.announce(
                    session=session, campaign=campaign, tz=tz, now=now, effects=effects
                )
        elif (
            campaign.reminders_sent < len(campaign.reminders)
            and reminder_due(campaign, campaign.reminders_sent) == due
        ):
            notifications.remind(
                session=session,
                campaign=campaign,
                index=campaign.reminders_sent,
                before=campaign.reminders[campaign.reminders_sent],
                tz=tz,
                now=now,
                effects=effects,
            )
            campaign.reminders_sent += 1
        else:
            campaign.status = "active"
            campaign.started_at = now
            if campaign.kind == "lottery" and campaign.seed is None:
                campaign.seed, campaign.seed_sha256 = lottery.new_seed()
            notifications.started(
                session=session,
                campaign=campaign,
                tz=tz,
                now=now,
                effects=effects,
                announced=campaign.announce_at == campaign.starts_at,
            )
    return lags


def advance(
    *, session: Session, campaign_id: str, now: datetime, tz: ZoneInfo, effects: Effects
) -> list[float] | None:
    """Claim a campaign whose next step is due and do every due step; None if not claimed."""
    query = select(Campaign).where(
        col(Campaign.id) == campaign_id,
        col(Campaign.status).in_(OPEN),
        col(Campaign.next_due_at) <= now,
    )
    campaign = claim_campaign(session=session, query=query)
    if campaign is None:
        return None
    lags = _run_due_steps(session=session, campaign=campaign, now=now, tz=tz, effects=effects)
    campaign.next_due_at = next_due(campaign)
    campaign.updated_at = now
    session.add(campaign)
    session.flush()
    return lags


def tick(*, engine: Engine, settings: Settings, now: datetime | None = None) -> int:
    """Advance every campaign with a due step, one transaction each; return how many."""
    now = now or utcnow()
    with Session(engine) as session:
        due = session.exec(
            select(Campaign.id)
            .where(col(Campaign.status).in_(OPEN), col(Campaign.next_due_at) <= now)
            .order_by(col(Campaign.next_due_at))
            .limit(200)
        ).all()
    advanced = 0
    topics = Topics.of(settings)
    for campaign_id in due:
        effects = Effects(topics)
        with Session(engine) as session:
            lags = advance(
                session=session, campaign_id=campaign_id, now=now, tz=settings.tz, effects=effects
            )
            if lags is None:
                continue
            session.commit()
        effects.record()
        for lag in lags:
            telemetry.SCHEDULER_LAG.observe(max(lag, 0.0))
        advanced += 1
    settle_invitees(engine=engine, topics=topics, now=now)
    advanced += greet_welcomes(engine=engine, topics=topics, now=now)
    return advanced


def greet_welcomes(*, engine: Engine, topics: Topics, now: datetime) -> int:
    """Post the welcome batches due by `now`, one transaction per campaign; return how many
    campaigns were greeted for."""
    with Session(engine) as session:
        due = welcome.due_campaigns(session=session, now=now)
    greeted = 0
    for campaign_id in due:
        effects = Effects(topics)
        with Session(engine) as session:
            posted = welcome.greet_due(
                session=session, campaign_id=campaign_id, now=now, effects=effects
            )
            if posted is None:
                continue
            session.commit()
        effects.record()
        greeted += 1
    return greeted


def settle_invitees(*, engine: Engine, topics: Topics, now: datetime) -> int:
    """Settle the invite campaigns' due invitees, a batch per transaction; return how many."""
    settled = 0
    while True:
        effects = Effects(topics)
        with Session(engine) as session:
            outcomes = invites.settle_due(session=session, now=now, effects=effects)
            session.commit()
        effects.record()
        for outcome, n in outcomes.items():
            telemetry.INVITEES.labels(outcome).inc(n)
        settled += outcomes.total()
        if outcomes.total() < invites.SETTLE_BATCH:
            return settled


PROCESSED_KEEP = timedelta(days=30)
PUBLISHED_KEEP = timedelta(days=7)
PRUNE_EVERY_SECONDS = 600.0


def prune(*, engine: Engine, now: datetime) -> None:
    """Forget event ids older than Kafka keeps them and outbox rows long published."""
    with Session(engine) as session:
        session.exec(
            sa.delete(ProcessedEvent).where(col(ProcessedEvent.processed_at) < now - PROCESSED_KEEP)
        )
        session.exec(
            sa.delete(Outbox).where(
                col(Outbox.published_at).is_not(None),
                col(Outbox.published_at) < now - PUBLISHED_KEEP,
            )
        )
        session.commit()


class Scheduler(BackgroundLoop):
    """Tick the scheduler and publish the outbox every `interval` seconds (backoff on failure).

    The outbox has this one publisher loop; an entrypoint that wants its records out at
    once (the consumer after a batch with grants, a reroll) also publishes right after
    its commit, with the same kernel function.
    """

    def __init__(
        self,
        *,
        engine: Engine,
        settings: Settings,
        producer: ProducerHandle,
        interval: float = 0.5,
    ) -> None:
        super().__init__("scheduler", interval=interval)
        self._engine = engine
        self._settings = settings
        self._producer = producer
        self._topics = Topics.of(settings)
        self._pruned = 0.0

    def step(self) -> None:
        """Advance due campaigns, then publish what is in the outbox."""
        tick(engine=self._engine, settings=self._settings)
        publish(engine=self._engine, producer=self._producer, topics=self._topics)
        if time.monotonic() - self._pruned > PRUNE_EVERY_SECONDS:
            prune(engine=self._engine, now=utcnow())
            self._pruned = time.monotonic()
