"""Pipelined Lua scripts on a standalone Redis: bare EVALSHA, loaded only when refused."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import redis

from services.common.redis_client import make_redis, queue_script, run_pipeline

COUNT = "return redis.call('INCRBY', KEYS[1], ARGV[1])"


def test_a_script_is_loaded_when_the_server_lacks_it_and_each_call_runs_once(
    redis_url: str, unique: Callable[[str], str]
) -> None:
    client = make_redis(redis_url)
    script = client.register_script(COUNT)
    keys = [unique(f"count-{i}") for i in range(3)]

    def count_all(by: int) -> list[int]:
        pipe = client.pipeline(transaction=False)
        for key in keys:
            queue_script(pipe, script, keys=[key], args=[by])
        pipe.set(keys[0] + ":plain", by)  # a plain command between them keeps its place
        results = run_pipeline(pipe)
        assert results[-1] is True
        return [int(r) for r in results[:-1]]

    client.script_flush()
    assert count_all(1) == [1, 1, 1]  # first use: the server had no script
    before = client.info("commandstats").get("cmdstat_script|exists", {}).get("calls", 0)
    assert count_all(2) == [3, 3, 3]
    after = client.info("commandstats").get("cmdstat_script|exists", {}).get("calls", 0)
    assert after == before  # no SCRIPT EXISTS round trip once the server has it
    client.script_flush()  # as after a restart
    assert count_all(4) == [7, 7, 7]  # each refused call ran once: 3 + 4, never 3 + 4 + 4
    client.close()


def test_an_error_in_a_pipelined_script_still_raises(
    redis_url: str, unique: Callable[[str], str]
) -> None:
    client = make_redis(redis_url)
    script = client.register_script(COUNT)
    key = unique("wrongtype")
    client.rpush(key, "x")
    pipe = client.pipeline(transaction=False)
    queue_script(pipe, script, keys=[key], args=[1])
    with pytest.raises(redis.ResponseError):
        run_pipeline(pipe)
    client.close()
