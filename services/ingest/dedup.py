"""Deduplication on (source, id) in Redis: short in-flight claims, then 'seen' for the TTL.

One key per event, `qy:{src:<source>}:seen:<id>`, holds either a claim token (PX, while
a request produces it) or "seen" (EX, once Kafka acknowledged it). The hash tag is the
source, not a group: the key is (source, id) and a batch mixes groups, so every key of
a batch stays in one Redis Cluster slot, and one Lua call can serve a whole round of the
source's concurrent requests (their marks, then their claims).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from enum import IntEnum
from importlib.resources import files
from typing import Any

import redis.asyncio

from services.common.redis_client import hash_tag
from services.ingest.telemetry import DEDUP_COMMIT_FAILURES

log = logging.getLogger(__name__)

# One call of lua/claim.lua serves every request of a source waiting at that moment (group
# commit): first it marks acknowledged keys seen, then claims the others, each with its
# request's token; lua/release.lua drops a token's claims.
_LUA = files("services.ingest") / "lua"
_CLAIM = (_LUA / "claim.lua").read_text(encoding="utf-8")
_RELEASE = (_LUA / "release.lua").read_text(encoding="utf-8")


class Claim(IntEnum):
    """What a claim attempt found for one key."""

    MINE = 0  # new: this request produces it
    SEEN = 1  # acknowledged before: a duplicate
    BUSY = 2  # another request is producing it right now


def dedup_key(source_id: str, event_id: str) -> str:
    """Return the Redis key of (source, id)."""
    return f"qy:{hash_tag(f'src:{source_id}')}:seen:{event_id}"


_Claims = tuple[list[str], list[str], "asyncio.Future[Any]"]

# How long acknowledged keys may wait for a round to ride in (one started by a claim, under
# load) before a round of their own carries them.
MARK_DELAY_SECONDS = 0.005


class _Rounds:
    """Group commit of one source's marks and claims: one script call per round.

    A claim starts a round at once; claims arriving while a call is in flight queue and go
    together in the next call, so under load one round trip serves many requests' claims,
    and at low load nothing waits. Marks are not waited for: they join the next round, or
    start one after MARK_DELAY_SECONDS, so a request costs one round trip, not two, even
    at a few hundred webhooks/s. Marks go before claims in a round, so a redelivery that
    arrives after the answer of the first delivery finds its keys seen. Each claimer gets
    its slice of the result; a Redis error reaches every claimer of that round and counts
    its marks as failed (`on_mark_error`); the claims of those keys then expire.
    """

    def __init__(
        self,
        run: Callable[[list[str], list[str], list[str]], Awaitable[Any]],
        on_mark_error: Callable[[int, Exception], None],
    ) -> None:
        self._run = run
        self._on_mark_error = on_mark_error
        self._marks: list[list[str]] = []
        self._claims: list[_Claims] = []
        self._task: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None

    async def claim(self, keys: list[str], tokens: list[str]) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._claims.append((keys, tokens, future))
        self._start()
        return await future

    def mark_soon(self, keys: list[str]) -> None:
        self._marks.append(keys)
        if self._task is None and self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(MARK_DELAY_SECONDS, self._start)

    async def flush(self) -> None:
        """Write the marks still waiting (at shutdown)."""
        if self._marks:
            self._start()
        if self._task is not None:
            await self._task

    def _start(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._task is None:
            self._task = asyncio.create_task(self._drain())

    async def _drain(self) -> None:
        try:
            while self._marks or self._claims:
                marks, claims = self._marks, self._claims
                self._marks, self._claims = [], []
                mark_keys = [key for keys in marks for key in keys]
                claim_keys = [key for waiter in claims for key in waiter[0]]
                tokens = [token for waiter in claims for token in waiter[1]]
                try:
                    found = await self._run(mark_keys, claim_keys, tokens)
                except Exception as exc:  # noqa: BLE001 - every waiter of the round gets it
                    if marks:
                        self._on_mark_error(len(marks), exc)
                    for _, _, future in claims:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                start = 0
                for keys, _, future in claims:
                    end = start + len(keys)
                    if not future.done():
                        future.set_result(found[start:end])
                    start = end
        finally:
            self._task = None


def _count_mark_error(batches: int, exc: Exception) -> None:
    # The events are in Kafka and were answered 202; a redelivery within the claim's life
    # is still absorbed, later ones reach the idempotent consumers.
    DEDUP_COMMIT_FAILURES.inc(batches)
    log.warning("acknowledged events not marked seen: %s", type(exc).__name__)


class Dedup:
    """Claims, marks and releases on an asyncio Redis client (EVALSHA of scripts loaded once).

    Marks and claims of concurrent requests of one source share a call (their keys share the
    source's hash tag, so one Redis Cluster slot); releases, rare, go alone.
    """

    def __init__(self, client: redis.asyncio.Redis, *, claim_ms: int, ttl_seconds: int) -> None:
        self._step = client.register_script(_CLAIM)
        self._release = client.register_script(_RELEASE)
        self._claim_ms = claim_ms
        self._ttl_seconds = ttl_seconds
        # A token only has to differ from every other request's: a random prefix per Dedup
        # (built in each process's lifespan, so never shared by forked workers) and a counter;
        # uuid4 per request cost more CPU than the rest of the claim.
        self._prefix = uuid.uuid4().hex
        self._counter = itertools.count()
        self._rounds: dict[str, _Rounds] = {}

    def _source(self, source_id: str) -> _Rounds:
        rounds = self._rounds.get(source_id)
        if rounds is None:
            rounds = self._rounds[source_id] = _Rounds(self._call, _count_mark_error)
        return rounds

    async def _call(self, marks: list[str], claims: list[str], tokens: list[str]) -> Any:
        args: list[str | int] = [len(marks), self._ttl_seconds, self._claim_ms, *tokens]
        return await self._step(keys=[*marks, *claims], args=args)

    def new_token(self) -> str:
        """Return a claim token no other request holds."""
        return f"{self._prefix}-{next(self._counter)}"

    async def claim(self, source_id: str, *, keys: Sequence[str], token: str) -> list[Claim]:
        """Claim every absent key for this token atomically; say what each key held."""
        if not keys:
            return []
        found = await self._source(source_id).claim(list(keys), [token] * len(keys))
        return [Claim(int(v)) for v in found]

    def mark_seen(self, source_id: str, *, keys: Sequence[str]) -> None:
        """Mark acknowledged keys as seen for the dedup window, in the source's next round.

        Not awaited: until the round lands, the keys still hold this request's claim, so a
        redelivery meanwhile waits for them (BUSY), as it would for a request in flight.
        """
        if keys:
            self._source(source_id).mark_soon(list(keys))

    async def flush(self) -> None:
        """Write every mark still waiting for its round (at shutdown, before the client closes)."""
        for rounds in list(self._rounds.values()):
            await rounds.flush()

    async def release(self, *, keys: Sequence[str], token: str) -> None:
        """Drop this token's claims so a retry (or a waiting request) can produce the events."""
        if keys:
            await self._release(keys=list(keys), args=[token])
