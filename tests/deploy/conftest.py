"""Tools the deploy tests run (Debian packages): Prometheus, promtool, docker compose."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def debian_binary(name: str, package: str, *, path: str | None = None) -> str:
    """The `name` executable, apt-get installing Debian's `package` when root (as .ci/run does).

    Fails (never skips) with the command to run when it is missing and cannot be installed.
    """

    def find() -> str | None:
        fallback = path or f"/usr/bin/{name}"
        return shutil.which(name) or (fallback if Path(fallback).exists() else None)

    if found := find():
        return found
    if os.geteuid() != 0:
        pytest.fail(f"{name} is missing: apt-get install {package}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # Two test workers (promtool's and the Prometheus stack's) may install at once: the
    # second waits for dpkg's lock instead of failing on it.
    wait = ["-o", "DPkg::Lock::Timeout=300"]
    subprocess.run(["apt-get", *wait, "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", *wait, "install", "-y", "-qq", package], check=True, env=env)
    if found := find():
        return found
    pytest.fail(f"{name} still missing after apt-get install {package}")


def _binary(name: str) -> str:
    return debian_binary(name, "prometheus")  # Debian's package ships promtool too


@pytest.fixture(scope="session")
def promtool() -> str:
    return _binary("promtool")


@pytest.fixture(scope="session")
def prometheus_bin() -> str:
    return _binary("prometheus")
