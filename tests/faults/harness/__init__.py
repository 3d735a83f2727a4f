"""Shared pieces of the process-level fault tests, one module per concern:

- scale: how big a run is, the shared constants, the one-line figures each test prints;
- truth: the ground truth computed in plain Python from the acknowledged events;
- traffic: the paced streamer into ingest and single posts;
- processes: SIGKILL/restart, kill schedules, a private Redis, a frozen broker;
- verify: reading the APIs and topics back and comparing with the truth;
- scenario: a whole stream-and-verify run (`fault_run`), the part the tests share.
"""

from tests.faults.harness.processes import (
    Frozen,
    RedisServer,
    Services,
    consumer_lag,
    kill_schedule,
    run_kills,
)
from tests.faults.harness.scale import (
    CONSUMERS,
    FIGURES,
    SECRET,
    SOURCE,
    TIMEZONE,
    Figures,
    Scale,
    current_scale,
)
from tests.faults.harness.scenario import FaultRun, Outcome, fault_run
from tests.faults.harness.traffic import Streamer, message, post_events
from tests.faults.harness.truth import Truth, ground_truth
from tests.faults.harness.verify import (
    Api,
    Verdict,
    read_values,
    readyz,
    server_errors,
    set_up_operations,
    settle_and_verify,
)

__all__ = [
    "CONSUMERS",
    "FIGURES",
    "SECRET",
    "SOURCE",
    "TIMEZONE",
    "Api",
    "FaultRun",
    "Figures",
    "Frozen",
    "Outcome",
    "RedisServer",
    "Scale",
    "Services",
    "Streamer",
    "Truth",
    "Verdict",
    "consumer_lag",
    "current_scale",
    "fault_run",
    "ground_truth",
    "kill_schedule",
    "message",
    "post_events",
    "read_values",
    "readyz",
    "run_kills",
    "server_errors",
    "set_up_operations",
    "settle_and_verify",
]
