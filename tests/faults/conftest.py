"""Fixtures the fault tests share: the run's scale and the figures printed at the end."""

from __future__ import annotations

import pytest

from tests.faults.harness import FIGURES, Scale, current_scale


@pytest.fixture(scope="session")
def faults_scale() -> Scale:
    """The size of the fault runs: small in `make test`, large under QUNYUN_FAULTS_SCALE=large."""
    return current_scale()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print every fault test's one-line figures, even under -q."""
    if FIGURES:
        terminalreporter.section("fault figures")
        for line in FIGURES:
            terminalreporter.write_line(line)
