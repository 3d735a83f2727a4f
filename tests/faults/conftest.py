"""Fixtures the fault tests share: the run's scale and the figures printed at the end."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

import pytest

from services.common.settings import Settings
from tests.faults.harness import FIGURES, FaultRun, Scale, current_scale, fault_run

StartRun = Callable[..., AbstractContextManager[FaultRun]]


@pytest.fixture(scope="session")
def faults_scale() -> Scale:
    """The size of the fault runs: small in `make test`, large under QUNYUN_FAULTS_SCALE=large."""
    return current_scale()


@pytest.fixture
def start_run(tokens, tmp_path, faults_scale, unique) -> StartRun:
    """Return `fault_run` bound to this test's admin token, scale, log folder and prefix:
    `with start_run("redis_outage", settings, seed=7301, probe_text="…") as run:`."""

    def start(
        name: str, settings: Settings, *, seed: int, probe_text: str | None = None
    ) -> AbstractContextManager[FaultRun]:
        return fault_run(
            name,
            settings,
            token=tokens.admin,
            scale=faults_scale,
            seed=seed,
            prefix=unique(name.split("_")[0]),
            logs=tmp_path / "logs",
            probe_text=probe_text,
        )

    return start


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print every fault test's one-line figures, even under -q."""
    if FIGURES:
        terminalreporter.section("fault figures")
        for line in FIGURES:
            terminalreporter.write_line(line)
