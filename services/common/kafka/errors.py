"""Which failures are a dependency being down (retry later) rather than a bad record."""

from __future__ import annotations

import redis.exceptions
import sqlalchemy.exc
from kafka.errors import KafkaError


class BrokerUnavailable(RuntimeError):
    """Kafka could not take the records within the deadline."""


class TransientError(RuntimeError):
    """A failure that retrying later will fix (a dependency is down)."""


_TRANSIENT = (
    TransientError,
    BrokerUnavailable,
    KafkaError,
    ConnectionError,
    TimeoutError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.BusyLoadingError,
    redis.exceptions.ReadOnlyError,
    # Redis Cluster: a failover or resharding in progress, slots without a node.
    redis.exceptions.ClusterDownError,
    redis.exceptions.TryAgainError,
    redis.exceptions.RedisClusterException,
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.DisconnectionError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.TimeoutError,
)


def is_transient(exc: BaseException) -> bool:
    """Tell whether an exception means a dependency is down rather than a bad record."""
    return isinstance(exc, _TRANSIENT)
