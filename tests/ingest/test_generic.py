"""The generic format: signed events and batches, all-or-nothing validation, size limits."""

from __future__ import annotations

import time
import uuid

import orjson
import pytest

from tests.ingest.helpers import events_on, generic_headers, nothing_on

URL = "/v1/webhooks/generic-test"


@pytest.fixture
def message():
    """Return a factory of valid message events with ids unique to this test.

    Dedup keys live in the session Redis, so every test needs its own ids.
    """
    run = uuid.uuid4().hex[:8]

    def make(n: int, group: str = "g:1", **extra) -> dict:
        return {
            "id": f"evt-{run}-{n}",
            "type": "message.created",
            "group_id": group,
            "member_id": f"m:{n % 7}",
            "occurred_at": "2026-11-21T08:00:00+08:00",
            "data": {"message_id": f"msg-{n}", "text": f"hello {n}", "mentions": ["m:1"]},
            **extra,
        }

    return make


def post(client, payload, **kwargs):
    body = orjson.dumps(payload)
    return client.post(URL, content=body, headers=generic_headers(body, **kwargs))


def test_single_event_lands_as_canonical_event(ingest, message):
    before = time.time()
    response = post(ingest.client, message(1, source="spoofed", received_at="2000-01-01T00:00:00Z"))
    assert response.status_code == 202, response.text
    assert response.json() == {"accepted": 1, "duplicates": 0, "ignored": 0}
    [event] = events_on(ingest.bootstrap, ingest.topic, expect=1)
    assert event["_key"] == "g:1"
    assert event["id"] == message(1)["id"]
    assert event["source"] == "generic-test"  # the URL's source wins over the body's
    assert event["occurred_at"] == "2026-11-21T00:00:00Z"
    received = event["received_at"].replace("Z", "+00:00")
    from datetime import datetime

    assert datetime.fromisoformat(received).timestamp() >= before - 1
    assert event["data"]["text"] == "hello 1"
    assert event["data"]["mentions"] == ["m:1"]


def test_batch_is_produced_once_and_redelivery_counts_duplicates(ingest, message):
    batch = {"events": [message(i, group=f"g:{i % 3}") for i in range(50)]}
    first = post(ingest.client, batch)
    assert first.status_code == 202, first.text
    assert first.json()["accepted"] == 50
    again = post(ingest.client, batch)
    assert again.json() == {"accepted": 0, "duplicates": 50, "ignored": 0}
    overlap = {"events": [message(i) for i in range(45, 55)] + [message(60), message(60)]}
    third = post(ingest.client, overlap)
    assert third.json() == {"accepted": 6, "duplicates": 6, "ignored": 0}
    events = events_on(ingest.bootstrap, ingest.topic, expect=56, settle=1.5)
    assert sorted(e["id"] for e in events) == sorted({message(i)["id"] for i in [*range(55), 60]})
    assert all(e["_key"] == e["group_id"] for e in events)


def test_batch_with_one_bad_event_is_422_naming_index_and_field(ingest, message):
    events = [message(i) for i in range(5)]
    del events[3]["member_id"]
    events[4]["data"]["kind"] = "hologram"
    response = post(ingest.client, {"events": events})
    assert response.status_code == 422
    locs = [d["loc"] for d in response.json()["detail"]]
    assert ["body", "events", 3, "member_id"] in locs
    assert ["body", "events", 4, "data", "kind"] in locs
    assert all(d["msg"] for d in response.json()["detail"])
    # All or nothing: the valid events of the batch were not produced nor marked seen.
    assert nothing_on(ingest.bootstrap, ingest.topic)
    ok = post(ingest.client, {"events": events[:3]})
    assert ok.json()["accepted"] == 3


def test_invalid_bodies_are_422_never_500(ingest, message):
    cases = [
        (b"not json", ["body"]),
        (b"[1, 2]", ["body"]),
        (orjson.dumps({"events": []}), ["body", "events"]),
        (orjson.dumps({"events": "x"}), ["body", "events"]),
        (orjson.dumps({"events": [message(i) for i in range(1001)]}), ["body", "events"]),
        (orjson.dumps({"events": [1]}), ["body", "events", 0]),
        (orjson.dumps({**message(1), "type": "member.exploded"}), ["body", "type"]),
        (orjson.dumps({**message(1), "occurred_at": "yesterday"}), ["body", "occurred_at"]),
        (orjson.dumps({**message(1), "data": {"text": "x" * 70000}}), ["body", "data"]),
    ]
    for body, loc in cases:
        response = ingest.client.post(URL, content=body, headers=generic_headers(body))
        assert response.status_code == 422, (body[:50], response.text)
        assert any(d["loc"][: len(loc)] == loc for d in response.json()["detail"]), response.text


