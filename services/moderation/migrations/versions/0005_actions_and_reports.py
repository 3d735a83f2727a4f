"""what an action means, and member reports

`moderation_rule.delete_message` (a rule that judges a message deletes it unless false;
existing rules read true). `moderation_case` gains `rule_names` (beside `rule_ids`),
`burst_message_ids` (later messages of the same burst, recorded instead of a second
action), `reporters`, and who reversed it and why (`reversed_by`, `reversal_reason`);
an index serves the `action` filter. `moderation_policy.reports` holds the report
settings (null: off). New tables: `moderation_report` (one per reported message) and
`moderation_report_vote` (one per reporter of a message: the primary key counts a
report once).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-20 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("moderation_rule", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("delete_message", sa.Boolean(), nullable=False, server_default=sa.true())
        )
    with op.batch_alter_table("moderation_case", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("rule_names", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )
        batch_op.add_column(
            sa.Column(
                "burst_message_ids", sa.JSON(), nullable=False, server_default=sa.text("'[]'")
            )
        )
        batch_op.add_column(
            sa.Column("reporters", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )
        batch_op.add_column(sa.Column("reversed_by", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("reversal_reason", sa.String(length=1000), nullable=True))
        batch_op.create_index("ix_moderation_case_action", ["group_id", "action", "id"])
    with op.batch_alter_table("moderation_policy", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reports", sa.JSON(), nullable=True))
    op.create_table(
        "moderation_report",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("group_id", sa.String(length=256), nullable=False),
        sa.Column("message_id", sa.String(length=256), nullable=False),
        sa.Column("member_id", sa.String(length=256), nullable=False),
        sa.Column("message_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("case_id", sa.String(length=40), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actioned_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("group_id", "message_id", name="uq_moderation_report_message"),
    )
    with op.batch_alter_table("moderation_report", schema=None) as batch_op:
        batch_op.create_index("ix_moderation_report_status", ["group_id", "status", "id"])
    op.create_table(
        "moderation_report_vote",
        sa.Column("group_id", sa.String(length=256), nullable=False),
        sa.Column("message_id", sa.String(length=256), nullable=False),
        sa.Column("reporter_id", sa.String(length=256), nullable=False),
        sa.Column("event_id", sa.String(length=256), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("group_id", "message_id", "reporter_id"),
    )


def downgrade() -> None:
    op.drop_table("moderation_report_vote")
    with op.batch_alter_table("moderation_report", schema=None) as batch_op:
        batch_op.drop_index("ix_moderation_report_status")
    op.drop_table("moderation_report")
    with op.batch_alter_table("moderation_policy", schema=None) as batch_op:
        batch_op.drop_column("reports")
    with op.batch_alter_table("moderation_case", schema=None) as batch_op:
        batch_op.drop_index("ix_moderation_case_action")
        batch_op.drop_column("reversal_reason")
        batch_op.drop_column("reversed_by")
        batch_op.drop_column("reporters")
        batch_op.drop_column("burst_message_ids")
        batch_op.drop_column("rule_names")
    with op.batch_alter_table("moderation_rule", schema=None) as batch_op:
        batch_op.drop_column("delete_message")
