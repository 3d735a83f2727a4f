"""campaigns tables

Revision ID: 0001
Revises:
Create Date: 2026-11-21 12:25:02.276171
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "campaigns_campaign",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("group_id", sa.String(length=256), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("announce_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reminders", sa.JSON(), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("announced_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reminders_sent", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("drawn_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("draw_round", sa.Integer(), nullable=False),
        sa.Column("seed", sa.String(length=64), nullable=True),
        sa.Column("seed_sha256", sa.String(length=64), nullable=True),
        sa.Column("next_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_campaigns_campaign_due", "campaigns_campaign", ["status", "next_due_at"], unique=False
    )
    op.create_index(
        "ix_campaigns_campaign_group_id", "campaigns_campaign", ["group_id", "id"], unique=False
    )

    op.create_table(
        "campaigns_checkin_day",
        sa.Column("campaign_id", sa.String(length=32), nullable=False),
        sa.Column("member_id", sa.String(length=256), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("campaign_id", "member_id", "day"),
    )
    op.create_table(
        "campaigns_grant",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("group_id", sa.String(length=256), nullable=False),
        sa.Column("campaign_id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("member_id", sa.String(length=256), nullable=False),
        sa.Column("reason", sa.String(length=128), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("badge", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("campaign_id", "member_id", "reason", name="uq_campaigns_grant_once"),
    )
    op.create_index(
        "ix_campaigns_grant_member",
        "campaigns_grant",
        ["group_id", "member_id", "created_at"],
        unique=False,
    )

    op.create_table(
        "campaigns_member",
        sa.Column("group_id", sa.String(length=256), nullable=False),
        sa.Column("member_id", sa.String(length=256), nullable=False),
        sa.Column("joined_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("group_id", "member_id"),
    )
    op.create_table(
        "campaigns_outbox",
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.String(length=200), nullable=False),
        sa.Column("stream", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=256), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claim_token", sa.String(length=32), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("message_id"),
    )
    op.create_index(
        "ix_campaigns_outbox_pending", "campaigns_outbox", ["published_at", "seq"], unique=False
    )

    op.create_table(
        "campaigns_participant",
        sa.Column("campaign_id", sa.String(length=32), nullable=False),
        sa.Column("member_id", sa.String(length=256), nullable=False),
        sa.Column("joined_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("entered", sa.Boolean(), nullable=False),
        sa.Column("streak", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("campaign_id", "member_id"),
    )
    op.create_table(
        "campaigns_prize",
        sa.Column("campaign_id", sa.String(length=32), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("remaining", sa.Integer(), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("campaign_id", "position"),
    )
    op.create_table(
        "campaigns_processed_event",
        sa.Column("source", sa.String(length=256), nullable=False),
        sa.Column("event_id", sa.String(length=256), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source", "event_id"),
    )
    op.create_index(
        op.f("ix_campaigns_processed_event_processed_at"),
        "campaigns_processed_event",
        ["processed_at"],
        unique=False,
    )

    op.create_table(
        "campaigns_winner",
        sa.Column("campaign_id", sa.String(length=32), nullable=False),
        sa.Column("member_id", sa.String(length=256), nullable=False),
        sa.Column("group_id", sa.String(length=256), nullable=False),
        sa.Column("prize", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("campaign_id", "member_id"),
    )
    op.create_index(
        op.f("ix_campaigns_winner_group_id"), "campaigns_winner", ["group_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_campaigns_winner_group_id"), table_name="campaigns_winner")

    op.drop_table("campaigns_winner")
    op.drop_index(
        op.f("ix_campaigns_processed_event_processed_at"), table_name="campaigns_processed_event"
    )

    op.drop_table("campaigns_processed_event")
    op.drop_table("campaigns_prize")
    op.drop_table("campaigns_participant")
    op.drop_index("ix_campaigns_outbox_pending", table_name="campaigns_outbox")

    op.drop_table("campaigns_outbox")
    op.drop_table("campaigns_member")
    op.drop_index("ix_campaigns_grant_member", table_name="campaigns_grant")

    op.drop_table("campaigns_grant")
    op.drop_table("campaigns_checkin_day")
    op.drop_index("ix_campaigns_campaign_group_id", table_name="campaigns_campaign")
    op.drop_index("ix_campaigns_campaign_due", table_name="campaigns_campaign")

    op.drop_table("campaigns_campaign")
