"""The delivery service's domain metrics."""

from prometheus_client import Counter, Gauge

CALLS = Counter(
    "qunyun_delivery_calls_total",
    "Platform calls made (one per step attempt), by platform, operation and outcome.",
    ["platform", "operation", "outcome"],
)
RETRIES = Counter(
    "qunyun_delivery_retries_total",
    "Calls to be made again, by platform and reason (rate_limited, error).",
    ["platform", "reason"],
)
RATE_LIMIT_WAITS = Counter(
    "qunyun_delivery_rate_limit_waits_total",
    "Times a record waited for pacing, by source and cause (pacing, hint).",
    ["source", "cause"],
)
UNKNOWN_OUTCOME_RETRIES = Counter(
    "qunyun_delivery_unknown_outcome_retries_total",
    "Calls repeated whose outcome was unknown (a timeout or 5xx after sending, or a crash).",
    ["platform"],
)
RECEIPTS = Counter(
    "qunyun_delivery_receipts_total",
    "Receipts queued (committed with the delivery's outcome), by outcome.",
    ["outcome"],
)
QUEUE_DEPTH = Gauge(
    "qunyun_delivery_queue_depth",
    "Records waiting or in flight, by source (`-`: records without a source).",
    ["source"],
)
