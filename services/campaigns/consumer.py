"""The campaigns consumer group: typed events from community.events.v1 to the handler."""

from __future__ import annotations

from services.common.bus import ConsumedEvent


def handle_batch(events: list[ConsumedEvent]) -> None:
    """Apply one poll's events."""
