"""Group commit for the dispatcher: the results of many calls written in one transaction.

A task that has a result `submit`s it and waits. While no write is running the first
result starts one at the next turn of the event loop; every result that arrives while a
write runs waits for the next one, which then takes them all. So under load one
`to_thread` hop and one transaction settle a whole round of finished calls, and when idle
a single result is written at once. Each row is still guarded by its own claim token
(settle.py). When a batch's transaction fails, its results are written one at a time, so
one bad row does not hold back the others; a result whose own write fails raises to its
task, and its row stays in flight until the lease expires (an unknown outcome, as after a
crash).

With `refill`, a write also claims the next due heads of the groups it settled, one per
result at most (settle.py `settle_and_claim`), and runs `refill` on them in the same
worker thread (the dispatcher routes, plans and paces them there); what it returns goes
to `launch` on the loop. A busy group's records thus follow each other with no claim
transaction and no executor hop of their own.

With `linger`, a write about to start waits up to that long while `calling()` says calls
are still under way, and starts as soon as the last of them has submitted: records that
trickle in are handed over a poll at a time and called together, and their results then
share one transaction instead of paying one each.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine

from services.delivery.settle import Row, Settlement, settle_and_claim
from services.delivery.store import LEASE, Claim

log = logging.getLogger(__name__)

Waiter = asyncio.Future[Row | None]


class Settler:
    """Collects settlements on the dispatcher's loop and writes them in batches."""

    def __init__(
        self,
        engine: Engine,
        topic: str,
        max_batch: int = 500,
        *,
        lease: timedelta = LEASE,
        refill: Callable[[list[Claim]], list[Any]] | None = None,
        launch: Callable[[list[Any]], None] = lambda _: None,
        linger: float = 0.0,
        calling: Callable[[], int] = lambda: 0,
    ) -> None:
        self._engine, self._topic, self._max_batch = engine, topic, max_batch
        self._lease, self._refill, self._launch = lease, refill, launch
        self._linger, self._calling = linger, calling
        self._gathered: asyncio.Event | None = None  # set when no call is under way
        self._pending: list[tuple[Settlement, Waiter]] = []
        self._writing = False
        self._drain_task: asyncio.Task[None] | None = None

    async def submit(self, item: Settlement) -> Row | None:
        """Write `item` with whatever else is pending; the row when now finished, else None."""
        waiter: Waiter = asyncio.get_running_loop().create_future()
        self._pending.append((item, waiter))
        if self._gathered is not None and self._calling() == 0:
            self._gathered.set()
        if not self._writing:  # the write starts at the loop's next turn, with all pending
            self._writing = True
            self._drain_task = asyncio.get_running_loop().create_task(self._drain())
        return await waiter

    async def _drain(self) -> None:
        try:
            while self._pending:
                if self._linger > 0 and self._calling() > 0:
                    await self._gather()
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                await self._write(batch)
        finally:
            self._writing = False

    async def _gather(self) -> None:
        """Wait until no call is under way (each submits as it ends), or `linger` at most."""
        gathered = self._gathered = asyncio.Event()
        timer = asyncio.get_running_loop().call_later(self._linger, gathered.set)
        try:
            await gathered.wait()
        finally:
            timer.cancel()
            self._gathered = None

    async def _write(self, batch: list[tuple[Settlement, Waiter]]) -> None:
        items = [item for item, _ in batch]
        try:
            results, follow = await asyncio.to_thread(self._settle, items)
        except Exception as exc:  # noqa: BLE001 - fall back to one transaction per result
            if len(batch) == 1:
                if not batch[0][1].done():
                    batch[0][1].set_exception(exc)
                return
            log.warning("settling %d results in one transaction failed; one by one", len(batch))
            for one in batch:
                await self._write([one])
            return
        for (_, waiter), row in zip(batch, results, strict=True):
            if not waiter.done():
                waiter.set_result(row)
        if follow:
            self._launch(follow)

    def _settle(self, items: Sequence[Settlement]) -> tuple[list[Row | None], list[Any]]:
        """In a worker thread: write the results, claim and prepare what follows them."""
        refill = len(items) if self._refill is not None else 0
        results, claims = settle_and_claim(
            self._engine, items, topic=self._topic, refill=refill, lease=self._lease
        )
        if not claims or self._refill is None:
            return results, []
        return results, self._refill(claims)
