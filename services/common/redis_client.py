"""Redis clients with bounded timeouts, built on demand (never at import): one Redis or a Cluster.

With REDIS_CLUSTER=true, REDIS_URL names one node of a Redis Cluster and every client is a
cluster client (docs/scaling.md, "Redis Cluster"). The services' Redis code is the same on
both: every key of a multi-key operation (a Lua script, an atomic read of several keys)
carries one hash tag (`hash_tag`), so it lives in one slot. Non-transactional pipelines
may mix slots: redis-py's cluster pipeline sends each command to its own slot's node.

Lua scripts in pipelines go through `queue_script` and `run_pipeline`: redis-py's cluster
pipeline refuses EVALSHA, so on a cluster the call is queued as a plain EVALSHA and a node
that does not have the script yet (new, restarted, promoted) gets it loaded and only the
calls it refused are run again (a refused call had no effect).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence
from typing import Any, cast

import redis
import redis.asyncio
import redis.asyncio.cluster
from redis.backoff import ExponentialWithJitterBackoff
from redis.cluster import RedisCluster
from redis.commands.core import Script
from redis.connection import Encoder
from redis.exceptions import NoScriptError, RedisClusterException
from redis.retry import Retry

_TIMEOUTS = {
    "socket_timeout": 5,
    "socket_connect_timeout": 2,
    "health_check_interval": 30,
}
CLUSTER_SLOTS = 16384
# What a Redis call can raise when Redis is down: a cluster adds errors that are not
# RedisErrors (a slot without a node: SlotNotCoveredError).
REDIS_ERRORS = (redis.RedisError, RedisClusterException)


def _cluster_options() -> dict[str, Any]:
    # A few quick retries ride out a failover or a resharding (MOVED, a refreshed slot map);
    # redis-py's default of 10 would keep a request waiting long after the cluster is down.
    return {
        **_TIMEOUTS,
        "retry": Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.5), 3),
        "require_full_coverage": False,  # a cluster missing slots is reported, not fatal
    }


def hash_tag(value: str) -> str:
    """Return `{value}` as a Redis Cluster hash tag, braces escaped so the tag is all of value."""
    escaped = value.replace("%", "%25").replace("{", "%7B").replace("}", "%7D")
    return f"{{{escaped}}}"


def _info_problem(info: dict[str, Any]) -> str | None:
    """What CLUSTER INFO says is wrong: slots without a node, or a failing state."""
    assigned = int(info.get("cluster_slots_assigned", 0))
    if assigned < CLUSTER_SLOTS:
        return f"cluster has {CLUSTER_SLOTS - assigned} of {CLUSTER_SLOTS} slots unassigned"
    if info.get("cluster_state") != "ok":
        failing = int(info.get("cluster_slots_pfail", 0)) + int(info.get("cluster_slots_fail", 0))
        return f"cluster state {info.get('cluster_state')} ({failing} slots failing)"
    return None


class LazyRedisCluster:
    """A redis-py RedisCluster that connects on first use rather than when built.

    RedisCluster reads the slot map in its constructor, so a service whose cluster is down
    at start would crash instead of serving /readyz; this one is built on the first command
    (and again on the next one if that failed). A cluster that cannot be reached raises
    redis ConnectionError, which every caller already treats as Redis being down.
    """

    def __init__(self, url: str) -> None:
        self._url = url
        self._lock = threading.Lock()
        self._client: RedisCluster | None = None

    @property
    def cluster(self) -> RedisCluster:
        """The connected cluster client."""
        with self._lock:
            if self._client is None:
                try:
                    self._client = RedisCluster.from_url(self._url, **_cluster_options())
                except (RedisClusterException, IndexError) as exc:
                    # IndexError: redis-py's answer to a cluster that has no slot at all.
                    raise redis.ConnectionError(f"Redis Cluster: {exc!r}") from exc
            return self._client

    def problem(self) -> str | None:
        """Why the cluster cannot serve every slot now (None: it can), or raise a RedisError."""
        try:
            cluster = self.cluster
        except redis.ConnectionError:
            # Ask the node REDIS_URL names: nodes not joined yet are "slots unassigned".
            with redis.Redis.from_url(self._url, **_TIMEOUTS) as node:  # type: ignore[arg-type]
                if problem := _info_problem(cast(dict[str, Any], node.cluster("INFO"))):
                    return problem
            raise
        # Every primary answers, and none sees a slot without a node or a failing state.
        views = cast(
            dict[str, dict[str, Any]], cluster.cluster_info(target_nodes=RedisCluster.PRIMARIES)
        )
        for name, info in sorted(views.items()):
            if problem := _info_problem(info):
                return f"{problem} (node {name})"
        return None

    def register_script(self, script: str) -> Script:
        """Register a Lua script without connecting (its SHA is computed locally)."""
        return Script(cast(RedisCluster, self), script)

    def get_encoder(self) -> Encoder:
        """The encoder a Script uses for its SHA (redis-py's defaults, as the cluster's)."""
        return Encoder(encoding="utf-8", encoding_errors="strict", decode_responses=False)

    def close(self) -> None:
        """Close the cluster's connections, if it was ever connected."""
        with self._lock:
            if self._client is not None:
                self._client.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.cluster, name)


