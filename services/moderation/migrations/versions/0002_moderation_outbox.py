"""moderation outbox on the kernel's: moderation_outbox replaces moderation_action.published_at

Actions still unpublished at upgrade time are copied into the outbox in their old
publishing order (created_at, id), addressed to the topic this deployment's settings
name, so nothing queued is lost. `moderation_action` keeps the actions of each case.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 10:00:00
"""

from collections.abc import Sequence
from datetime import UTC

import sqlalchemy as sa
from alembic import op

from services.common.contracts.actions import ModerationAction
from services.common.settings import Settings

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ACTION = sa.table(
    "moderation_action",
    sa.column("id", sa.String),
    sa.column("case_id", sa.String),
    sa.column("group_id", sa.String),
    sa.column("member_id", sa.String),
    sa.column("event_id", sa.String),
    sa.column("message_id", sa.String),
    sa.column("action", sa.String),
    sa.column("duration_seconds", sa.Integer),
    sa.column("rule_id", sa.String),
    sa.column("reason", sa.String),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("published_at", sa.DateTime(timezone=True)),
)
_OUTBOX = sa.table(
    "moderation_outbox",
    sa.column("message_id", sa.String),
    sa.column("topic", sa.String),
    sa.column("key", sa.String),
    sa.column("payload", sa.JSON),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("published_at", sa.DateTime(timezone=True)),
)


def _create_outbox() -> None:
    op.create_table(
        "moderation_outbox",
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
    with op.batch_alter_table("moderation_outbox", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_moderation_outbox_message_id"), ["message_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_moderation_outbox_published_at"), ["published_at"], unique=False
        )


def _copy_pending() -> None:
    bind = op.get_bind()
    pending = bind.execute(
        sa.select(_ACTION)
        .where(_ACTION.c.published_at.is_(None))
        .order_by(_ACTION.c.created_at, _ACTION.c.id)
    ).all()
    if not pending:
        return
    topic = Settings().topic_moderation_actions  # this deployment's, read now
    rows = []
    for row in pending:
        created_at = row.created_at
        aware = created_at.replace(tzinfo=UTC) if created_at.tzinfo is None else created_at
        record = ModerationAction.model_validate({**row._asdict(), "created_at": aware})
        rows.append(
            {
                "message_id": record.id,
                "topic": topic,
                "key": record.group_id,
                "payload": record.model_dump(mode="json"),
                "created_at": created_at,
            }
        )
    bind.execute(sa.insert(_OUTBOX), rows)


def upgrade() -> None:
    _create_outbox()
    _copy_pending()
    with op.batch_alter_table("moderation_action", schema=None) as batch_op:
        batch_op.drop_index("ix_moderation_action_pending")
        batch_op.drop_column("published_at")


def downgrade() -> None:
    with op.batch_alter_table("moderation_action", schema=None) as batch_op:
        batch_op.add_column(sa.Column("published_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(
            "ix_moderation_action_pending", ["published_at", "created_at"], unique=False
        )
    # Everything counts as published but what still waits in the outbox.
    waiting = sa.select(_OUTBOX.c.message_id).where(_OUTBOX.c.published_at.is_(None))
    op.execute(
        sa.update(_ACTION)
        .where(_ACTION.c.id.not_in(waiting))
        .values(published_at=sa.func.current_timestamp())
    )
    with op.batch_alter_table("moderation_outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_moderation_outbox_published_at"))
        batch_op.drop_index(batch_op.f("ix_moderation_outbox_message_id"))
    op.drop_table("moderation_outbox")
