"""Background loops: the one way a service runs work beside its API in a thread.

Every loop (consumer, start-up preparation, scheduler, outbox relay, produce thread) is a
`BackgroundLoop`: `start()` runs `step()` over and over in a daemon thread, `stop()`
ends it and joins, a failing step is retried with exponential backoff (tenacity), and
`problem` says what is wrong in words that `/readyz` shows (the lifespan registers each
loop with the service's resources). Waiting is always interruptible: a stop request ends
any backoff or interval at once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import tenacity
from tenacity import RetryCallState

log = logging.getLogger(__name__)


class Stopped(Exception):
    """The loop was asked to stop while it waited."""


def _retryable(exc: BaseException) -> bool:
    # KeyboardInterrupt, SystemExit and the like end the loop; so does a stop request.
    return isinstance(exc, Exception) and not isinstance(exc, Stopped)


class BackgroundLoop:
    """Run `step()` repeatedly in a thread until stopped, retrying failures with backoff.

    `interval` is the pause after a successful step (0: step again at once, for steps
    that block on their own input such as a Kafka poll). `wake()` ends the pause early.
    """

    initial_problem: str | None = None
    """What /readyz says from start() until the first step succeeds (None: ready at once)."""

    def __init__(
        self,
        name: str,
        *,
        interval: float = 0.0,
        min_backoff: float = 0.2,
        max_backoff: float = 5.0,
    ) -> None:
        self.name = name
        self.interval = interval
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.problem: str | None = "not started"
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._finished = False
        self._thread: threading.Thread | None = None

    # What a subclass provides.
    def step(self) -> None:
        """Do one unit of work; raise to have it retried after a backoff."""
        raise NotImplementedError

    def teardown(self) -> None:
        """Release what the loop holds; runs in the loop's thread when it ends."""

    def describe(self, exc: BaseException) -> str:
        """Say in a few words what a failure means, for /readyz (never a secret)."""
        return f"failing ({type(exc).__name__})"

    # The lifecycle.
    def start(self) -> None:
        """Run the loop in a daemon thread."""
        self._stop.clear()
        self._finished = False
        self.problem = self.initial_problem
        self._thread = threading.Thread(target=self.run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 15.0) -> None:
        """Ask the loop to end after its current step and wait for it."""
        self._stop.set()
        self._wake.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def wake(self) -> None:
        """End the current pause between steps early (e.g. new work was committed)."""
        self._wake.set()

    def finish(self) -> None:
        """From within `step()`: end the loop after this step, as a success."""
        self._finished = True

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    # Waiting and retrying, for steps that need them inside.
    def sleep(self, seconds: float) -> None:
        """Wait, unless asked to stop: then raise Stopped."""
        if self._stop.wait(seconds):
            raise Stopped

    def retrying(
        self,
        *,
        retry_if: Callable[[BaseException], bool] = lambda _: True,
        on_retry: Callable[[BaseException], None] | None = None,
        max_attempts: int | None = None,
        wait: tenacity.wait.wait_base | None = None,
    ) -> tenacity.Retrying:
        """A tenacity retry policy with this loop's backoff, interruptible by stop().

        Exceptions for which `retry_if` is false, and the last one after `max_attempts`,
        are raised to the caller; each retried one sets `problem` and calls `on_retry`.
        """

        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            if exc is None:
                return
            self.problem = self.describe(exc)
            if on_retry is not None:
                on_retry(exc)
            else:
                log.warning("%s: %s (retrying)", self.name, self.problem)

        return tenacity.Retrying(
            retry=tenacity.retry_if_exception(
                lambda exc: _retryable(exc) and not self.stopping and retry_if(exc)
            ),
            wait=wait
            or tenacity.wait_exponential(multiplier=self.min_backoff, max=self.max_backoff),
            stop=tenacity.stop_after_attempt(max_attempts) if max_attempts else tenacity.stop_never,
            sleep=self.sleep,
            before_sleep=before_sleep,
            reraise=True,
        )

    def _pause(self) -> None:
        if self.interval > 0:
            self._wake.wait(self.interval)
            self._wake.clear()
            if self._stop.is_set():
                raise Stopped

    def run(self) -> None:
        """The loop itself (start() runs it in a thread; a test may call it directly)."""
        try:
            while not self._stop.is_set() and not self._finished:
                for attempt in self.retrying():
                    with attempt:
                        self.step()
                self.problem = None
                if not self._finished:
                    self._pause()
        except Stopped:
            pass
        except Exception as exc:  # noqa: BLE001 - only when stopping: retries never give up
            log.warning("%s ended: %s", self.name, type(exc).__name__)
        finally:
            try:
                self.teardown()
            except Exception:  # noqa: BLE001 - a failing teardown must not hide the stop
                log.debug("%s teardown failed", self.name, exc_info=True)
            if not self._finished:
                self.problem = "stopped"
