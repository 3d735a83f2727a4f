"""Helpers for the moderation tests: events, rules through the API, waiting and reading actions."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from sqlmodel import Session

from services.common.contracts.events import Event, parse_event
from services.common.db import make_engine, migrate
from services.moderation import roster
from services.moderation.app import MIGRATIONS, VERSION_TABLE
from tests.support import auth, read_topic, wait_until
from tests.unit.moderation.images import qr_png

__all__ = ["qr_png", "wait_until"]  # the moderation tests import them from here


def message(
    group: str,
    member: str,
    text: str = "",
    *,
    at: datetime | None = None,
    event_id: str | None = None,
    **data: Any,
) -> Event:
    """Build a message.created event."""
    return parse_event(
        {
            "id": event_id or uuid.uuid4().hex,
            "source": "test",
            "type": "message.created",
            "group_id": group,
            "member_id": member,
            "occurred_at": (at or datetime.now(UTC)).isoformat(),
            "data": {"message_id": "msg-" + uuid.uuid4().hex[:8], "text": text, **data},
        }
    )


def member_event(
    kind: str, group: str, member: str, *, at: datetime | None = None, **data: Any
) -> Event:
    """Build a member.joined / member.updated / member.left event."""
    return parse_event(
        {
            "id": uuid.uuid4().hex,
            "source": "test",
            "type": kind,
            "group_id": group,
            "member_id": member,
            "occurred_at": (at or datetime.now(UTC)).isoformat(),
            "data": data,
        }
    )


def add_rule(client: Any, token: str, group: str, **rule: Any) -> dict[str, Any]:
    """Create a rule through the API and return it."""
    response = client.post(f"/v1/groups/{group}/rules", json=rule, headers=auth(token))
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def actions(bootstrap: str, topic: str, expect: int, **kwargs: Any) -> list[dict[str, Any]]:
    """Read the actions on the topic, in offset order per partition."""
    records = read_topic(bootstrap, topic, expect=expect, **kwargs)
    return [orjson.loads(r.value) for r in sorted(records, key=lambda r: (r.partition, r.offset))]


@pytest.fixture
def migrated(database_url: str) -> str:
    """The session database with the moderation tables."""
    migrate(migrations_dir=MIGRATIONS, version_table=VERSION_TABLE, database_url=database_url)
    return database_url


def roster_knows(settings: Any, group: str, member: str) -> bool:
    """Tell whether moderation's roster has the member in the group (the consumer read it)."""
    engine = make_engine(settings.database_url)
    try:
        with Session(engine) as session:
            return roster.is_member(session, group, member)
    finally:
        engine.dispose()
