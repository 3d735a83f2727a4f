"""QUNYUN_CONFIG reloaded without a restart: on SIGHUP and when the file changes.

The new file is validated first; a file that does not parse or validate is reported
(an error log line naming the path and each bad field, never a value, and the
`qunyun_config_reloads_total{outcome="rejected"}` counter) and the running config is
kept. Sources and tokens take effect for the next request.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import tomllib
from collections.abc import Callable
from pathlib import Path

from prometheus_client import Counter
from pydantic import ValidationError

from services.common.settings import QunyunConfig, load_config
from services.common.worker import BackgroundLoop

log = logging.getLogger(__name__)

RELOADS = Counter(
    "qunyun_config_reloads_total",
    "QUNYUN_CONFIG reloads by outcome (applied, rejected: the old config was kept).",
    ["outcome"],
)


def _why(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
            for e in exc.errors(include_input=False, include_url=False)
        )
    if isinstance(exc, tomllib.TOMLDecodeError):
        return f"not TOML: {exc}"
    return f"{type(exc).__name__}: {exc.strerror if isinstance(exc, OSError) else exc}"


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


class ConfigReloader(BackgroundLoop):
    """Watch the config file (every `interval` seconds, or at once on SIGHUP) and apply it."""

    def __init__(
        self, path: str, apply: Callable[[QunyunConfig], None], *, interval: float = 1.0
    ) -> None:
        super().__init__("config-reload", interval=interval)
        self._path = Path(path)
        self._apply = apply
        self._seen = _stamp(self._path)
        self._forced = threading.Event()
        for outcome in ("applied", "rejected"):
            RELOADS.labels(outcome)

    def request(self) -> None:
        """Reload now, even if the file looks unchanged (SIGHUP)."""
        self._forced.set()
        self.wake()

    def step(self) -> None:
        stamp = _stamp(self._path)
        if stamp == self._seen and not self._forced.is_set():
            return
        self._forced.clear()
        self._seen = stamp
        try:
            config = load_config(self._path)
        except (OSError, ValueError) as exc:  # ValidationError and TOMLDecodeError are both
            RELOADS.labels("rejected").inc()
            log.error("config %s not reloaded, the running one is kept: %s", self._path, _why(exc))
            return
        self._apply(config)
        RELOADS.labels("applied").inc()
        log.info(
            "config %s reloaded: %d sources, %d tokens",
            self._path,
            len(config.sources),
            len(config.tokens),
        )


def reload_on_sighup(reloader: ConfigReloader) -> Callable[[], None]:
    """Make SIGHUP ask `reloader` for a reload; return a function that restores the old handler.

    Signals can only be set from the main thread (uvicorn's); elsewhere (a test client) the
    file watch alone reloads.
    """
    if threading.current_thread() is not threading.main_thread() or os.name != "posix":
        return lambda: None
    previous = signal.signal(signal.SIGHUP, lambda *_: reloader.request())

    def restore() -> None:
        signal.signal(signal.SIGHUP, previous)

    return restore
