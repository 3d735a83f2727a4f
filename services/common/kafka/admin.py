"""Topic creation and the readiness probe: does a broker answer a Kafka request?"""

from __future__ import annotations

import contextlib
import socket
import struct
from collections.abc import Iterable

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

from services.common.settings import Settings

# ApiVersions v0 with correlation id 1 and client id "qy-ready": the cheapest request every
# Kafka-protocol broker answers. A TCP connect alone succeeds even against a frozen broker.
_API_VERSIONS_REQUEST = struct.pack(">hhih", 18, 0, 1, 8) + b"qy-ready"
_API_VERSIONS_FRAME = struct.pack(">i", len(_API_VERSIONS_REQUEST)) + _API_VERSIONS_REQUEST


def _broker_answers(host: str, port: int, timeout: float) -> None:
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        sock.sendall(_API_VERSIONS_FRAME)
        header = sock.recv(8)
        if len(header) < 8 or struct.unpack(">ii", header)[1] != 1:
            raise ConnectionError("no Kafka answer")


def kafka_reachable(settings: Settings, timeout: float = 1.0) -> str | None:
    """Return None when a bootstrap server answers a Kafka ApiVersions request, else why not."""
    errors = []
    for server in settings.bootstrap_servers:
        host, _, port = server.rpartition(":")
        try:
            _broker_answers(host.strip("[]"), int(port), timeout)
            return None
        except (OSError, ValueError) as exc:
            errors.append(f"{server}: {type(exc).__name__}")
    return "unreachable (" + ", ".join(errors) + ")"


def ensure_topics(settings: Settings, topics: Iterable[str] | None = None) -> None:
    """Create the contract's topics if they do not exist yet, with `KAFKA_PARTITIONS`
    partitions and `KAFKA_REPLICATION_FACTOR` replicas (a topic that exists is left as it is)."""
    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap_servers, request_timeout_ms=10000)
    try:
        existing = set(admin.list_topics())
        wanted = [t for t in (topics or settings.topics) if t not in existing]
        for topic in wanted:
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(
                    [
                        NewTopic(
                            topic,
                            num_partitions=settings.kafka_partitions,
                            replication_factor=settings.kafka_replication_factor,
                        )
                    ]
                )
    finally:
        admin.close()
