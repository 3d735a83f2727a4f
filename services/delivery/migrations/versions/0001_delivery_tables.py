"""delivery tables: deliveries (the durable queue, unique on ref_id) and delivery_outbox

Revision ID: 0001
Revises:
Create Date: 2026-12-03 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _deliveries() -> None:
    op.create_table(
        "deliveries",
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("ref_id", sa.String(length=255), nullable=False),
        sa.Column("ref_topic", sa.String(length=255), nullable=False),
        sa.Column("group_id", sa.String(length=256), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=True),
        sa.Column("platform", sa.String(length=32), nullable=True),
        sa.Column("operation", sa.String(length=32), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("detail", sa.String(length=2000), nullable=False),
        sa.Column("platform_message_id", sa.String(length=255), nullable=True),
        sa.Column("claim_token", sa.String(length=64), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("id"),
        sa.UniqueConstraint("ref_id"),
    )
    op.create_index("ix_deliveries_queue", "deliveries", ["state", "group_id", "seq"])
    op.create_index("ix_deliveries_group_id_id", "deliveries", ["group_id", "id"])


def _outbox() -> None:
    op.create_table(
        "delivery_outbox",
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.String(length=64), nullable=False),
        sa.Column("topic", sa.String(length=255), nullable=False),
        sa.Column("key", sa.String(length=512), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claim_token", sa.String(length=64), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("seq"),
    )
    op.create_index("ix_delivery_outbox_message_id", "delivery_outbox", ["message_id"])
    op.create_index("ix_delivery_outbox_published_at", "delivery_outbox", ["published_at"])
    op.create_index("ix_delivery_outbox_pending", "delivery_outbox", ["published_at", "seq"])


def upgrade() -> None:
    _deliveries()
    _outbox()


def downgrade() -> None:
    op.drop_table("delivery_outbox")
    op.drop_table("deliveries")
