"""Start the four services as real processes (`python -m services.<name>`) and wait for /readyz.

Shared by `make run` (tools/devstack.py), the Prometheus test and the fault tests:
each service runs alone in its own process exactly as in production, with PORT and the
settings passed as environment variables.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from services.common.settings import Settings
from tools.localstack import free_port, stop

SERVICES: dict[str, int] = {"ingest": 8001, "metrics": 8002, "moderation": 8003, "campaigns": 8004}


def settings_env(settings: Settings) -> dict[str, str]:
    """Return the environment variables that make a service process build these settings."""
    env: dict[str, str] = {}
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if value is not None:
            env[name.upper()] = str(value)
    return env


def start_service(
    name: str, port: int, env: Mapping[str, str], log_path: Path
) -> subprocess.Popen[bytes]:
    """Start `python -m services.<name>` on 127.0.0.1:port (or HOST), logging to log_path."""
    log = open(log_path, "ab")  # noqa: SIM115 - the child process owns it
    try:
        return subprocess.Popen(
            [sys.executable, "-m", f"services.{name}"],
            env={**env, "PORT": str(port)},
            stdout=log,
            stderr=subprocess.STDOUT,
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
            try:
                if httpx.get(f"http://{host}:{port}/readyz", timeout=2).status_code == 200:
                    del pending[name]
            except httpx.HTTPError:
                pass
        if pending:
            time.sleep(0.3)
    return list(pending)


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
    names: tuple[str, ...] = tuple(SERVICES),
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
            tails = "\n".join(f"--- {n}.log\n{stack.log_tail(n)}" for n in pending or dead)
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