def make_redis(url: str, *, cluster: bool = False) -> redis.Redis:
    """Build a Redis client with bounded timeouts so no call hangs (a cluster one if asked).

    A cluster client serves the same commands, pipelines and scripts the services use; it
    is typed as redis.Redis so each service's code is the same for both.
    """
    if cluster:
        return cast(redis.Redis, LazyRedisCluster(url))
    return redis.Redis.from_url(url, retry_on_timeout=False, **_TIMEOUTS)  # type: ignore[arg-type]


def make_async_redis(url: str, *, cluster: bool = False) -> redis.asyncio.Redis:
    """Build an asyncio Redis client with the same bounded timeouts as make_redis."""
    if cluster:  # the asyncio cluster client connects on its first command already
        client = redis.asyncio.cluster.RedisCluster.from_url(url, **_cluster_options())
        return cast(redis.asyncio.Redis, client)
    return redis.asyncio.Redis.from_url(url, retry_on_timeout=False, **_TIMEOUTS)  # type: ignore[arg-type]


def redis_problem(client: redis.Redis) -> str | None:
    """Return None when Redis answers PING (a cluster: ok, every slot assigned), else why not."""
    try:
        if isinstance(client, LazyRedisCluster):
            return client.problem()
        client.ping()
        return None
    except REDIS_ERRORS as exc:
        return f"unreachable ({type(exc).__name__})"


# Per pipeline: the scripts queued on it, by position, with their EVALSHA arguments.
_QUEUED: weakref.WeakKeyDictionary[
    redis.client.Pipeline, dict[int, tuple[Script, tuple[Any, ...]]]
] = weakref.WeakKeyDictionary()


def queue_script(
    pipe: redis.client.Pipeline, script: Script, *, keys: Sequence[Any], args: Sequence[Any]
) -> None:
    """Queue a Lua script call on a pipeline of either client; run it with run_pipeline.

    As a bare EVALSHA: redis-py's own pipelined scripts send SCRIPT EXISTS before every
    execute (a round trip per poll on the hot paths); run_pipeline loads a script only
    when a server answers NOSCRIPT (after a restart or a failover), then re-runs those calls.
    """
    command = ("EVALSHA", script.sha, len(keys), *keys, *args)
    _QUEUED.setdefault(pipe, {})[len(pipe)] = (script, command)
    pipe.execute_command(*command)


def run_pipeline(pipe: redis.client.Pipeline) -> list[Any]:
    """Execute a pipeline; load the scripts a server lacks and re-run the calls it refused.

    Pipelines here are never transactions, so a refused call had no effect and its re-run
    is its first run (after the pipeline's other commands, which never depend on it).
    """
    queued = _QUEUED.pop(pipe, {})
    results = pipe.execute(raise_on_error=not queued)
    refused = [i for i in queued if isinstance(results[i], NoScriptError)]
    if refused:
        for script in {queued[i][0].sha: queued[i][0] for i in refused}.values():
            script.registered_client.script_load(script.script)  # every primary
        for i in refused:
            pipe.execute_command(*queued[i][1])
        for i, result in zip(refused, pipe.execute(raise_on_error=False), strict=True):
            results[i] = result
    for result in results:
        if isinstance(result, Exception):
            raise result
    return results
