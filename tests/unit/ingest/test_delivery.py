"""Reading a delivery: events validated all or nothing, stamped with the source; payload paths."""

from __future__ import annotations

import time

import orjson
import pytest

from services.ingest.webhooks import Delivery, Receipt, read_delivery
from services.platforms.generic.inbound import generic_signature
from services.platforms.inbound import InvalidPayload, from_unix, optional, parse_object, require
from tests.unit.ingest.platforms import GENERIC


def message(n: int, **extra) -> dict:
    return {
        "id": f"e{n}",
        "type": "message.created",
        "group_id": "g:1",
        "member_id": f"m:{n}",
        "occurred_at": "2026-11-21T08:00:00+08:00",
        "data": {"message_id": f"msg-{n}", "text": "hi"},
        **extra,
    }


def read(payload: object) -> Receipt | Delivery:
    body = orjson.dumps(payload)
    ts = str(int(time.time()))
    headers = {
        "x-qunyun-timestamp": ts,
        "x-qunyun-signature": generic_signature(GENERIC.secret, ts, body),
    }
    return read_delivery(source=GENERIC, headers=headers, body=body)


def test_events_are_stamped_with_the_urls_source_and_the_receipt_time():
    before = time.time()
    delivery = read(message(1, source="spoofed", received_at="2000-01-01T00:00:00Z"))
    assert isinstance(delivery, Delivery)
    [event] = delivery.events
    assert event.source == "gen"
    assert event.received_at.timestamp() >= before - 1
    assert event.occurred_at.isoformat() == "2026-11-21T00:00:00+00:00"


def test_one_bad_event_refuses_the_batch_naming_index_and_field():
    events = [message(i) for i in range(3)]
    del events[1]["member_id"]
    events[2]["data"]["kind"] = "hologram"
    with pytest.raises(InvalidPayload) as caught:
        read({"events": events})
    locs = [d["loc"] for d in caught.value.details]
    assert ["body", "events", 1, "member_id"] in locs
    assert any(loc[:3] == ["body", "events", 2] and "kind" in loc for loc in locs)


def test_payload_paths_name_the_missing_or_mistyped_field():
    obj = {"a": {"b": [1, {"c": "x"}]}}
    assert require(obj, "a", "b", 1, "c") == "x"
    assert optional(obj, "a", "b", 5) is None and optional(obj, "a", "z", "c") is None
    for path, loc, kind in [
        (("a", "z"), ["body", "a", "z"], "missing"),
        (("a", "b", 0, "c"), ["body", "a", "b", 0], "type_error"),
        (("a", "b", 0), ["body", "a", "b", 0], "type_error"),
    ]:
        with pytest.raises(InvalidPayload) as caught:
            require(obj, *path)
        assert (caught.value.details[0]["loc"], caught.value.details[0]["type"]) == (loc, kind)
    with pytest.raises(InvalidPayload):
        require({"flag": True}, "flag", kind=int)  # a bool is no int here


def test_bodies_must_be_json_objects_and_times_valid():
    assert parse_object(b'{"a": 1}') == {"a": 1}
    for body, kind in [(b"{", "json_invalid"), (b"[]", "dict_type")]:
        with pytest.raises(InvalidPayload) as caught:
            parse_object(body)
        assert caught.value.details[0]["type"] == kind
    assert from_unix(0) == "1970-01-01T00:00:00+00:00"
    with pytest.raises(InvalidPayload):
        from_unix(1e20, ("ts",))
