"""Topic creation takes its replication factor from `KAFKA_REPLICATION_FACTOR`.

The session broker (Tansu) records the factor a topic is created with and describes that
many replicas per partition, so the factor `ensure_topics` asked for is visible here.
"""

from __future__ import annotations

import uuid

import pytest
from kafka.admin import KafkaAdminClient
from pydantic import ValidationError

from services.common.kafka.admin import ensure_topics
from services.common.settings import Settings


def replicas(bootstrap: str, topic: str) -> set[int]:
    """How many replicas each partition of `topic` has (one value when all agree)."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    try:
        [described] = admin.describe_topics([topic])
    finally:
        admin.close()
    return {len(p["replica_nodes"]) for p in described["partitions"]}


def test_topics_are_created_with_the_configured_replication_factor(make_settings, kafka_bootstrap):
    topic = f"rf.{uuid.uuid4().hex[:8]}"
    ensure_topics(make_settings(kafka_replication_factor=2, kafka_partitions=2), [topic])
    assert replicas(kafka_bootstrap, topic) == {2}


def test_the_factor_defaults_to_one_and_must_be_at_least_one(make_settings, kafka_bootstrap):
    default = make_settings()
    assert default.kafka_replication_factor == 1
    topic = f"rf.{uuid.uuid4().hex[:8]}"
    ensure_topics(default, [topic])
    assert replicas(kafka_bootstrap, topic) == {1}
    with pytest.raises(ValidationError, match="kafka_replication_factor"):
        Settings(kafka_replication_factor=0)
