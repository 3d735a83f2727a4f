"""Delivery receipts on campaigns' notifications (newest wins, others ignored) and the 0003
migration's copy of the outbox's notifications, on a throwaway SQLite database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine
from sqlmodel import Session

from services.campaigns.app import MIGRATIONS, VERSION_TABLE, migrate_campaigns
from services.campaigns.models import Notification
from services.campaigns.posted import apply_receipts
from services.common.contracts.notifications import NOTIFICATIONS_TOPIC
from services.common.contracts.receipts import DeliveryReceipt
from services.common.db import make_engine

T = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def receipt(
    ref: str, outcome: str, at: datetime, attempts: int = 1, topic: str = NOTIFICATIONS_TOPIC
):
    return DeliveryReceipt(
        id=f"r-{ref}-{outcome}-{attempts}",
        ref_id=ref,
        ref_topic=topic,
        group_id="g",
        source="tg",
        platform="telegram",
        operation="post",
        outcome=outcome,  # type: ignore[arg-type]
        detail=outcome,
        attempts=attempts,
        created_at=at,
    )


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    url = f"sqlite:///{tmp_path / 'campaigns.db'}"
    migrate_campaigns(url)
    engine = make_engine(url)
    with Session(engine) as session:
        for i, kind in enumerate(["announce", "started"]):
            session.add(
                Notification(
                    id=f"c1:{kind}",
                    position=f"p{i}",
                    group_id="g",
                    campaign_id="c1",
                    kind=kind,
                    text=kind,
                    created_at=T,
                )
            )
        session.commit()
    return engine


def outcomes(engine: Engine) -> dict[str, tuple[str | None, int, datetime | None]]:
    with Session(engine) as session:
        rows = session.exec(sa.select(Notification)).scalars().all()  # type: ignore[call-overload]
        return {
            n.id: (n.delivery_outcome, n.delivery_attempts, n.delivery_updated_at) for n in rows
        }


def apply(engine: Engine, receipts: list[DeliveryReceipt]) -> list[DeliveryReceipt]:
    with Session(engine) as session:
        taken = apply_receipts(session=session, receipts=receipts, topic=NOTIFICATIONS_TOPIC)
        session.commit()
    return taken


def test_the_newest_receipt_wins_in_a_batch_and_across_batches(engine: Engine) -> None:
    later = T + timedelta(seconds=3)
    taken = apply(
        engine,
        [
            receipt("c1:announce", "failed", later, attempts=2),
            receipt("c1:announce", "delivered", T),  # older, in the same batch
            receipt("c1:announce", "forbidden", later, topic="moderation.actions.v1"),
            receipt("c9:unknown", "delivered", T),
        ],
    )
    assert [(r.ref_id, r.outcome) for r in taken] == [
        ("c1:announce", "failed"),
        ("c9:unknown", "delivered"),
    ]
    assert outcomes(engine) == {"c1:announce": ("failed", 2, later), "c1:started": (None, 0, None)}
    apply(engine, [receipt("c1:announce", "delivered", T, attempts=5)])  # older: ignored
    assert outcomes(engine)["c1:announce"] == ("failed", 2, later)
    apply(engine, [receipt("c1:announce", "delivered", later, attempts=3)])  # same time, retried
    assert outcomes(engine)["c1:announce"] == ("delivered", 3, later)
    apply(engine, [receipt("c1:announce", "delivered", later, attempts=3)])  # replayed
    assert outcomes(engine)["c1:announce"] == ("delivered", 3, later)


def test_migration_0003_copies_the_outbox_notifications(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("version_table", VERSION_TABLE)
    cfg.attributes["database_url"] = url
    cfg.attributes["version_table"] = VERSION_TABLE
    command.upgrade(cfg, "0002")
    engine = make_engine(url)
    payload = {
        "id": "c1:announce",
        "group_id": "g",
        "source": None,
        "campaign_id": "c1",
        "kind": "announce",
        "text": "预告",
        "reply_to": None,
        "mentions": [],
        "data": {"title": "t"},
        "created_at": T.isoformat(),
    }
    outbox = sa.table(
        "campaigns_outbox",
        *(sa.column(c) for c in ["message_id", "topic", "key", "created_at"]),
        sa.column("payload", sa.JSON()),
    )
    with engine.begin() as conn:
        conn.execute(
            sa.insert(outbox),
            [
                {"message_id": "c1:announce", "topic": NOTIFICATIONS_TOPIC, "key": "g",
                 "payload": payload, "created_at": T.replace(tzinfo=None)},
                {"message_id": "g1", "topic": "campaigns.rewards.v1", "key": "g",
                 "payload": {"id": "g1"}, "created_at": T.replace(tzinfo=None)},
            ],
        )  # fmt: skip
    command.upgrade(cfg, "head")
    with Session(engine) as session:
        rows = session.exec(sa.select(Notification)).scalars().all()  # type: ignore[call-overload]
    assert [(n.id, n.kind, n.text, n.created_at, n.delivery_outcome) for n in rows] == [
        ("c1:announce", "announce", "预告", T, None)
    ]
