"""What ingest's routes run with: the `Runtime` its startup yields, and how a route gets it."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from starlette.applications import Starlette

from services.common.deps import get_resources, service_state
from services.common.settings import QunyunConfig, Source
from services.ingest.dedup import Dedup
from services.ingest.producer import ProduceThread
from services.ingest.webhooks import PLATFORMS


def sources_of(config: QunyunConfig) -> dict[str, Source]:
    """Return the config's webhook sources by id (the URL segment).

    Sources of a platform ingest has no webhook adapter for (outbound-only ones, used by
    delivery) are left out: a webhook to them is an unknown source (404), never a 500.
    """
    return {source.id: source for source in config.sources if source.platform in PLATFORMS}


@dataclass
class Runtime:
    """Ingest's sources and async clients, built in the app's lifespan.

    `sources` is replaced whole, in one assignment, when QUNYUN_CONFIG is reloaded
    (`use_config`, a config listener run on the reload thread): a request reads either
    the old mapping or the new one, never a half-built one, and the hot path stays one
    attribute and one dict lookup. The other fields never change.
    """

    sources: dict[str, Source]
    dedup: Dedup
    producer: ProduceThread
    topic: str
    produce_timeout: float

    def use_config(self, config: QunyunConfig) -> None:
        """Take a reloaded config's sources: the next webhook sees them."""
        self.sources = sources_of(config)


_runtime_of = service_state(Runtime)


def runtime_of(request: Request) -> Runtime:
    """Return the app's Runtime, checked as `service_state(Runtime)` checks it.

    The webhook route calls this itself rather than declaring `Depends(...)`: FastAPI's
    dependency resolution costs about 8 µs per request even for a coroutine dependency
    (a bare route measured 33 µs without and 41 µs with one), some 3 % of a single-event
    webhook, which is the benchmarked hot path; a plain-function dependency such as
    `service_state`'s would also hop to a worker thread on every request.
    """
    return _runtime_of(get_resources(request))


def runtime_in(app: Starlette) -> Runtime:
    """Return the app's Runtime where there is no Request (the webhook lane, lane.py)."""
    return _runtime_of(app.state.resources)
