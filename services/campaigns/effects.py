"""What one unit of work does besides its rows: outbound records and metric counts.

Every entrypoint (a route, the consumer's batch handler, a scheduler tick) makes one
`Effects`, hands it to the service functions, commits, then calls `record()` and
`publish()`: records are queued in the kernel outbox within the transaction, so a
rolled-back change sends nothing, and metrics count only what was committed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlmodel import Session

from services.campaigns import telemetry
from services.campaigns.models import Outbox
from services.common.contracts.notifications import (
    NOTIFICATIONS_TOPIC,
    REWARDS_TOPIC,
    CampaignNotification,
    RewardGranted,
)
from services.common.kafka.producer import ProducerHandle
from services.common.outbox import (
    OutboxRecord,
    OutboxRelay,
    Outgoing,
    Published,
    enqueue,
    publish_pending,
)
from services.common.settings import Settings


@dataclass(frozen=True)
class Topics:
    """Where campaigns' notifications and grants go (the deployment may rename them)."""

    notifications: str = NOTIFICATIONS_TOPIC
    rewards: str = REWARDS_TOPIC

    @classmethod
    def of(cls, settings: Settings) -> Topics:
        """Return the topics the settings name."""
        return cls(settings.topic_campaign_notifications, settings.topic_campaign_rewards)


@dataclass
class Effects:
    """One unit of work's outbound records (queued at once) and counts (recorded after commit)."""

    topics: Topics
    grants: Counter[str] = field(default_factory=Counter)
    points: Counter[str] = field(default_factory=Counter)
    participations: Counter[str] = field(default_factory=Counter)
    notified: int = 0

    def notify(self, session: Session, notification: CampaignNotification) -> None:
        """Queue a notification in the session's transaction."""
        self.notified += 1
        enqueue(
            session,
            Outbox,
            [Outgoing(self.topics.notifications, notification.group_id, notification)],
        )

    def granted(self, session: Session, grants: Sequence[RewardGranted]) -> None:
        """Queue grants in the session's transaction."""
        enqueue(session, Outbox, [Outgoing(self.topics.rewards, g.group_id, g) for g in grants])

    def record(self) -> None:
        """Add the committed effects to the Prometheus counters."""
        for kind, n in self.grants.items():
            telemetry.GRANTS.labels(kind).inc(n)
        for kind, n in self.points.items():
            if n > 0:
                telemetry.POINTS.labels(kind).inc(n)
        for kind, n in self.participations.items():
            telemetry.PARTICIPATIONS.labels(kind).inc(n)


def _counter(topics: Topics) -> Published:
    """Count the notifications among published outbox rows."""

    def count_notifications(rows: Sequence[OutboxRecord]) -> None:
        for r in rows:
            if r.topic == topics.notifications:
                telemetry.NOTIFICATIONS.labels(r.payload.get("kind", "unknown")).inc()

    return count_notifications


def publish(*, engine: Engine, producer: ProducerHandle, topics: Topics) -> int:
    """Publish the pending outbox records (kernel outbox); count the notifications sent."""
    return publish_pending(
        engine=engine, table=Outbox, producer=producer, on_published=_counter(topics)
    )


def relay(*, engine: Engine, producer: ProducerHandle, topics: Topics) -> OutboxRelay:
    """The kernel relay of campaigns' outbox: the events consumer wakes it after a batch
    that queued records, so the consumer's thread never waits for Kafka's acknowledgement
    (records queued while it publishes leave together in its next round)."""
    return OutboxRelay(
        engine=engine, table=Outbox, producer=producer, on_published=_counter(topics)
    )
