"""One fault run end to end, the part every stream-and-verify fault test shares.

with fault_run("redis_outage", settings, ...) as run:
    run.start_stream()           # the simulator streams through ingest
    ...                          # the fault: kill, freeze, stop Redis
    outcome = run.finish()       # stream done, ready, settled, compared
summary = run.report(outcome, outage_seconds=...)
outcome.assert_exact(summary)
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from services.common.settings import Settings
from tests.faults.harness.processes import Services
from tests.faults.harness.scale import Figures, Scale
from tests.faults.harness.traffic import Streamer, message, post_events
from tests.faults.harness.truth import Truth, ground_truth
from tests.faults.harness.verify import (
    Api,
    Operations,
    Verdict,
    server_errors,
    set_up_operations,
    settle_and_verify,
)
from tests.support import wait_until
from tools.stack import RunningStack, service_stack


@dataclass
class Outcome:
    """What a finished run produced: the ground truth, the verdict and stray 5xx per service."""

    truth: Truth
    verdict: Verdict
    errors_5xx: dict[str, int]
    stream_stats: dict[str, Any]

    def assert_exact(self, summary: str) -> None:
        """Fail unless nothing acknowledged was lost or counted twice."""
        lost, doubled = self.verdict.lost, self.verdict.doubled
        assert lost == 0 and doubled == 0, f"{summary}\n{self.verdict.problems()}"


@dataclass
class FaultRun:
    """A service stack with rules and campaigns set up, a streamer and a probe event ready."""

    settings: Settings
    stack: RunningStack
    services: Services
    api: Api
    ops: Operations
    streamer: Streamer
    figures: Figures
    probe: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ingest(self) -> str:
        return self.services.url("ingest")

    def start_stream(self, *, lead: float = 0.0) -> None:
        """Start streaming; then sleep `lead` of the stream's duration (fault mid-stream)."""
        self.streamer.start()
        time.sleep(self.streamer.seconds * lead)

    def post_probe(self) -> httpx.Response:
        """Send the probe event once."""
        return post_events(self.ingest, self.probe)

    def probe_accepted(self, timeout: float) -> httpx.Response | None:
        """Post the probe until ingest answers 202; return that answer, None on timeout."""
        return wait_until(
            lambda: (lambda r: r if r.status_code == 202 else None)(self.post_probe()),
            timeout=timeout,
        )

    def finish(self, *, ready_timeout: float = 90) -> Outcome:
        """Let the stream end, wait for every service, settle and compare with the truth."""
        stats = self.streamer.finish(timeout=self.streamer.seconds + 180)
        self.figures.status_503 += stats["retries"]
        self.services.ready(timeout=ready_timeout)
        acknowledged = self.streamer.acknowledged.snapshot()
        truth = ground_truth(acknowledged + self.ops.canaries + self.probe, tz=self.settings.tz)
        verdict = settle_and_verify(
            api=self.api,
            services=self.services,
            settings=self.settings,
            truth=truth,
            ops=self.ops,
            bootstrap=self.settings.kafka_bootstrap_servers,
        )
        errors = {name: server_errors(self.services.url(name)) for name in self.stack.ports}
        return Outcome(truth, verdict, errors, stats)

    def report(self, outcome: Outcome, **extra: Any) -> str:
        """Fill the figures from the outcome, print them and return the line."""
        figures, verdict = self.figures, outcome.verdict
        figures.acknowledged = outcome.truth.events
        figures.counted, figures.lost, figures.doubled = (
            verdict.counted,
            verdict.lost,
            verdict.doubled,
        )
        figures.kills = sum(self.services.kills.values())
        figures.extra = {"countable": verdict.countable, **extra, **verdict.extra}
        return figures.report()


@contextmanager
def fault_run(
    name: str,
    settings: Settings,
    *,
    token: str,
    scale: Scale,
    seed: int,
    prefix: str,
    logs: Path,
    probe_text: str | None = None,
) -> Iterator[FaultRun]:
    """Start the four services, create an ad rule and a check-in campaign per group (proved
    live by canaries), and get the seeded traffic of `scale` ready to stream. With
    `probe_text`, one extra message in the first group is ready to post by hand."""
    traffic_start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=scale.days)
    events = scale.traffic(seed=seed, group_prefix=prefix)
    figures = Figures(name, sent=len(events))
    with service_stack(settings, logs) as stack:
        services = Services(stack, settings)
        api = Api(services, token)
        try:
            ops = set_up_operations(
                api,
                services=services,
                groups=sorted({e["group_id"] for e in events}),
                starts_at=traffic_start - timedelta(hours=1),
                tag=prefix,
            )
            group = f"{prefix}:g0"
            probe = (
                [message(group, f"{group}:probe", probe_text, event_id=f"{prefix}-probe")]
                if probe_text
                else []
            )
            figures.sent += len(ops.canaries) + len(probe)
            ingest = services.url("ingest")
            streamer = Streamer(url=ingest, events=events, seconds=scale.stream_seconds)
            yield FaultRun(settings, stack, services, api, ops, streamer, figures, probe)
        finally:
            api.close()
