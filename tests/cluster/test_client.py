"""The cluster client itself: scripts in pipelines that span every master, a script cache
that a node lost (restart, failover, SCRIPT FLUSH), errors that still surface."""

from __future__ import annotations

import uuid

import pytest
import redis
from redis.crc import key_slot

from services.common.redis_client import hash_tag, make_redis, queue_script, run_pipeline
from tests.cluster.nodes import ClusterNodes

COUNT = "redis.call('INCRBY', KEYS[1], ARGV[1]) return redis.call('GET', KEYS[1])"


def keys_on_every_master(cluster: ClusterNodes, n: int = 12) -> list[str]:
    """n keys (each its own hash tag) covering every master's slots."""
    run = uuid.uuid4().hex
    keys = [f"qy:{hash_tag(f'{run}-{i}')}:count" for i in range(n)]
    owners = {owner_port(cluster, key_slot(k.encode())) for k in keys}
    assert owners == set(cluster.ports), "the keys should reach every master"
    return keys


def owner_port(cluster: ClusterNodes, slot: int) -> int:
    for start, end, master, *_ in cluster.node(cluster.ports[0]).execute_command("CLUSTER SLOTS"):
        if int(start) <= slot <= int(end):
            return int(master[1])
    raise AssertionError(f"slot {slot} has no node")


def test_pipelined_scripts_reach_every_master_and_survive_a_lost_script_cache(cluster, redis_url):
    client = make_redis(redis_url, cluster=True)
    script = client.register_script(COUNT)
    keys = keys_on_every_master(cluster)

    def count_all(by: int) -> list[int]:
        pipe = client.pipeline(transaction=False)
        for key in keys:
            queue_script(pipe, script, keys=[key], args=[by])
        pipe.set(keys[0] + ":plain", by)  # a plain command between them keeps its place
        results = run_pipeline(pipe)
        assert results[-1] is True
        return [int(r) for r in results[:-1]]

    assert count_all(1) == [1] * len(keys)  # first use: no node had the script
    assert count_all(2) == [3] * len(keys)
    for port in cluster.ports:  # every node forgets it (as after a restart)
        cluster.node(port).script_flush()
    # Each refused call ran once when retried: 3 + 4, never 3 + 4 + 4.
    assert count_all(4) == [7] * len(keys)
    client.close()


def test_an_error_in_a_pipeline_still_raises(redis_url, unique):
    client = make_redis(redis_url, cluster=True)
    script = client.register_script(COUNT)
    key = f"qy:{hash_tag(unique('wrongtype'))}:list"
    client.rpush(key, "x")
    pipe = client.pipeline(transaction=False)
    queue_script(pipe, script, keys=[key], args=[1])
    with pytest.raises(redis.ResponseError):
        run_pipeline(pipe)
    client.close()
