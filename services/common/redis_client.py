"""Redis clients with bounded timeouts, built on demand (never at import)."""

from __future__ import annotations

import redis
import redis.asyncio

_TIMEOUTS = {
    "socket_timeout": 5,
    "socket_connect_timeout": 2,
    "health_check_interval": 30,
    "retry_on_timeout": False,
}


def make_redis(url: str) -> redis.Redis:
    """Build a Redis client with bounded timeouts so no call hangs."""
    return redis.Redis.from_url(url, **_TIMEOUTS)  # type: ignore[arg-type]


def make_async_redis(url: str) -> redis.asyncio.Redis:
    """Build an asyncio Redis client with the same bounded timeouts as make_redis."""
    return redis.asyncio.Redis.from_url(url, **_TIMEOUTS)  # type: ignore[arg-type]


def redis_problem(client: redis.Redis) -> str | None:
    """Return None when Redis answers PING, else why not."""
    try:
        client.ping()
        return None
    except redis.RedisError as exc:
        return f"unreachable ({type(exc).__name__})"
