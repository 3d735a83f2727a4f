"""membership: roster, join requests, verification, shared blocklists, lurker clean-ups

`moderation_policy` gains `join_requests` and `verification` (JSON, null: manual / off),
`blocklists` (subscribed list names) and `share_bans_to`. New tables:
`moderation_member` (each member's join, leave and last-message times, kept by the
consumer), `moderation_join_request` (unique on its event), `moderation_verification`
(unique on the join event; indexed by status and deadline for the timer loop),
`moderation_blocklist`, `moderation_blocklist_entry`, `moderation_blocklist_hit` (a listed
joiner banned once per join event), `moderation_cleanup` and `moderation_cleanup_member`.
The roster starts empty: a clean-up lists only members seen since this revision.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-22 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _time(name: str, nullable: bool = True) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    with op.batch_alter_table("moderation_policy", schema=None) as batch_op:
        batch_op.add_column(sa.Column("join_requests", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("verification", sa.JSON(), nullable=True))
        batch_op.add_column(
            sa.Column("blocklists", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )
        batch_op.add_column(sa.Column("share_bans_to", sa.String(length=64), nullable=True))
    op.create_table(
        "moderation_member",
        sa.Column("group_id", sa.String(length=256), nullable=False),
        sa.Column("member_id", sa.String(length=256), nullable=False),
        sa.Column("display_name", sa.String(length=256), nullable=True),
        _time("named_at"),
        _time("first_joined_at"),
        _time("last_joined_at"),
        _time("last_left_at"),
        _time("last_active_at"),
        sa.PrimaryKeyConstraint("group_id", "member_id"),
    )
    op.create_table(
        "moderation_join_request",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("group_id", sa.String(length=256), nullable=False),
        sa.Column("member_id", sa.String(length=256), nullable=False),
        sa.Column("display_name", sa.String(length=256), nullable=True),
        sa.Column("answer", sa.String(length=1024), nullable=False),
        sa.Column("request_ref", sa.String(length=256), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=True),
        sa.Column("source", sa.String(length=256), nullable=False),
        sa.Column("event_id", sa.String(length=256), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("case_id", sa.String(length=40), nullable=True),
        sa.Column("decided_by", sa.String(length=200), nullable=True),
        _time("created_at", nullable=False),
        _time("decided_at"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "group_id", "source", "event_id", name="uq_moderation_join_request_event"
        ),
    )
    op.create_index(
        "ix_moderation_join_request_status", "moderation_join_request", ["group_id", "status", "id"]
    )
    op.create_table(
        "moderation_verification",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("group_id", sa.String(length=256), nullable=False),
        sa.Column("member_id", sa.String(length=256), nullable=False),
        sa.Column("source", sa.String(length=256), nullable=False),
        sa.Column("join_event_id", sa.String(length=256), nullable=False),
        sa.Column("code", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("on_fail", sa.String(length=8), nullable=False),
        _time("joined_at", nullable=False),
        _time("deadline_at", nullable=False),
        _time("decided_at"),
        _time("created_at", nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "group_id", "source", "join_event_id", name="uq_moderation_verification_join"
        ),
    )
    op.create_index(
        "ix_moderation_verification_due", "moderation_verification", ["status", "deadline_at"]
    )
    op.create_index(
        "ix_moderation_verification_member",
        "moderation_verification",
        ["group_id", "member_id", "status"],
    )
    op.create_table(
        "moderation_blocklist",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        _time("created_at", nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "moderation_blocklist_entry",
        sa.Column("list_name", sa.String(length=64), nullable=False),
        sa.Column("member_id", sa.String(length=256), nullable=False),
        sa.Column("reason", sa.String(length=1000), nullable=False),
        sa.Column("added_by", sa.String(length=200), nullable=False),
        sa.Column("origin_group_id", sa.String(length=256), nullable=True),
        _time("created_at", nullable=False),
        _time("propagated_at"),
        sa.PrimaryKeyConstraint("list_name", "member_id"),
    )
    op.create_index(
        "ix_moderation_blocklist_entry_member", "moderation_blocklist_entry", ["member_id"]
    )
    op.create_index(
        "ix_moderation_blocklist_entry_pending", "moderation_blocklist_entry", ["propagated_at"]
    )
    op.create_table(
        "moderation_blocklist_hit",
        sa.Column("group_id", sa.String(length=256), nullable=False),
        sa.Column("source", sa.String(length=256), nullable=False),
        sa.Column("event_id", sa.String(length=256), nullable=False),
        sa.Column("member_id", sa.String(length=256), nullable=False),
        sa.Column("list_name", sa.String(length=64), nullable=False),
        sa.Column("case_id", sa.String(length=40), nullable=False),
        _time("created_at", nullable=False),
        sa.PrimaryKeyConstraint("group_id", "source", "event_id"),
    )
    op.create_table(
        "moderation_cleanup",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("group_id", sa.String(length=256), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("inactive_days", sa.Integer(), nullable=False),
        sa.Column("never_spoke_only", sa.Boolean(), nullable=False),
        sa.Column("per_minute", sa.Integer(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("kicked", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("started_by", sa.String(length=200), nullable=True),
        _time("created_at", nullable=False),
        _time("started_at"),
        _time("next_kick_at"),
        _time("finished_at"),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_moderation_cleanup_group", "moderation_cleanup", ["group_id", "id"])
    op.create_index("ix_moderation_cleanup_due", "moderation_cleanup", ["status", "next_kick_at"])
    op.create_table(
        "moderation_cleanup_member",
        sa.Column("cleanup_id", sa.String(length=40), nullable=False),
        sa.Column("member_id", sa.String(length=256), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("display_name", sa.String(length=256), nullable=True),
        _time("joined_at"),
        _time("last_active_at"),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("case_id", sa.String(length=40), nullable=True),
        sa.PrimaryKeyConstraint("cleanup_id", "member_id"),
    )
    op.create_index(
        "ix_moderation_cleanup_member_order",
        "moderation_cleanup_member",
        ["cleanup_id", "position"],
    )


def downgrade() -> None:
    for table, indexes in (
        ("moderation_cleanup_member", ["ix_moderation_cleanup_member_order"]),
        ("moderation_cleanup", ["ix_moderation_cleanup_due", "ix_moderation_cleanup_group"]),
        ("moderation_blocklist_hit", []),
        (
            "moderation_blocklist_entry",
            ["ix_moderation_blocklist_entry_pending", "ix_moderation_blocklist_entry_member"],
        ),
        ("moderation_blocklist", []),
        (
            "moderation_verification",
            ["ix_moderation_verification_member", "ix_moderation_verification_due"],
        ),
        ("moderation_join_request", ["ix_moderation_join_request_status"]),
        ("moderation_member", []),
    ):
        for index in indexes:
            op.drop_index(index, table_name=table)
        op.drop_table(table)
    with op.batch_alter_table("moderation_policy", schema=None) as batch_op:
        batch_op.drop_column("share_bans_to")
        batch_op.drop_column("blocklists")
        batch_op.drop_column("verification")
        batch_op.drop_column("join_requests")
