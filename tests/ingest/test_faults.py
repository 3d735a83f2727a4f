"""Concurrent redeliveries, the broker going away and coming back, Redis down."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import orjson

from services.common.kafka.admin import ensure_topics
from services.ingest.app import create_app
from tests.ingest.helpers import events_on, generic_headers
from tools.localstack import free_port, start_tansu, stop

URL = "/v1/webhooks/generic-test"


def batch(n: int) -> bytes:
    run = uuid.uuid4().hex[:8]
    events = [
        {
            "id": f"f-{run}-{i}",
            "type": "member.joined",
            "group_id": f"g:{i % 5}",
            "member_id": f"m:{i}",
            "occurred_at": "2026-11-21T08:00:00Z",
        }
        for i in range(n)
    ]
    return orjson.dumps({"events": events})


def test_concurrent_redeliveries_put_each_event_on_the_topic_once(ingest):
    body = batch(300)
    headers = generic_headers(body)
    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(
            pool.map(lambda _: ingest.client.post(URL, content=body, headers=headers), range(6))
        )
    assert [a.status_code for a in answers] == [202] * 6
    assert sum(a.json()["accepted"] for a in answers) == 300
    assert sum(a.json()["duplicates"] for a in answers) == 5 * 300
    events = events_on(ingest.bootstrap, ingest.topic, expect=300, settle=2.0)
    assert len(events) == 300
    assert len({e["id"] for e in events}) == 300


def test_broker_unreachable_is_503_in_time_then_the_same_request_is_accepted(
    make_settings, run_app, tmp_path
):
    port = free_port()
    settings = make_settings(
        kafka_bootstrap_servers=f"127.0.0.1:{port}", kafka_produce_timeout_seconds=2.0
    )
    body = batch(20)
    broker = None
    with run_app(create_app(settings)) as client:
        started = time.monotonic()
        response = client.post(URL, content=body, headers=generic_headers(body))
        elapsed = time.monotonic() - started
        assert response.status_code == 503
        assert response.headers["Retry-After"]
        assert elapsed < 2.0 + 3.0, elapsed
        try:
            broker = start_tansu(port, tmp_path / "broker.log")
            ensure_topics(settings)
            response = client.post(URL, content=body, headers=generic_headers(body))
            assert response.status_code == 202, response.text
            assert response.json()["accepted"] == 20  # the failed attempt left no "seen" mark
            events = events_on(f"127.0.0.1:{port}", settings.topic_events, expect=20)
            assert len(events) == 20
        finally:
            stop(broker)


def test_broker_stopping_mid_life_is_503_then_recovers(make_settings, run_app, tmp_path):
    port = free_port()
    broker = start_tansu(port, tmp_path / "broker.log")
    settings = make_settings(
        kafka_bootstrap_servers=f"127.0.0.1:{port}", kafka_produce_timeout_seconds=2.0
    )
    try:
        ensure_topics(settings)
        with run_app(create_app(settings)) as client:
            first = batch(5)
            assert (
                client.post(URL, content=first, headers=generic_headers(first)).status_code == 202
            )
            stop(broker)
            body = batch(10)
            started = time.monotonic()
            response = client.post(URL, content=body, headers=generic_headers(body))
            assert response.status_code == 503
            assert time.monotonic() - started < 2.0 + 3.0
            broker = start_tansu(port, tmp_path / "broker.log")
            ensure_topics(settings)
            deadline = time.monotonic() + 30
            while True:
                response = client.post(URL, content=body, headers=generic_headers(body))
                if response.status_code == 202 or time.monotonic() > deadline:
                    break
                assert response.status_code == 503
                time.sleep(0.5)
            assert response.status_code == 202, response.text
            ids = {
                e["id"] for e in events_on(f"127.0.0.1:{port}", settings.topic_events, expect=10)
            }
            assert {e["id"] for e in orjson.loads(body)["events"]} <= ids
    finally:
        stop(broker)


def test_redis_down_is_503_not_500(make_settings, run_app):
    settings = make_settings(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    body = batch(3)
    with run_app(create_app(settings)) as client:
        response = client.post(URL, content=body, headers=generic_headers(body))
        assert response.status_code == 503
        assert response.headers["Retry-After"]


def test_concurrent_single_event_redeliveries_through_group_commit(ingest):
    bodies = [orjson.loads(batch(1))["events"][0] for _ in range(60)]
    requests = [orjson.dumps(b) for b in bodies for _ in range(4)]  # each delivered 4 times
    with ThreadPoolExecutor(max_workers=24) as pool:
        answers = list(
            pool.map(
                lambda body: ingest.client.post(URL, content=body, headers=generic_headers(body)),
                requests,
            )
        )
    assert {a.status_code for a in answers} == {202}
    assert sum(a.json()["accepted"] for a in answers) == 60
    assert sum(a.json()["duplicates"] for a in answers) == 180
    events = events_on(ingest.bootstrap, ingest.topic, expect=60, settle=2.0)
    assert sorted(e["id"] for e in events) == sorted(b["id"] for b in bodies)
