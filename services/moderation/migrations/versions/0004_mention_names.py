"""moderation_action.mention_names: the display name each mentioned member has in `text`

A notice names its member `@<display name>` when the event carried one; delivery needs
that name to find the `@name` it turns into the platform's mention. Actions stored before
this revision read an empty map (their members are looked for as `@<member id>`).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-15 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("moderation_action", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("mention_names", sa.JSON(), nullable=False, server_default=sa.text("'{}'"))
        )


def downgrade() -> None:
    with op.batch_alter_table("moderation_action", schema=None) as batch_op:
        batch_op.drop_column("mention_names")
