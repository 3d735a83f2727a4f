"""The process manager of `make run` (tools/stack.py `Supervisor`) on real processes: a
killed process is restarted with the backoff said in a line, a crash loop is reported
once and left down, and the others are left alone. Short delays keep it to seconds."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.support import wait_until
from tools.stack import RestartPolicy, Supervisor, exit_reason

FAST = RestartPolicy(first_delay=0.1, max_delay=0.4, crash_loop=4, window=30.0)


def sleeper() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])


def crasher() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "import sys; sys.exit(3)"])


@pytest.fixture
def running() -> Iterator[dict[str, subprocess.Popen[bytes]]]:
    processes: dict[str, subprocess.Popen[bytes]] = {}
    yield processes
    for proc in processes.values():
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_killed_process_is_restarted_with_doubling_delays_and_reported_ready(running):
    running.update(steady=sleeper(), victim=sleeper())
    steady = running["steady"]
    lines: list[str] = []
    supervisor = Supervisor(
        running, lambda name: sleeper(), out=lines.append, ready=lambda name: True, policy=FAST
    )
    supervisor.start()
    try:
        for restart in (1, 2, 3):
            killed = running["victim"]
            killed.send_signal(signal.SIGKILL)
            assert wait_until(lambda k=killed: running["victim"] is not k, timeout=10)
            assert wait_until(lambda n=restart: len(lines) >= 2 * n, timeout=10), lines
        assert running["victim"].poll() is None
    finally:
        supervisor.stop()
    assert lines[0::2] == [
        "victim exited (SIGKILL); restarting in 0.1 s (restart 1)",
        "victim exited (SIGKILL); restarting in 0.2 s (restart 2)",
        "victim exited (SIGKILL); restarting in 0.4 s (restart 3)",
    ]
    assert all(line.startswith("victim ready again (") for line in lines[1::2]), lines
    assert running["steady"] is steady and steady.poll() is None  # the others untouched
    assert supervisor.restarts == {"victim": 3} and not supervisor.given_up


def test_a_crash_loop_is_reported_once_and_left_down(running, tmp_path):
    running.update(steady=sleeper(), broken=crasher())
    lines: list[str] = []
    starts: list[str] = []

    def start(name: str) -> subprocess.Popen[bytes]:
        starts.append(name)
        return crasher()

    supervisor = Supervisor(
        running,
        start,
        out=lines.append,
        log_of=lambda name: tmp_path / f"{name}.log",
        policy=FAST,
    )
    supervisor.start()
    try:
        assert wait_until(lambda: "broken" in supervisor.given_up, timeout=20), lines
        settled = list(lines)
        # Left down: nothing more is started or said while the supervisor keeps watching.
        assert not wait_until(lambda: len(lines) > len(settled), timeout=1.0)
    finally:
        supervisor.stop()
    assert starts == ["broken"] * (FAST.crash_loop - 1)
    assert lines[:-1] == [
        f"broken exited (code 3); restarting in {delay:g} s (restart {n})"
        for n, delay in ((1, 0.1), (2, 0.2), (3, 0.4))
    ]
    assert lines[-1] == (
        f"broken exited (code 3): 4 exits within 30 s, a crash loop; left down "
        f"(see {tmp_path / 'broken.log'})"
    )
    assert running["steady"].poll() is None


def test_exit_reasons_name_the_signal_or_the_code():
    assert exit_reason(-9) == "SIGKILL"
    assert exit_reason(-15) == "SIGTERM"
    assert exit_reason(1) == "code 1"
    assert exit_reason(0) == "code 0"
