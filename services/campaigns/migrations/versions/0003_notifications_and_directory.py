"""campaigns keeps its notifications (with their delivery) and what events tell about groups

New tables: `campaigns_notification` (each published notification and its latest delivery
receipt), `campaigns_group_source` (the source of each group's latest event) and
`campaigns_member_name` (members' latest display names). Notifications still in the
outbox (published within its 7-day retention, or pending) are copied into the new table,
in outbox order, so a campaign running across the upgrade lists them all.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-10 10:00:00
"""

import os
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOTIFICATIONS = os.environ.get("TOPIC_CAMPAIGN_NOTIFICATIONS", "campaigns.notifications.v1")


def _notification_table() -> sa.Table:
    return op.create_table(
        "campaigns_notification",
        sa.Column("id", sa.String(length=200), nullable=False),
        sa.Column("position", sa.String(length=40), nullable=False),
        sa.Column("group_id", sa.String(length=256), nullable=False),
        sa.Column("campaign_id", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=256), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("reply_to", sa.String(length=256), nullable=True),
        sa.Column("mentions", sa.JSON(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivery_outcome", sa.String(length=16), nullable=True),
        sa.Column("delivery_detail", sa.Text(), nullable=True),
        sa.Column("delivery_attempts", sa.Integer(), nullable=False),
        sa.Column("delivery_updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("position"),
    )


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def _copy_from_outbox(notification: sa.Table) -> None:
    outbox = sa.table(
        "campaigns_outbox",
        sa.column("seq", sa.Integer()),
        sa.column("topic", sa.String()),
        sa.column("payload", sa.JSON()),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    found = op.get_bind().execute(
        sa.select(outbox.c.seq, outbox.c.payload, outbox.c.created_at)
        .where(outbox.c.topic == NOTIFICATIONS)
        .order_by(outbox.c.seq)
    )
    rows = []
    for seq, payload, created in found:
        at = _utc(created if isinstance(created, datetime) else datetime.fromisoformat(created))
        rows.append(
            {
                "id": payload["id"],
                "position": f"{int(at.timestamp() * 1000):012x}{seq:012x}",
                "group_id": payload["group_id"],
                "campaign_id": payload["campaign_id"],
                "source": payload.get("source"),
                "kind": payload["kind"],
                "text": payload.get("text", ""),
                "reply_to": payload.get("reply_to"),
                "mentions": payload.get("mentions") or [],
                "data": payload.get("data") or {},
                "created_at": at,
                "delivery_attempts": 0,
            }
        )
    if rows:
        op.bulk_insert(notification, rows)


def upgrade() -> None:
    notification = _notification_table()
    op.create_index(
        "ix_campaigns_notification_campaign",
        "campaigns_notification",
        ["campaign_id", "position"],
        unique=False,
    )
    op.create_table(
        "campaigns_group_source",
        sa.Column("group_id", sa.String(length=256), nullable=False),
        sa.Column("source", sa.String(length=256), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("group_id"),
    )
    op.create_table(
        "campaigns_member_name",
        sa.Column("group_id", sa.String(length=256), nullable=False),
        sa.Column("member_id", sa.String(length=256), nullable=False),
        sa.Column("display_name", sa.String(length=256), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("group_id", "member_id"),
    )
    _copy_from_outbox(notification)


def downgrade() -> None:
    op.drop_table("campaigns_member_name")
    op.drop_table("campaigns_group_source")
    op.drop_index("ix_campaigns_notification_campaign", table_name="campaigns_notification")
    op.drop_table("campaigns_notification")
