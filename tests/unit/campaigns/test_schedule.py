"""Scheduling arithmetic with no server: when a campaign's next step is due."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.campaigns.models import Campaign
from services.campaigns.scheduler import next_due, reminder_due, skip_past_reminders
from services.campaigns.schemas import iso_duration

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def campaign(**fields: Any) -> Campaign:
    values: dict[str, Any] = {
        "id": "c1",
        "group_id": "g",
        "kind": "event",
        "title": "t",
        "starts_at": T0,
        "ends_at": T0 + 2 * HOUR,
        "created_at": T0 - 24 * HOUR,
        "updated_at": T0 - 24 * HOUR,
    }
    values.update(fields)
    return Campaign(**values)


def test_reminders_are_due_before_the_start():
    c = campaign(reminders=[86400, 3600])
    assert reminder_due(c, 0) == T0 - 24 * HOUR
    assert reminder_due(c, 1) == T0 - HOUR


def test_scheduled_campaign_is_due_at_its_earliest_pending_step():
    c = campaign(announce_at=T0 - 48 * HOUR, reminders=[86400, 3600])
    assert next_due(c) == T0 - 48 * HOUR
    c.announced_at = T0 - 48 * HOUR
    assert next_due(c) == T0 - 24 * HOUR
    c.reminders_sent = 1
    assert next_due(c) == T0 - HOUR
    c.reminders_sent = 2
    assert next_due(c) == T0


def test_an_announcement_after_every_reminder_does_not_hide_them():
    c = campaign(announce_at=T0 - HOUR / 2, reminders=[3600])
    assert next_due(c) == T0 - HOUR


def test_active_campaign_is_due_at_its_end():
    assert next_due(campaign(status="active")) == T0 + 2 * HOUR


@pytest.mark.parametrize(
    ("kind", "params", "drawn", "due"),
    [
        ("lottery", {"draw_delay_seconds": 5}, False, T0 + 2 * HOUR + timedelta(seconds=5)),
        ("lottery", {}, False, T0 + 2 * HOUR),
        ("lottery", {"draw_delay_seconds": 5}, True, None),
        ("checkin", {}, False, None),
    ],
)
def test_ended_campaign_is_due_only_for_a_lottery_draw(kind, params, drawn, due):
    c = campaign(kind=kind, status="ended", params=params, drawn_at=T0 if drawn else None)
    assert next_due(c) == due


@pytest.mark.parametrize("status", ["cancelled"])
def test_cancelled_campaign_is_never_due(status: str):
    assert next_due(campaign(status=status)) is None


def test_skip_past_reminders_marks_the_ones_already_due():
    c = campaign(reminders=[86400, 3600, 600])
    skip_past_reminders(c, T0 - 2 * HOUR)
    assert c.reminders_sent == 1
    skip_past_reminders(c, T0 - HOUR)
    assert c.reminders_sent == 2
    skip_past_reminders(c, T0 - 48 * HOUR)
    assert c.reminders_sent == 0


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "PT0S"), (30, "PT30S"), (5400, "PT1H30M"), (86400, "P1D"), (93600, "P1DT2H")],
)
def test_iso_duration(seconds: int, text: str):
    assert iso_duration(timedelta(seconds=seconds)) == text
