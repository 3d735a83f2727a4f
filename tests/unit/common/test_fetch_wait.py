"""The consumer's fetch wait: short while records flow, back to kafka-python's default when idle."""

from __future__ import annotations

from services.common.kafka.consumer import (
    FETCH_WAIT_FLOWING_MS,
    FETCH_WAIT_IDLE_MS,
    next_fetch_wait,
)


def test_a_poll_with_records_asks_with_the_short_wait_again():
    assert next_fetch_wait(FETCH_WAIT_IDLE_MS, flowing=True) == FETCH_WAIT_FLOWING_MS
    assert next_fetch_wait(40, flowing=True) == FETCH_WAIT_FLOWING_MS


def test_empty_polls_double_the_wait_up_to_the_default():
    waits = [FETCH_WAIT_FLOWING_MS]
    for _ in range(10):
        waits.append(next_fetch_wait(waits[-1], flowing=False))
    assert waits[:4] == [5, 10, 20, 40]
    assert waits[-1] == FETCH_WAIT_IDLE_MS == max(waits)
    assert waits == sorted(waits)  # never shorter while idle
