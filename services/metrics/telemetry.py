"""The metrics service's own Prometheus metrics."""

from prometheus_client import Counter, Histogram

EVENTS_APPLIED = Counter(
    "qunyun_metrics_events_applied_total",
    "Events whose effect the metrics consumer applied to Redis, by event type.",
    ["type"],
)
DUPLICATES_SKIPPED = Counter(
    "qunyun_metrics_duplicates_skipped_total",
    "Events already applied (same source and id) that changed nothing.",
)
TOO_OLD_SKIPPED = Counter(
    "qunyun_metrics_events_too_old_total",
    "Events dated before the kept daily history (METRICS_HISTORY_DAYS), ignored.",
)
BATCH_APPLY_SECONDS = Histogram(
    "qunyun_metrics_batch_apply_duration_seconds",
    "Time to apply one poll's batch to Redis (one pipeline).",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
DELETED_MESSAGES = Counter(
    "qunyun_metrics_deleted_messages_total",
    "Messages moderation deleted that metrics does not count, by when the deletion came: "
    "before the message (never counted) or after it (subtracted).",
    ["when"],
)
ACTIONS_INVALID = Counter(
    "qunyun_metrics_actions_invalid_total",
    "Records of moderation.actions.v1 that are not a valid action, skipped.",
)
