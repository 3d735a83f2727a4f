"""campaigns: poll votes, feedback items, invitees, eligibility exclusions

New tables: `campaigns_vote` (a poll's votes: one per member, or one per member and option
in a multiple-choice poll), `campaigns_feedback` (a feedback campaign's items),
`campaigns_invitee` (an invite campaign's counted invitees, settled by the scheduler) and
`campaigns_exclusion` (members left out of a lottery or poll: moderation or an operator).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-20 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _at(name: str, *, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "campaigns_vote",
        sa.Column("campaign_id", sa.String(length=32), nullable=False),
        sa.Column("member_id", sa.String(length=256), nullable=False),
        sa.Column("slot", sa.Integer(), nullable=False),
        sa.Column("option", sa.Integer(), nullable=False),
        _at("voted_at"),
        sa.Column("message_id", sa.String(length=256), nullable=False),
        sa.PrimaryKeyConstraint("campaign_id", "member_id", "slot"),
    )
    op.create_table(
        "campaigns_feedback",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("campaign_id", sa.String(length=32), nullable=False),
        sa.Column("group_id", sa.String(length=256), nullable=False),
        sa.Column("member_id", sa.String(length=256), nullable=False),
        sa.Column("message_id", sa.String(length=256), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        _at("created_at"),
        _at("updated_at"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("campaign_id", "message_id", name="uq_campaigns_feedback_message"),
    )
    op.create_index(
        "ix_campaigns_feedback_status", "campaigns_feedback", ["campaign_id", "status", "id"]
    )
    op.create_table(
        "campaigns_invitee",
        sa.Column("campaign_id", sa.String(length=32), nullable=False),
        sa.Column("member_id", sa.String(length=256), nullable=False),
        sa.Column("group_id", sa.String(length=256), nullable=False),
        sa.Column("inviter_id", sa.String(length=256), nullable=False),
        _at("joined_at"),
        _at("due_at"),
        _at("left_at", nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        _at("settled_at", nullable=True),
        sa.PrimaryKeyConstraint("campaign_id", "member_id"),
    )
    op.create_index("ix_campaigns_invitee_due", "campaigns_invitee", ["settled_at", "due_at"])
    op.create_index("ix_campaigns_invitee_group_id", "campaigns_invitee", ["group_id"])
    op.create_table(
        "campaigns_exclusion",
        sa.Column("campaign_id", sa.String(length=32), nullable=False),
        sa.Column("member_id", sa.String(length=256), nullable=False),
        sa.Column("cause", sa.String(length=16), nullable=False),
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("group_id", sa.String(length=256), nullable=False),
        sa.Column("reason", sa.String(length=1000), nullable=False),
        sa.Column("by", sa.String(length=256), nullable=False),
        _at("created_at"),
        sa.PrimaryKeyConstraint("campaign_id", "member_id", "cause"),
        sa.UniqueConstraint("id"),
    )
    op.create_index(
        "ix_campaigns_exclusion_member", "campaigns_exclusion", ["group_id", "member_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_campaigns_exclusion_member", table_name="campaigns_exclusion")
    op.drop_table("campaigns_exclusion")
    op.drop_index("ix_campaigns_invitee_group_id", table_name="campaigns_invitee")
    op.drop_index("ix_campaigns_invitee_due", table_name="campaigns_invitee")
    op.drop_table("campaigns_invitee")
    op.drop_index("ix_campaigns_feedback_status", table_name="campaigns_feedback")
    op.drop_table("campaigns_feedback")
    op.drop_table("campaigns_vote")
