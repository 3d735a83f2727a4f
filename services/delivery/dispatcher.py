"""The dispatcher: carries out due deliveries, many groups at once, one record per group.

It is a `BackgroundLoop` whose thread owns an asyncio event loop and one shared
`httpx.AsyncClient` (pooled connections for every platform; the Feishu token cache lives in
each source's client). Asyncio rather than a thread pool because the platform clients are
async and a call mostly waits on the network: hundreds of groups can each have their one
call in flight on a single thread, and a slow or paced group costs nothing but a row whose
`next_attempt_at` lies ahead — nothing ever sleeps holding other groups. Blocking database
and Redis calls run in the loop's default executor.

Each cycle claims due group heads (store.py); in one executor hop for the whole round it
routes each (no source or credentials → `no_route`), plans it (nothing to call →
`recorded`) and takes the round's pacing tokens in one Redis pipeline (denied: give the
claim back, due when the bucket refills); then it starts a task per claim and waits until
a task ends, a consumer commit wakes it, a row it gave back or requeued becomes due (a
timer set for that moment, so a paced group flows at its rate, not at the polling rate),
or `poll` seconds pass (rows another replica left behind, leases that expired). Rows the
consumer inserted already claimed (a group with nothing queued, store.insert_claiming)
arrive through `hand`: the consumer's thread routes, plans and paces them after its
commit and the loop starts their tasks at once, so a lone record costs no claim round
trip and no wake-up; `reserve` keeps them within `max_in_flight`. A task calls, decides
(policy.py) and hands the result to the settler (settler.py), which writes the results
of every call that ended meanwhile, each with its receipt and guarded by its claim token,
in one transaction (settle.py).
The row was marked in flight, with the attempt counted, before the call; after a crash
its lease expires and the call is made again as an unknown outcome (delete, mute, kick
and ban are idempotent; Feishu posts carry a `uuid`), counted in
qunyun_delivery_unknown_outcome_retries_total.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import httpx
import redis
from sqlalchemy import Engine

from services.common.settings import QunyunConfig, Settings
from services.common.worker import BackgroundLoop
from services.delivery import telemetry
from services.delivery.pacing import Ask, Pacer
from services.delivery.plan import plan
from services.delivery.policy import Decision, decide
from services.delivery.routing import Route, route_for
from services.delivery.settle import Row, Settlement, without_call
from services.delivery.settler import Settler
from services.delivery.store import Claim, claim_due, queue_depth, release
from services.platforms import (
    DEFAULT_TIMEOUT,
    CallResult,
    InvalidTarget,
    OperationRequest,
    PlatformClient,
    client_for,
)
from services.platforms.http import HTTP_LIMITS, pooled_client

log = logging.getLogger(__name__)

DEPTH_EVERY = 5.0
# Receipts wait up to this long for the relay, so that records trickling in (one settle
# transaction each) share its transaction and its Kafka round trip instead of paying one
# each: at 100 records/s about five share one.
RECEIPT_WAIT = 0.05
# A result waits up to this long for the calls still under way before its settle starts
# (settler.py), so calls handed over together — a poll's records — settle in one
# transaction instead of one each. The call itself is not delayed.
SETTLE_LINGER = 0.005
__all__ = ["HTTP_LIMITS", "Dispatcher", "Ready"]


@dataclass(frozen=True)
class Ready:
    """A claim after routing and pacing: finish it uncalled, give it back, or call `op`."""

    claim: Claim
    finish: tuple[str, str] | None = None  # outcome, detail
    wait: float = 0.0  # give back, due again after this many seconds
    route: Route | None = None
    op: OperationRequest | None = None
    last_step: bool = False


class Dispatcher(BackgroundLoop):
    """Claims due deliveries and carries them out on an asyncio loop in its thread."""

    def __init__(
        self,
        *,
        engine: Engine,
        redis_client: redis.Redis,
        settings: Settings,
        config: QunyunConfig,
        on_receipt: Callable[[], None] = lambda: None,
        max_in_flight: int = 64,
        poll: float = 0.2,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    ) -> None:
        super().__init__("delivery-dispatcher")
        self._engine, self._settings, self._config = engine, settings, config
        self._lease = timedelta(seconds=settings.delivery_lease_seconds)
        self._pacer = Pacer(redis_client)
        self._on_receipt = on_receipt
        self._max_in_flight, self._poll, self._timeout = max_in_flight, poll, timeout
        self._aloop: asyncio.AbstractEventLoop | None = None
        self._woken: asyncio.Event | None = None
        self._http: httpx.AsyncClient | None = None
        self._settler: Settler | None = None
        self._clients: dict[str, PlatformClient] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._calling = 0  # platform calls under way (the settler waits briefly for them)
        self._reserved = 0  # slots the consumer reserved for rows it inserts claimed
        self._more = False  # the last claim round had no room for every due row
        self._relay_woken = False  # a wake-up of the receipts' relay is scheduled
        self._reserving = threading.Lock()
        self._depth_at = 0.0
        self._depth_sources: set[str] = set()

    def use_config(self, config: QunyunConfig) -> None:
        """Take a reloaded QUNYUN_CONFIG: later calls use its sources and credentials."""
        self._config = config
        self._clients = {}  # a new dict: the loop thread may be reading the old one

    def wake(self) -> None:
        """New rows were committed: look for due work now."""
        super().wake()
        loop, woken = self._aloop, self._woken
        if loop is not None and woken is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(woken.set)

    def reserve(self, wanted: int) -> int:
        """Room for up to `wanted` rows the consumer will insert claimed (0: not running).

        Called from the consumer's thread before its transaction; `hand` gives the room back.
        """
        with self._reserving:
            loop = self._aloop
            if loop is None or loop.is_closed() or self.stopping or self._woken is None:
                return 0
            room = max(0, min(wanted, self._max_in_flight - len(self._tasks) - self._reserved))
            self._reserved += room
            return room

    def hand(self, claims: list[Claim], reserved: int) -> None:
        """Carry out rows the consumer inserted claimed and committed; release the room.

        Routing, planning and pacing run here, in the consumer's thread (no executor hop);
        the loop starts a task per row at once. A loop that is gone leaves the rows in
        flight: their leases expire and they are claimed again, as after a crash.
        """
        prepared = self._prepare_all(claims) if claims else []
        loop = self._aloop
        try:
            if loop is None:
                raise RuntimeError("dispatcher not running")
            loop.call_soon_threadsafe(self._launch, prepared, reserved)
        except RuntimeError:  # closed: the leases bring the rows back
            with self._reserving:
                self._reserved -= reserved

    def _launch(self, prepared: list[Ready], reserved: int = 0) -> None:
        """Start a task per prepared claim (on the loop)."""
        for ready in prepared:
            task = asyncio.create_task(self._carry_out(ready))
            self._tasks.add(task)
            task.add_done_callback(self._task_done)
        if reserved:
            with self._reserving:
                self._reserved -= reserved

    def _task_done(self, task: asyncio.Task[None]) -> None:
        """A slot is free: look for due work if the last round found more than it had room
        for (once per loop turn however many ended). Otherwise nothing is waiting for the
        slot — a group's next record was claimed by its settle, new records wake the loop —
        and a claim round would be a transaction that finds nothing."""
        self._tasks.discard(task)
        if self._more and self._woken is not None:
            self._woken.set()

    def describe(self, exc: BaseException) -> str:
        return f"dispatch failing ({type(exc).__name__})"

    def step(self) -> None:
        if self._aloop is None:
            self._aloop = asyncio.new_event_loop()
        self._aloop.run_until_complete(self._cycle())

    def teardown(self) -> None:
        loop = self._aloop
        if loop is None:
            return
        try:
            if self._tasks:
                loop.run_until_complete(asyncio.wait(self._tasks, timeout=10))
            for task in self._tasks:
                task.cancel()
            if self._http is not None:
                loop.run_until_complete(self._http.aclose())
        finally:
            loop.close()
            self._aloop, self._http, self._woken = None, None, None
            self._settler = None
            self._clients.clear()
            self._tasks.clear()

    async def _cycle(self) -> None:
        if self._woken is None:
            self._http = pooled_client(HTTP_LIMITS)
            self._settler = Settler(
                self._engine,
                self._settings.topic_delivery_receipts,
                lease=self._lease,
                refill=self._prepare_all,
                launch=self._launch,
                linger=SETTLE_LINGER,
                calling=lambda: self._calling,
            )
            self._woken = asyncio.Event()
        self._woken.clear()
        free = self._max_in_flight - len(self._tasks) - self._reserved
        if free > 0:
            prepared = await asyncio.to_thread(self._claim_round, free)
            self._more = len(prepared) >= free
            self._launch(prepared)
        else:
            self._more = True
        if time.monotonic() >= self._depth_at:
            await asyncio.to_thread(self._export_depth)
        # Woken by a consumer commit, a timer (_wake_in), a task's end while due rows may be
        # waiting for a slot (_task_done), or `poll`.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._woken.wait(), self._poll)

    def _claim_round(self, limit: int) -> list[Ready]:
        """In a worker thread: claim up to `limit` due heads and prepare them (one hop)."""
        claims = claim_due(self._engine, busy=(), limit=limit, lease=self._lease)
        return self._prepare_all(claims) if claims else []

    def _export_depth(self) -> None:
        self._depth_at = time.monotonic() + DEPTH_EVERY
        depth = queue_depth(self._engine)
        for source in self._depth_sources | set(depth):
            telemetry.QUEUE_DEPTH.labels(source).set(depth.get(source, 0))
        self._depth_sources |= set(depth)

    def _client(self, route: Route) -> PlatformClient:
        source = route.source
        if source.id not in self._clients:
            assert self._http is not None
            self._clients[source.id] = client_for(
                source.platform, source.outbound, self._http, timeout=self._timeout
            )
        return self._clients[source.id]

    async def _settle(self, item: Settlement) -> Row | None:
        """Write a result with the others of this round (settler.py); the row when finished."""
        assert self._settler is not None
        row = await self._settler.submit(item)
        if row is not None:
            telemetry.RECEIPTS.labels(row.outcome or "").inc()
            if not self._relay_woken:  # one relay transaction for the receipts of RECEIPT_WAIT
                self._relay_woken = True
                asyncio.get_running_loop().call_later(RECEIPT_WAIT, self._wake_relay)
        return row

    def _wake_relay(self) -> None:
        self._relay_woken = False
        self._on_receipt()

    def _prepare_all(self, claims: list[Claim]) -> list[Ready]:
        """Route and plan a round's claims, then pace every call of it in one Redis pipeline."""
        planned = [self._plan(claim) for claim in claims]
        calls = [ready for ready in planned if ready.op is not None and ready.route is not None]
        try:
            waits = self._pacer.acquire_all(
                [
                    Ask(
                        r.route.source.id,
                        r.claim.row.group_id,
                        r.route.rates,
                        r.op.operation == "post",
                    )
                    for r in calls
                    if r.route is not None and r.op is not None
                ]
            )
        except Exception:  # noqa: BLE001 - nothing was called: hand the rows back for later
            log.exception("delivery: pacing %d calls failed", len(calls))
            waits = [-1.0] * len(calls)
        paced = {id(ready): wait for ready, wait in zip(calls, waits, strict=True)}
        return [self._paced(ready, paced.get(id(ready), 0.0)) for ready in planned]

    def _paced(self, ready: Ready, wait: float) -> Ready:
        """A planned call after pacing: as it is when granted, else given back for `wait`."""
        if wait == 0 or ready.route is None:
            return ready
        if wait < 0:  # pacing itself failed
            return Ready(ready.claim, wait=1.0)
        telemetry.RATE_LIMIT_WAITS.labels(ready.route.source.id, "pacing").inc()
        return Ready(ready.claim, wait=wait)

    def _plan(self, claim: Claim) -> Ready:
        """Route and plan a claim: finish it uncalled, or the call to pace and make."""
        row = claim.row
        try:
            route = route_for(self._config, row.source)
            platform = route.source.platform if isinstance(route, Route) else row.platform
            steps = plan(row.payload, platform).steps
            if not steps or row.step >= len(steps):
                detail = row.detail or "nothing to do on the platform"
                return Ready(claim, finish=("recorded", detail))
            if isinstance(route, str):
                return Ready(claim, finish=("no_route", route))
            op = steps[row.step]
        except Exception:  # noqa: BLE001 - nothing was called: hand the row back for later
            log.exception("delivery %s: preparing the call failed", row.id)
            return Ready(claim, wait=1.0)
        return Ready(claim, route=route, op=op, last_step=row.step == len(steps) - 1)

    async def _carry_out(self, ready: Ready) -> None:
        claim = ready.claim
        if ready.finish is not None:
            outcome, detail = ready.finish
            try:
                await self._settle(without_call(claim.row.seq, claim.token, outcome, detail))
            except Exception:  # noqa: BLE001 - nothing was called: hand the row back for later
                log.exception("delivery %s: finishing without a call failed", claim.row.id)
                await asyncio.to_thread(release, self._engine, claim, wait=1.0)
        elif ready.route is None or ready.op is None:
            await asyncio.to_thread(release, self._engine, claim, wait=ready.wait)
            self._wake_in(ready.wait)
        else:
            await self._call(claim, ready.route, ready.op, last_step=ready.last_step)

    async def _call(
        self, claim: Claim, route: Route, op: OperationRequest, *, last_step: bool
    ) -> None:
        platform = route.source.platform
        if claim.recovered:
            telemetry.UNKNOWN_OUTCOME_RETRIES.labels(platform).inc()
        self._calling += 1
        try:
            result = await self._client(route).carry_out(op)
        except InvalidTarget as exc:
            result = CallResult("failed", f"the record cannot be carried out: {exc}")
        except Exception as exc:  # noqa: BLE001 - a client bug must not lose the record
            log.exception("delivery %s: %s call failed", claim.row.id, platform)
            result = CallResult("failed", type(exc).__name__, retryable=True, unknown=True)
        finally:
            self._calling -= 1
        telemetry.CALLS.labels(platform, op.operation, result.outcome).inc()
        decision = decide(
            result,
            platform=platform,
            operation=op.operation,
            failures=claim.row.failures,
            max_attempts=self._settings.delivery_max_attempts,
        )
        await self._apply(claim, route, op, result, decision, last_step=last_step)

    async def _apply(
        self,
        claim: Claim,
        route: Route,
        op: OperationRequest,
        result: CallResult,
        decision: Decision,
        *,
        last_step: bool,
    ) -> None:
        source, platform = route.source.id, route.source.platform
        if not decision.final:
            reason = "rate_limited" if decision.pause else "error"
            telemetry.RETRIES.labels(platform, reason).inc()
            if result.unknown:
                telemetry.UNKNOWN_OUTCOME_RETRIES.labels(platform).inc()
        if decision.pause:
            telemetry.RATE_LIMIT_WAITS.labels(source, "hint").inc()
            group = claim.row.group_id if decision.pause == "group" else None
            await asyncio.to_thread(
                self._pacer.pause, source=source, group_id=group, seconds=decision.delay
            )
        finished = await self._settle(
            Settlement(
                seq=claim.row.seq,
                token=claim.token,
                decision=decision,
                label=op.operation if not last_step or claim.row.step > 0 else "",
                last_step=last_step,
                message_id=result.platform_message_id,
            )
        )
        if finished is None:  # due again: the next step at once, a retry after its delay
            self._wake_in(decision.delay if not decision.final else 0.0)

    def _wake_in(self, seconds: float) -> None:
        """Look for due work again when a row given back or requeued becomes due."""
        loop, woken = self._aloop, self._woken
        if loop is None or woken is None:
            return
        if seconds <= 0:
            woken.set()
        else:
            loop.call_later(seconds, woken.set)
