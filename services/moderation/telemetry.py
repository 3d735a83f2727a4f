"""Moderation's domain metrics (Prometheus)."""

from prometheus_client import Counter, Histogram

MESSAGES_EVALUATED = Counter(
    "qunyun_moderation_messages_evaluated_total",
    "Messages the moderation consumer ran through a group's rules.",
)
DECISIONS = Counter(
    "qunyun_moderation_decisions_total",
    "Rule matches recorded in new cases, by rule kind, the rule's action and mode.",
    ["rule_kind", "action", "mode"],
)
ACTIONS_PUBLISHED = Counter(
    "qunyun_moderation_actions_published_total",
    "Actions Kafka acknowledged on moderation.actions.v1, by action.",
    ["action"],
)
EVALUATION_SECONDS = Histogram(
    "qunyun_moderation_evaluation_duration_seconds",
    "Time the rule engine took to judge one event (Redis and database excluded).",
    buckets=(
        0.00001,
        0.000025,
        0.00005,
        0.0001,
        0.00025,
        0.0005,
        0.001,
        0.0025,
        0.005,
        0.01,
        0.025,
        0.05,
        0.1,
        0.25,
    ),
)
RECEIPTS = Counter(
    "qunyun_moderation_receipts_total",
    "Delivery receipts of moderation's actions taken (the newest per action), by outcome.",
    ["outcome"],
)
MANUAL_ACTIONS = Counter(
    "qunyun_moderation_manual_actions_total",
    "Cases opened by an operator through POST /v1/groups/{g}/actions, by action.",
    ["action"],
)
REPORTS = Counter(
    "qunyun_moderation_reports_total",
    "Member reports (举报), by outcome: counted, repeated (the reporter had reported the "
    "message), ignored (unknown message, self-report, exempt author), actioned (threshold).",
    ["outcome"],
)
JOIN_REQUESTS = Counter(
    "qunyun_moderation_join_requests_total",
    "Join requests received, by what happened: pending (waits for an operator), approved or "
    "declined (by the policy or a blocklist).",
    ["outcome"],
)
VERIFICATIONS = Counter(
    "qunyun_moderation_verifications_total",
    "Newcomer verifications, by step: started (muted with a code), verified, failed (on_fail).",
    ["outcome"],
)
BLOCKLIST_BANS = Counter(
    "qunyun_moderation_blocklist_bans_total",
    "Members banned because a subscribed blocklist lists them (on join, or on being listed).",
)
CLEANUP_KICKS = Counter(
    "qunyun_moderation_cleanup_kicks_total",
    "Members kicked by lurker clean-ups.",
)
