"""Which source carries a record out, and why none can (`no_route` with a clear detail)."""

from __future__ import annotations

from dataclasses import dataclass

from services.common.settings import QunyunConfig, Source
from services.delivery.pacing import Rates, rates_for
from services.platforms import missing_credentials


@dataclass(frozen=True)
class Route:
    """A source able to act in its groups, with its pacing."""

    source: Source
    rates: Rates


def route_for(config: QunyunConfig, source_id: str | None) -> Route | str:
    """The record's route, or the `no_route` detail saying what is missing."""
    if not source_id:
        return "the record names no source (its group has sent no event yet?)"
    source = config.source(source_id)
    if source is None:
        return f"unknown source {source_id!r}: it is not in QUNYUN_CONFIG"
    missing = missing_credentials(source.platform, source.outbound)
    if missing:
        return (
            f"source {source_id!r} ({source.platform}) has no outbound credentials: "
            f"missing {', '.join(missing)}"
        )
    return Route(source, rates_for(source))
