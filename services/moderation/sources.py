"""Each group's latest webhook source: the table `moderation_group_source`.

An action caused by an event goes out through the event's source. Reversals and manual
actions have no event, so they use the source of the group's latest event, which the
consumer keeps here: one row per group, written only when the source a process last
wrote for the group changed (so a steady stream costs no writes).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from services.common.contracts.events import Event
from services.common.db import utcnow
from services.moderation.models import GroupSource

MAX_REMEMBERED = 100_000


def latest_source(session: Session, group_id: str) -> str | None:
    """The source of the group's latest event moderation read, or None."""
    row = session.get(GroupSource, group_id)
    return row.source if row else None


def _upsert(session: Session, rows: list[dict[str, object]]) -> None:
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(GroupSource).values(rows)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["group_id"],
            set_={"source": statement.excluded.source, "updated_at": statement.excluded.updated_at},
        )
    )


class SourceTracker:
    """Remembers what this process wrote last per group; `changed` says what to write now."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._written: OrderedDict[str, str] = OrderedDict()

    def changed(self, events: Iterable[Event]) -> dict[str, str]:
        """The latest source per group in the batch, where it differs from what was written."""
        latest: dict[str, str] = {}
        for event in events:
            latest[event.group_id] = event.source
        with self._lock:
            return {g: s for g, s in latest.items() if self._written.get(g) != s}

    def write(self, session: Session, sources: dict[str, str]) -> None:
        """Upsert the rows in the session's transaction (the caller commits, then `remember`)."""
        if sources:
            now = utcnow()
            rows: list[dict[str, object]] = [
                {"group_id": g, "source": s, "updated_at": now} for g, s in sorted(sources.items())
            ]
            _upsert(session, rows)

    def remember(self, sources: dict[str, str]) -> None:
        """Note what was committed."""
        with self._lock:
            for group, source in sources.items():
                self._written[group] = source
                self._written.move_to_end(group)
            while len(self._written) > MAX_REMEMBERED:
                self._written.popitem(last=False)
