"""deliveries: ix_deliveries_heads, each group's unfinished rows in order (a partial index)

A claim finds each group's oldest unfinished row with one probe of this index, however
many rows the group has queued; before it, PostgreSQL compared every pair of a group's
queued rows (a hash anti-join), so a backlog of 10,000 rows made every claim take seconds.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-20 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNFINISHED = "state IN ('pending', 'in_flight')"


def upgrade() -> None:
    op.create_index(
        "ix_deliveries_heads",
        "deliveries",
        ["group_id", "seq"],
        postgresql_where=sa.text(UNFINISHED),
        sqlite_where=sa.text(UNFINISHED),
    )


def downgrade() -> None:
    op.drop_index("ix_deliveries_heads", table_name="deliveries")
