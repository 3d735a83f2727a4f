"""The process heap and the cyclic garbage collector: one policy for every service."""

from __future__ import annotations

import gc
from functools import cache


@cache
def freeze_startup_heap() -> None:
    """Keep what exists once a service has started out of the collector's full passes.

    The imported modules, clients, settings and apps (≈ 190,000 objects) live as long as the
    process, yet every full collection walked them all: under load, with each record or
    request allocating a few dozen objects, that was 8 % of the metrics consumer's time and
    a fifth of moderation's and ingest's (0.1 s per pass). Called by the app factory once a
    service's start-up is done and by the first consumer loop a process starts (benchmarks
    run consumers without an app); once per process, since tests start many of both.
    """
    gc.collect()
    gc.freeze()
