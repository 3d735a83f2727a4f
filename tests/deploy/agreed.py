"""The Prometheus metrics the team agreed on: name -> (type, labels).

The dashboard and the alert rules may only use these names (tests/deploy/test_rules.py),
so neither can rot silently when a metric is renamed. Changing a name means changing it
here, in the service, in deploy/ and in docs/operating.md together.
"""

from __future__ import annotations

AGREED: dict[str, tuple[str, tuple[str, ...]]] = {
    # Prometheus' own per-target series.
    "up": ("gauge", ("job", "instance", "service")),
    # Shared: services/common/observability.py and services/common/bus.py.
    "qunyun_http_requests_total": ("counter", ("service", "method", "route", "status")),
    "qunyun_http_request_duration_seconds": ("histogram", ("service", "method", "route")),
    "qunyun_consumer_records_total": ("counter", ("group", "topic", "outcome")),
    "qunyun_consumer_errors_total": ("counter", ("group", "kind")),
    "qunyun_deadletter_records_total": ("counter", ("group", "topic")),
    "qunyun_consumer_lag_messages": ("gauge", ("group", "topic", "partition")),
    "qunyun_consumer_batch_duration_seconds": ("histogram", ("group",)),
    "qunyun_kafka_produce_duration_seconds": ("histogram", ("topic",)),
    "qunyun_kafka_produce_errors_total": ("counter", ("topic",)),
    # ingest
    "qunyun_ingest_events_total": ("counter", ("source", "platform", "type", "outcome")),
    "qunyun_ingest_webhook_body_bytes": ("histogram", ("platform",)),
    "qunyun_ingest_dedup_commit_failures_total": ("counter", ()),
    # metrics
    "qunyun_metrics_events_applied_total": ("counter", ("type",)),
    "qunyun_metrics_duplicates_skipped_total": ("counter", ()),
    "qunyun_metrics_events_too_old_total": ("counter", ()),
    "qunyun_metrics_batch_apply_duration_seconds": ("histogram", ()),
    # moderation
    "qunyun_moderation_messages_evaluated_total": ("counter", ()),
    "qunyun_moderation_decisions_total": ("counter", ("rule_kind", "action", "mode")),
    "qunyun_moderation_actions_published_total": ("counter", ("action",)),
    "qunyun_moderation_evaluation_duration_seconds": ("histogram", ()),
    # campaigns
    "qunyun_campaigns_participations_total": ("counter", ("kind",)),
    "qunyun_campaigns_grants_total": ("counter", ("kind",)),
    "qunyun_campaigns_points_granted_total": ("counter", ("kind",)),
    "qunyun_campaigns_notifications_published_total": ("counter", ("kind",)),
    "qunyun_campaigns_scheduler_lag_seconds": ("histogram", ()),
    # delivery
    "qunyun_delivery_calls_total": ("counter", ("platform", "operation", "outcome")),
    "qunyun_delivery_retries_total": ("counter", ("platform", "reason")),
    "qunyun_delivery_rate_limit_waits_total": ("counter", ("source", "cause")),
    "qunyun_delivery_unknown_outcome_retries_total": ("counter", ("platform",)),
    "qunyun_delivery_receipts_total": ("counter", ("outcome",)),
    "qunyun_delivery_queue_depth": ("gauge", ("source",)),
}

# Each service's own metrics (beyond the shared HTTP, consumer and produce ones).
SERVICE_METRICS: dict[str, tuple[str, ...]] = {
    service: tuple(n for n in AGREED if n.startswith(f"qunyun_{service}_"))
    for service in ("ingest", "metrics", "moderation", "campaigns", "delivery")
}

# Labels whose values could be unbounded; never allowed on any qunyun metric.
FORBIDDEN_LABELS = frozenset(
    {"member_id", "member", "user", "user_id", "message_id", "event_id", "group_id", "id"}
)


def series_names(name: str) -> set[str]:
    """Return the names a metric is exposed and queried under (histogram suffixes included)."""
    kind = AGREED[name][0]
    if kind == "histogram":
        return {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
    return {name}


def queryable_names() -> dict[str, str]:
    """Map every queryable series name to its agreed metric."""
    return {series: name for name in AGREED for series in series_names(name)}
