"""Process control: SIGKILL and restart services, kill schedules, a private restartable
Redis, a frozen (SIGSTOP) broker."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from services.common.settings import Settings
from tests.faults.harness.scale import CONSUMERS
from tests.support import wait_until
from tools.localstack import free_port, stop, wait_for_port
from tools.stack import HTTP, RunningStack, settings_env, start_service, wait_ready


class Services:
    """Kill and restart the stack's service processes on their ports."""

    def __init__(self, stack: RunningStack, settings: Settings) -> None:
        self.stack = stack
        self.env = {**os.environ, **settings_env(settings), "HOST": "127.0.0.1"}
        self.env.pop("PORT", None)
        self.group_prefix = settings.consumer_group_prefix
        self.kills: Counter[str] = Counter()
        # Metrics events skipped as already applied, summed over the killed processes.
        self.skipped = 0

    def skipped_so_far(self) -> int:
        """Return the duplicates the running metrics process skipped (its /metrics)."""
        try:
            text = HTTP.get(f"{self.url('metrics')}/metrics", timeout=5).text
        except httpx.HTTPError:
            return 0
        return int(
            sum(
                float(line.rsplit(" ", 1)[1])
                for line in text.splitlines()
                if line.startswith("qunyun_metrics_duplicates_skipped_total ")
            )
        )

    def url(self, name: str) -> str:
        return self.stack.url(name)

    def kill(self, name: str) -> None:
        """SIGKILL the service process (no shutdown, no commit, no flush)."""
        if name == "metrics":
            self.skipped += self.skipped_so_far()
        proc = self.stack.processes[name]
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        self.kills[name] += 1

    def restart(self, name: str) -> None:
        """Start the service again on the same port (do not wait for it)."""
        port = self.stack.ports[name]
        self.stack.processes[name] = start_service(name, port, self.env, self.stack.logs[name])

    def ready(self, names: Sequence[str] = (), timeout: float = 60) -> None:
        """Wait until the services answer /readyz 200; fail with their log tails."""
        ports = {n: self.stack.ports[n] for n in (names or self.stack.ports)}
        pending = wait_ready(ports, timeout)
        assert not pending, "not ready: " + "\n".join(
            f"--- {n}\n{self.stack.log_tail(n)}" for n in pending
        )


def kill_schedule(
    *, seed: int, names: Sequence[str], per_name: int, seconds: float
) -> list[tuple[float, str]]:
    """Return seeded (seconds after the stream starts, service) kill points, in time order."""
    rng = random.Random(seed)
    victims = [n for n in names for _ in range(per_name)]
    rng.shuffle(victims)
    slots = len(victims)
    # One kill per slot of the stream, at a random point inside it: spread, never bunched.
    return [
        (seconds * (0.05 + 0.85 * (i + rng.random()) / slots), name)
        for i, name in enumerate(victims)
    ]


def run_kills(
    services: Services, schedule: Sequence[tuple[float, str]], *, started: float, seed: int
) -> None:
    """SIGKILL and restart the services on the schedule. Each victim is first waited for
    until ready, then (for up to 3 s) until it exports a lag > 0 — it has a backlog, so it
    is polling and handling batches back to back and the kill most likely lands between
    a handled batch and its commit, which forces a redelivery."""
    rng = random.Random(seed + 1)
    for at, name in schedule:
        delay = started + at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        services.ready([name], timeout=60)
        if name in CONSUMERS:
            group = services.group_prefix + name
            wait_until(
                lambda n=name, g=group: (consumer_lag(services.url(n), g) or 0) > 0,
                timeout=3,
                interval=0.05,
            )
        time.sleep(rng.uniform(0, 0.1))
        services.kill(name)
        services.restart(name)


@dataclass
class RedisServer:
    """A private redis-server with an append-only file, restartable on its port with its data."""

    directory: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        log = open(self.directory / "redis.log", "ab")  # noqa: SIM115 - the child owns it
        try:
            self.proc = subprocess.Popen(
                [
                    "redis-server",
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--dir",
                    str(self.directory),
                    "--appendonly",
                    "yes",
                    "--appendfsync",
                    "always",
                    "--save",
                    "",
                ],  # fmt: skip
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        finally:
            log.close()
        wait_for_port(self.port)

    def stop(self) -> None:
        """Stop it the way an operator does (SIGTERM: the AOF is flushed)."""
        stop(self.proc)
        self.proc = None


@dataclass
class Frozen:
    """A process stopped with SIGSTOP: it holds its sockets but answers nothing."""

    proc: subprocess.Popen[bytes]

    def __enter__(self) -> Frozen:
        os.kill(self.proc.pid, signal.SIGSTOP)
        return self

    def __exit__(self, *_: object) -> None:
        os.kill(self.proc.pid, signal.SIGCONT)


def consumer_lag(url: str, group: str) -> float | None:
    """Return the summed lag one consumer process exports for its group, None before any."""
    try:
        text = HTTP.get(f"{url}/metrics", timeout=5).text
    except httpx.HTTPError:
        return None
    values = [
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("qunyun_consumer_lag_messages{") and f'group="{group}"' in line
    ]
    return sum(values) if values else None
