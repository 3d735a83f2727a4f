"""moderation for delivery: action source/notice fields, manual cases, group sources, receipts

`moderation_action` gains the contract's `source`, `text`, `mentions`, `request_ref` and
`message_at`; `moderation_policy` gains `notices`; `moderation_case` gains `by` (manual
cases), whose `event_source`/`event_id` may now be null. New tables: the latest source of
each group (`moderation_group_source`) and the latest delivery receipt of each action
(`moderation_receipt`).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-10 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("moderation_action", schema=None) as batch_op:
        batch_op.add_column(sa.Column("source", sa.String(length=256), nullable=True))
        batch_op.add_column(sa.Column("text", sa.String(length=4000), nullable=True))
        batch_op.add_column(
            sa.Column("mentions", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )
        batch_op.add_column(sa.Column("request_ref", sa.String(length=256), nullable=True))
        batch_op.add_column(sa.Column("message_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("moderation_policy", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("notices", sa.JSON(), nullable=False, server_default=sa.text("'{}'"))
        )
    with op.batch_alter_table("moderation_case", schema=None) as batch_op:
        batch_op.add_column(sa.Column("by", sa.String(length=200), nullable=True))
        batch_op.alter_column("event_source", existing_type=sa.String(length=256), nullable=True)
        batch_op.alter_column("event_id", existing_type=sa.String(length=256), nullable=True)
    op.create_table(
        "moderation_group_source",
        sa.Column("group_id", sa.String(length=256), nullable=False),
        sa.Column("source", sa.String(length=256), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("group_id"),
    )
    op.create_table(
        "moderation_receipt",
        sa.Column("ref_id", sa.String(length=64), nullable=False),
        sa.Column("case_id", sa.String(length=40), nullable=False),
        sa.Column("receipt_id", sa.String(length=64), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.String(length=2000), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("receipt_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("ref_id"),
    )
    with op.batch_alter_table("moderation_receipt", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_moderation_receipt_case_id"), ["case_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("moderation_receipt", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_moderation_receipt_case_id"))
    op.drop_table("moderation_receipt")
    op.drop_table("moderation_group_source")
    with op.batch_alter_table("moderation_case", schema=None) as batch_op:
        batch_op.alter_column("event_id", existing_type=sa.String(length=256), nullable=False)
        batch_op.alter_column("event_source", existing_type=sa.String(length=256), nullable=False)
        batch_op.drop_column("by")
    with op.batch_alter_table("moderation_policy", schema=None) as batch_op:
        batch_op.drop_column("notices")
    with op.batch_alter_table("moderation_action", schema=None) as batch_op:
        batch_op.drop_column("message_at")
        batch_op.drop_column("request_ref")
        batch_op.drop_column("mentions")
        batch_op.drop_column("text")
        batch_op.drop_column("source")
