"""Event builders for the metrics tests."""

from __future__ import annotations

import itertools
from datetime import date, datetime, timedelta
from datetime import time as clock
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from services.common.contracts.events import Event, parse_event

SHANGHAI = ZoneInfo("Asia/Shanghai")
_ids = itertools.count(1)


def local(day: date, at: str, tz: ZoneInfo = SHANGHAI) -> datetime:
    """Return the aware datetime of a local wall-clock time on a day."""
    return datetime.combine(day, clock.fromisoformat(at), tz)


def event(
    kind: str, group: str, member: str, when: datetime, *, source: str = "metrics-test"
) -> Event:
    """Build a contract event with a fresh id."""
    n = next(_ids)
    data: dict[str, Any] = {}
    if kind == "message.created":
        data = {"message_id": f"msg-{n}", "text": f"hello {n}"}
    elif kind == "member.updated":
        data = {"display_name": f"name {n}"}
    return parse_event(
        {
            "id": f"evt-{group}-{n}",
            "source": source,
            "type": kind,
            "group_id": group,
            "member_id": member,
            "occurred_at": when.isoformat(),
            "data": data,
        }
    )


def monday_before(day: date) -> date:
    """Return the Monday of the ISO week holding the day."""
    return day - timedelta(days=day.weekday())


def raw(
    kind: str,
    group: str,
    member: str,
    when: datetime,
    data: dict[str, Any] | None = None,
    *,
    event_id: str | None = None,
) -> tuple[Event, bytes]:
    """Build an event and its record's JSON (as the consumer would read it from Kafka)."""
    n = next(_ids)
    body = {
        "id": event_id or f"evt-{group}-{n}",
        "source": "metrics-test",
        "type": kind,
        "group_id": group,
        "member_id": member,
        "occurred_at": when.isoformat(),
        "data": data or ({"message_id": f"msg-{n}"} if kind == "message.created" else {}),
    }
    return parse_event(body), orjson.dumps(body)
