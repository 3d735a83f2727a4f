"""The campaigns service's domain metrics."""

from prometheus_client import Counter, Histogram

PARTICIPATIONS = Counter(
    "qunyun_campaigns_participations_total",
    "Messages counted by a campaign (one per event and campaign), by campaign kind.",
    ["kind"],
)
GRANTS = Counter(
    "qunyun_campaigns_grants_total",
    "Rewards granted (committed, once per campaign, member and reason), by campaign kind.",
    ["kind"],
)
POINTS = Counter(
    "qunyun_campaigns_points_granted_total",
    "Points granted, by campaign kind.",
    ["kind"],
)
NOTIFICATIONS = Counter(
    "qunyun_campaigns_notifications_published_total",
    "Notifications acknowledged by Kafka on campaigns.notifications.v1, by notification kind.",
    ["kind"],
)
RECEIPTS = Counter(
    "qunyun_campaigns_delivery_receipts_total",
    "Delivery receipts of campaigns' notifications taken (the newest per notification and "
    "batch), by outcome.",
    ["outcome"],
)
SCHEDULER_LAG = Histogram(
    "qunyun_campaigns_scheduler_lag_seconds",
    "How late a due transition or notification fired (now - due time).",
    buckets=(0.05, 0.1, 0.25, 0.5, 0.75, 1, 2, 5, 10, 30, 60, 300, 3600),
)
EXCLUSIONS = Counter(
    "qunyun_campaigns_exclusions_total",
    "Members made ineligible for a lottery or poll (one per campaign, member and cause), "
    "by origin (moderation, manual).",
    ["origin"],
)
INVITEES = Counter(
    "qunyun_campaigns_invitees_settled_total",
    "Invitees settled by the scheduler, by outcome (retained, left, cancelled).",
    ["outcome"],
)
