"""campaigns: welcome batches, auto-reply cooldowns and broadcast progress

New tables: `campaigns_welcome_join` (each join a welcome campaign greets, pending until
the scheduler posts its batch) and `campaigns_reply_cooldown` (each auto-reply trigger's
last answer per campaign). New column: `campaigns_campaign.broadcasts_sent` (how many of a
broadcast's messages are posted, like `reminders_sent`).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-20 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("campaigns_campaign") as batch:
        batch.add_column(
            sa.Column("broadcasts_sent", sa.Integer(), nullable=False, server_default="0")
        )
    op.create_table(
        "campaigns_welcome_join",
        sa.Column("campaign_id", sa.String(length=32), nullable=False),
        sa.Column("member_id", sa.String(length=256), nullable=False),
        sa.Column("joined_at", _utc(), nullable=False),
        sa.Column("group_id", sa.String(length=256), nullable=False),
        sa.Column("due_at", _utc(), nullable=False),
        sa.Column("left_at", _utc(), nullable=True),
        sa.Column("batch_id", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("campaign_id", "member_id", "joined_at"),
    )
    op.create_index(
        "ix_campaigns_welcome_join_pending", "campaigns_welcome_join", ["batch_id", "due_at"]
    )
    op.create_index(
        "ix_campaigns_welcome_join_member", "campaigns_welcome_join", ["group_id", "member_id"]
    )
    op.create_table(
        "campaigns_reply_cooldown",
        sa.Column("campaign_id", sa.String(length=32), nullable=False),
        sa.Column("trigger", sa.Integer(), nullable=False),
        sa.Column("replied_at", _utc(), nullable=False),
        sa.Column("next_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("campaign_id", "trigger"),
    )


def downgrade() -> None:
    op.drop_table("campaigns_reply_cooldown")
    op.drop_index("ix_campaigns_welcome_join_member", table_name="campaigns_welcome_join")
    op.drop_index("ix_campaigns_welcome_join_pending", table_name="campaigns_welcome_join")
    op.drop_table("campaigns_welcome_join")
    with op.batch_alter_table("campaigns_campaign") as batch:
        batch.drop_column("broadcasts_sent")