def test_signature_timestamp_and_source_checks(ingest, message):
    body = orjson.dumps(message(1))
    good = generic_headers(body)
    cases = {
        "wrong signature": {**good, "X-Qunyun-Signature": "v1=" + "0" * 64},
        "signed with other secret": generic_headers(body, source="telegram-test"),
        "stale": generic_headers(body, at=time.time() - 305),
        "future": generic_headers(body, at=time.time() + 305),
        "no signature": {k: v for k, v in good.items() if k != "X-Qunyun-Signature"},
        "no timestamp": {k: v for k, v in good.items() if k != "X-Qunyun-Timestamp"},
        "bad timestamp": {**good, "X-Qunyun-Timestamp": "soon"},
    }
    for name, headers in cases.items():
        response = ingest.client.post(URL, content=body, headers=headers)
        assert response.status_code == 401, name
    tampered = body.replace(b"hello 1", b"hello 2")
    assert ingest.client.post(URL, content=tampered, headers=good).status_code == 401
    unknown = ingest.client.post("/v1/webhooks/nope", content=body, headers=good)
    assert unknown.status_code == 404
    assert nothing_on(ingest.bootstrap, ingest.topic)
    # Rotation: any of several comma-separated signatures may match.
    rotated = {**good, "X-Qunyun-Signature": "v1=" + "0" * 64 + "," + good["X-Qunyun-Signature"]}
    assert ingest.client.post(URL, content=body, headers=rotated).status_code == 202


def test_oversized_body_is_413_by_length_and_by_stream(ingest, message):
    big = orjson.dumps({**message(1), "data": {"message_id": "x", "text": "y" * (1024 * 1024)}})
    response = ingest.client.post(URL, content=big, headers=generic_headers(big))
    assert response.status_code == 413

    def chunks():  # no Content-Length: the stream is cut at 1 MiB + 1 byte
        for _ in range(40):
            yield b"x" * 65536

    response = ingest.client.post(URL, content=chunks(), headers=generic_headers(b""))
    assert response.status_code == 413
    exactly = b" " * (1024 * 1024 - 2) + b"{}"
    response = ingest.client.post(URL, content=exactly, headers=generic_headers(exactly))
    assert response.status_code == 422  # at the limit: read, then found invalid


def _webhook_requests(client, status: int) -> float:
    """qunyun_http_requests_total of ingest's webhook POSTs answered with `status`."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            labels = sample.labels
            if (
                sample.name == "qunyun_http_requests_total"
                and labels["service"] == "ingest"
                and labels["method"] == "POST"
                and labels["route"] == "/v1/webhooks/{source_id}"
                and labels["status"] == str(status)
            ):
                return sample.value
    return 0.0


def test_webhooks_skip_fastapi_routing_but_answer_and_count_like_the_route(ingest, message):
    """WebhookLane (services/ingest/lane.py) serves the POSTs: same answers, same metrics."""
    accepted, missing = _webhook_requests(ingest.client, 202), _webhook_requests(ingest.client, 404)
    assert post(ingest.client, message(1)).status_code == 202
    body = orjson.dumps(message(2))
    unknown = ingest.client.post("/v1/webhooks/" + "n" * 64, content=body, headers={})
    assert (unknown.status_code, unknown.json()) == (404, {"detail": "unknown source"})
    assert _webhook_requests(ingest.client, 202) == accepted + 1
    assert _webhook_requests(ingest.client, 404) == missing + 1
    # An id the route's path parameter refuses is left to FastAPI, which names it.
    too_long = ingest.client.post("/v1/webhooks/" + "n" * 65, content=body, headers={})
    assert too_long.status_code == 422
    assert too_long.json()["detail"][0]["loc"] == ["path", "source_id"]
    # Other methods and paths are FastAPI's too.
    assert ingest.client.put(URL, content=body).status_code == 405
    assert ingest.client.post(URL + "/more", content=body).status_code == 404
