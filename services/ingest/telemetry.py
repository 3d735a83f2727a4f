"""The ingest service's own Prometheus metrics."""

from prometheus_client import Counter, Histogram

EVENTS = Counter(
    "qunyun_ingest_events_total",
    "Webhook events by source, platform, canonical type and outcome "
    "(accepted, duplicate, ignored, rejected).",
    ["source", "platform", "type", "outcome"],
)
BODY_BYTES = Histogram(
    "qunyun_ingest_webhook_body_bytes",
    "Size of webhook request bodies read, by platform.",
    ["platform"],
    buckets=(256, 1024, 4096, 16384, 65536, 262144, 524288, 1048576, 2097152),
)
DEDUP_COMMIT_FAILURES = Counter(
    "qunyun_ingest_dedup_commit_failures_total",
    "Batches Kafka acknowledged but Redis could not mark as seen (a redelivery may repeat them).",
)
