"""Migration 0002: actions still unpublished at upgrade time move into the kernel outbox."""

from __future__ import annotations

import json
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from services.moderation.app import MIGRATIONS, VERSION_TABLE


def _config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("version_table", VERSION_TABLE)
    cfg.attributes["database_url"] = url
    cfg.attributes["version_table"] = VERSION_TABLE
    return cfg


INSERT = sa.text(
    "INSERT INTO moderation_action (id, case_id, group_id, member_id, event_id, message_id,"
    " action, duration_seconds, rule_id, reason, created_at, published_at)"
    " VALUES (:id, :id, 'g1', 'm1', 'e1', NULL, 'mute', 600, 'rule_1', 'flood', :at, :published)"
)


def test_pending_actions_are_copied_in_order_and_published_ones_are_not(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("TOPIC_MODERATION_ACTIONS", "moderation.actions.v1.migrated")
    url = f"sqlite:///{tmp_path / 'moderation.db'}"
    cfg = _config(url)
    command.upgrade(cfg, "0001")
    db = sa.create_engine(url)
    with db.begin() as conn:
        conn.execute(INSERT, {"id": "case_b", "at": "2026-11-21 08:00:02", "published": None})
        conn.execute(
            INSERT, {"id": "case_c", "at": "2026-11-21 08:00:00", "published": "2026-11-21"}
        )
        conn.execute(INSERT, {"id": "case_a", "at": "2026-11-21 08:00:01", "published": None})
    command.upgrade(cfg, "head")
    with db.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT message_id, topic, key, payload FROM moderation_outbox ORDER BY seq")
        ).all()
        columns = {c["name"] for c in sa.inspect(conn).get_columns("moderation_action")}
    assert [(r.message_id, r.topic, r.key) for r in rows] == [
        ("case_a", "moderation.actions.v1.migrated", "g1"),
        ("case_b", "moderation.actions.v1.migrated", "g1"),
    ]
    assert json.loads(rows[0].payload) == {
        "id": "case_a",
        "case_id": "case_a",
        "group_id": "g1",
        "member_id": "m1",
        "event_id": "e1",
        "message_id": None,
        "action": "mute",
        "duration_seconds": 600,
        "rule_id": "rule_1",
        "reason": "flood",
        "created_at": "2026-11-21T08:00:01+00:00",
        # the contract's later fields, at their defaults (migration 0002 writes the contract)
        "source": None,
        "text": None,
        "mentions": [],
        "mention_names": {},
        "request_ref": None,
        "message_at": None,
    }
    assert "published_at" not in columns
    command.downgrade(cfg, "0001")
    with db.connect() as conn:
        pending = conn.execute(
            sa.text("SELECT id FROM moderation_action WHERE published_at IS NULL ORDER BY id")
        ).all()
    assert [r.id for r in pending] == ["case_a", "case_b"]
    db.dispose()
