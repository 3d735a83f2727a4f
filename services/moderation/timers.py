"""Moderation's timers: verification deadlines, clean-up kicks, blocklist propagation.

Due work is derived from the database on every tick (pending verifications past their
deadline, running clean-ups with a kick due, blocklist entries not yet propagated),
never from in-memory timers, so a restarted process loses no deadline. Each unit is
claimed inside its own transaction by a conditional update (and on PostgreSQL rows
another process holds are skipped), so replicas never act twice; its actions are queued
in the outbox in that transaction and published after the commit.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import Engine
from sqlmodel import Session

from services.common.db import utcnow
from services.common.kafka.producer import ProducerHandle
from services.common.settings import Settings
from services.common.worker import BackgroundLoop
from services.moderation import blocklists, cleanups, verification
from services.moderation.gatekeeping import propagate
from services.moderation.membership_models import BlocklistEntry
from services.moderation.outbox import publish_actions
from services.moderation.telemetry import CLEANUP_KICKS, VERIFICATIONS

log = logging.getLogger(__name__)


def _expire_verifications(engine: Engine, topic: str, due: list[str]) -> int:
    opened = 0
    for verification_id in due:
        with Session(engine) as session:
            case = verification.expire(session, verification_id, topic=topic)
            session.commit()
        if case is not None:
            VERIFICATIONS.labels("failed").inc()
            opened += 1
    return opened


def _advance_cleanups(engine: Engine, topic: str, now: datetime, due: list[str]) -> int:
    opened = 0
    for cleanup_id in due:
        with Session(engine) as session:
            kicked = cleanups.advance(session=session, cleanup_id=cleanup_id, now=now, topic=topic)
            if kicked is None:
                continue
            session.commit()
        CLEANUP_KICKS.inc(kicked)
        opened += kicked
    return opened


def _propagate_entries(engine: Engine, topic: str, waiting: list[tuple[str, str]]) -> int:
    opened = 0
    for name, member_id in waiting:
        with Session(engine) as session:
            if not blocklists.claim_entry(session=session, name=name, member_id=member_id):
                continue
            entry = session.get(BlocklistEntry, (name, member_id))
            if entry is None:
                continue
            opened += len(propagate(session, entry, topic=topic, by=None))
            session.commit()
    return opened


def tick(*, engine: Engine, settings: Settings, now: datetime | None = None) -> int:
    """Do every due step; return how many cases were opened."""
    now = now or utcnow()
    topic = settings.topic_moderation_actions
    # What is due, read in one session (a tick is twice a second on every replica, and
    # usually finds nothing): each unit is then claimed in a transaction of its own.
    with Session(engine) as session:
        verifications = verification.due(session, now)
        kicks = cleanups.due(session, now)
        entries = blocklists.unpropagated(session, limit=100)
    return (
        _expire_verifications(engine, topic, verifications)
        + _advance_cleanups(engine, topic, now, kicks)
        + _propagate_entries(engine, topic, entries)
    )


class MembershipTimers(BackgroundLoop):
    """Tick every `interval` seconds, publishing what a tick queued right after it."""

    def __init__(
        self, *, engine: Engine, settings: Settings, producer: ProducerHandle, interval: float = 0.5
    ) -> None:
        super().__init__("membership-timers", interval=interval)
        self._engine = engine
        self._settings = settings
        self._producer = producer

    def step(self) -> None:
        """Run the due steps, then publish their actions."""
        if tick(engine=self._engine, settings=self._settings):
            publish_actions(db=self._engine, producer=self._producer)
