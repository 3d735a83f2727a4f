"""Prometheus metrics of the Kafka bus, shared by the producer and the consumer loop."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

CONSUMED = Counter(
    "qunyun_consumer_records_total",
    "Records taken from Kafka by a consumer group, by outcome (processed, deadlettered).",
    ["group", "topic", "outcome"],
)
CONSUMER_ERRORS = Counter(
    "qunyun_consumer_errors_total",
    "Errors met by a consumer loop, by kind (decode, handler, transient, poll, commit).",
    ["group", "kind"],
)
DEADLETTERS = Counter(
    "qunyun_deadletter_records_total",
    "Records a consumer group sent to the dead-letter topic.",
    ["group", "topic"],
)
LAG = Gauge(
    "qunyun_consumer_lag_messages",
    "Records in a partition not yet processed by the consumer group (high watermark - position).",
    ["group", "topic", "partition"],
)
BATCH_SECONDS = Histogram(
    "qunyun_consumer_batch_duration_seconds",
    "Time a consumer group's handler took for one poll's batch.",
    ["group"],
    buckets=_BUCKETS,
)
PRODUCE_SECONDS = Histogram(
    "qunyun_kafka_produce_duration_seconds",
    "Time from send to Kafka acknowledgement for one produce call (a batch waits once).",
    ["topic"],
    buckets=_BUCKETS,
)
PRODUCE_ERRORS = Counter(
    "qunyun_kafka_produce_errors_total",
    "Produce calls that Kafka did not acknowledge in time.",
    ["topic"],
)
