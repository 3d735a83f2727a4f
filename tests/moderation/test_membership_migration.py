"""Migration 0006: a policy stored before it reads with the membership parts off."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from sqlmodel import Session

from services.moderation.rulesets import get_policy
from tests.moderation.test_migration import _config


def test_policies_from_before_read_with_no_gates_and_the_downgrade_removes_them(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'moderation.db'}"
    cfg = _config(url)
    command.upgrade(cfg, "0005")
    db = sa.create_engine(url)
    with db.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO moderation_policy (group_id, strike_window_days, ladder,"
                " exempt_members, notices, updated_at)"
                " VALUES ('g1', 7, '[]', '[\"admin\"]', '{}', '2026-11-21 08:00:00')"
            )
        )
    command.upgrade(cfg, "head")
    with Session(db) as session:
        policy = get_policy(session=session, group_id="g1")
    assert (policy.strike_window_days, policy.exempt_members) == (7, ["admin"])
    assert (policy.join_requests, policy.verification) == (None, None)
    assert (policy.blocklists, policy.share_bans_to) == ([], None)
    command.downgrade(cfg, "0005")
    with db.connect() as conn:
        tables = set(sa.inspect(conn).get_table_names())
        columns = {c["name"] for c in sa.inspect(conn).get_columns("moderation_policy")}
    assert not tables & {"moderation_member", "moderation_cleanup", "moderation_blocklist"}
    assert "blocklists" not in columns and "reports" in columns
    db.dispose()
