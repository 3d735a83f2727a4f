"""`make run` survives a crash: under a `tools/devstack.py` stack (its own broker, Redis and
SQLite database, on free ports) with simulated traffic flowing through ingest, each service
is SIGKILLed in turn. The supervisor restarts it and says so, the other services answer
/readyz 200 the whole time, the killed one is ready again, and every metrics number, case,
action and grant still equals the ground truth (the fault harness's checks)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.faults.harness import (
    TIMEZONE,
    Api,
    Scale,
    Services,
    Streamer,
    ground_truth,
    message,
    post_events,
    set_up_operations,
    settle_and_verify,
)
from tests.support import wait_until
from tools.devstack import DevStack
from tools.localstack import free_port
from tools.stack import SERVICES, RunningStack, is_ready

SEED = 20261219
# Consumers first, while traffic still flows after their restart; ingest last.
VICTIMS = ("metrics", "moderation", "campaigns", "delivery", "ingest")
SCALE = Scale("restarts", groups=3, members=80, days=3, messages_per_member=0.9,
              stream_seconds=20, kills_per_consumer=1)  # fmt: skip
# Settings `make run` would take from the environment instead of starting its own servers.
OUTSIDE = ("KAFKA_BOOTSTRAP_SERVERS", "REDIS_URL", "DATABASE_URL", "PORT")


class ReadinessWatch(threading.Thread):
    """Poll every service's /readyz; note each answer other than 200 from a service that
    is not the one being killed (`victim`) — none may come."""

    def __init__(self, ports: dict[str, int]) -> None:
        super().__init__(name="readiness-watch", daemon=True)
        self.ports = ports
        self.victim: str | None = None
        self.failures: list[tuple[str, float]] = []
        self.polls = 0
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(0.5):
            for name, port in self.ports.items():
                if name == self.victim:
                    continue
                # Checked again after the probe: the kill may have begun while it ran.
                if not is_ready(port, timeout=5.0) and name != self.victim:
                    self.failures.append((name, time.monotonic()))
            self.polls += 1

    def stop(self) -> None:
        self._done.set()
        self.join(10)


@pytest.fixture(scope="module")
def said() -> list[str]:
    """What the stack printed (the lines a `make run` user reads)."""
    return []


@pytest.fixture(scope="module")
def devstack(
    tmp_path_factory: pytest.TempPathFactory, config_path: Path, said: list[str]
) -> Iterator[DevStack]:
    env = {k: v for k, v in os.environ.items() if k not in OUTSIDE}
    env |= {"QUNYUN_CONFIG": str(config_path), "QUNYUN_TIMEZONE": TIMEZONE}
    stack = DevStack(
        var=tmp_path_factory.mktemp("devstack-restarts") / "var",
        ports={name: free_port() for name in SERVICES},
        broker_port=free_port(),
        redis_port=free_port(),
        base_env=env,
        out=said.append,
    )
    try:
        pending = stack.start()
        assert not pending, f"not ready: {pending}\n" + "\n".join(said)
        yield stack
    finally:
        if stack.processes:
            stack.stop(drain_seconds=20)


def test_each_service_killed_in_turn_comes_back_and_totals_stay_exact(
    devstack, said, tokens, unique
):
    settings = devstack.settings()
    running = RunningStack(
        ports=devstack.ports,
        processes=devstack.processes,  # the supervisor's own mapping: kills hit the live process
        logs={name: devstack.log_dir / f"{name}.log" for name in devstack.ports},
    )
    services = Services(running, settings)
    api = Api(services, tokens.admin)
    prefix = unique("restarts")
    events = SCALE.traffic(seed=SEED, group_prefix=prefix)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=SCALE.days)
    ops = set_up_operations(
        api,
        services=services,
        groups=sorted({e["group_id"] for e in events}),
        starts_at=start - timedelta(hours=1),
        tag=prefix,
    )
    watch = ReadinessWatch(devstack.ports)
    watch.start()
    streamer = Streamer(url=services.url("ingest"), events=events, seconds=SCALE.stream_seconds)
    streamer.start()
    back: dict[str, bool] = {}
    try:
        for name in VICTIMS:
            time.sleep(1.0)  # traffic flows into the restarted one before the next kill
            watch.victim = name
            services.kill(name)  # SIGKILL, then wait for the process to be gone
            back[name] = bool(
                wait_until(lambda n=name: any(f"{n} ready again" in s for s in said), timeout=60)
            )
            watch.victim = None
        stats = streamer.finish(timeout=SCALE.stream_seconds + 180)
    finally:
        watch.stop()
    # One last message per group, so every restarted consumer has handled a record (and
    # exports its lag) even when its restart outlasted the stream on a busy machine.
    tail = [
        message(g, f"{g}:tail", "收到", event_id=f"{prefix}-{g}-tail") for g in sorted(ops.rules)
    ]
    assert post_events(services.url("ingest"), tail).status_code == 202
    truth = ground_truth(
        streamer.acknowledged.snapshot() + ops.canaries + tail,
        tz=settings.tz,
        now=datetime.now(UTC),
    )
    verdict = settle_and_verify(
        api=api,
        services=services,
        settings=settings,
        truth=truth,
        ops=ops,
        bootstrap=settings.kafka_bootstrap_servers,
    )
    api.close()
    printed = "\n".join(said)
    assert back == dict.fromkeys(VICTIMS, True), printed
    for name in VICTIMS:
        assert f"{name} exited (SIGKILL); restarting in 1 s (restart 1)" in said, printed
    assert devstack.supervisor is not None
    assert devstack.supervisor.restarts == dict.fromkeys(VICTIMS, 1)
    assert not devstack.supervisor.given_up
    assert watch.polls > 10 and watch.failures == [], (watch.failures, printed)
    assert stats["accepted"] + stats["duplicates"] >= len(events)
    assert truth.offending and truth.checkins, truth
    summary = (
        f"[restarts] events={truth.events} counted={verdict.counted} lost={verdict.lost} "
        f"doubled={verdict.doubled} readiness polls={watch.polls} {verdict.extra}"
    )
    print(summary)
    assert verdict.lost == 0 and verdict.doubled == 0, f"{summary}\n{verdict.problems()}"


def test_the_stop_after_restarts_stops_everything_and_restarts_nothing(devstack, said):
    processes = list(devstack.processes.values())
    before = len(said)
    report = devstack.stop(drain_seconds=20)
    assert devstack.supervisor is None
    assert all(proc.poll() is not None for proc in processes)
    assert not any("restarting" in line for line in said[before:]), said[before:]
    assert report.caught_up, report.lag
