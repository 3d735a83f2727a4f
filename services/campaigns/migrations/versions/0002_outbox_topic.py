"""campaigns outbox on the kernel's columns: `topic` replaces `stream`

Rows queued before this revision name a stream ("notifications" or "rewards"); they get
the topic the service is configured with (TOPIC_CAMPAIGN_NOTIFICATIONS and
TOPIC_CAMPAIGN_REWARDS in the migrating process's environment, else the contract's
names), so a row still unpublished at the upgrade goes where it would have gone.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 10:00:00
"""

import os
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOTIFICATIONS = os.environ.get("TOPIC_CAMPAIGN_NOTIFICATIONS", "campaigns.notifications.v1")
REWARDS = os.environ.get("TOPIC_CAMPAIGN_REWARDS", "campaigns.rewards.v1")


def upgrade() -> None:
    op.add_column("campaigns_outbox", sa.Column("topic", sa.String(length=255), nullable=True))
    op.execute(
        sa.text(
            "UPDATE campaigns_outbox SET topic = CASE stream"
            " WHEN 'notifications' THEN :notifications ELSE :rewards END"
        ).bindparams(notifications=NOTIFICATIONS, rewards=REWARDS)
    )
    with op.batch_alter_table("campaigns_outbox") as batch:
        batch.alter_column("topic", existing_type=sa.String(length=255), nullable=False)
        batch.alter_column(
            "claim_token", existing_type=sa.String(length=32), type_=sa.String(length=64)
        )
        batch.drop_column("stream")


def downgrade() -> None:
    op.add_column("campaigns_outbox", sa.Column("stream", sa.String(length=16), nullable=True))
    op.execute(
        sa.text(
            "UPDATE campaigns_outbox SET stream = CASE topic"
            " WHEN :notifications THEN 'notifications' ELSE 'rewards' END"
        ).bindparams(notifications=NOTIFICATIONS)
    )
    with op.batch_alter_table("campaigns_outbox") as batch:
        batch.alter_column("stream", existing_type=sa.String(length=16), nullable=False)
        batch.alter_column(
            "claim_token", existing_type=sa.String(length=64), type_=sa.String(length=32)
        )
        batch.drop_column("topic")
