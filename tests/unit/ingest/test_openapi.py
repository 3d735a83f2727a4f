"""Ingest's OpenAPI document teaches the API: the event union and the batch as the webhook
body, examples that ingest accepts, every answer documented, summaries and descriptions."""

from __future__ import annotations

import operator
import time
from functools import cache, reduce
from typing import Any

import orjson
import pytest
from fastapi.routing import APIRoute

from services.common.contracts.events import EventType, parse_event
from services.common.settings import Settings
from services.ingest import api
from services.ingest.app import create_app
from services.ingest.webhooks import Delivery, read_delivery
from services.platforms.generic.inbound import MAX_BATCH, generic_signature
from tests.unit.ingest.platforms import GENERIC

WEBHOOK = "/v1/webhooks/{source_id}"
EVENT_TYPES = set(EventType.__args__)  # type: ignore[attr-defined]


@cache
def document() -> dict[str, Any]:
    return create_app(Settings()).openapi()


def deref(node: dict[str, Any]) -> dict[str, Any]:
    """Follow local `$ref`s (JSON pointers into the document) to the node they name."""
    while "$ref" in node:
        pointer = node["$ref"].removeprefix("#/").split("/")
        node = reduce(operator.getitem, pointer, document())
    return node


def webhook() -> dict[str, Any]:
    return document()["paths"][WEBHOOK]["post"]  # type: ignore[no-any-return]


def body_content() -> dict[str, Any]:
    return webhook()["requestBody"]["content"]["application/json"]  # type: ignore[no-any-return]


def refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if "$ref" in node else []
        return own + [r for v in node.values() for r in refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in refs(v)]
    return []


def test_body_is_the_event_union_or_a_batch():
    alternatives = [deref(alt) for alt in deref(body_content()["schema"])["anyOf"]]
    union, batch = alternatives[0], alternatives[1]
    assert union["discriminator"]["propertyName"] == "type"
    assert set(union["discriminator"]["mapping"]) == EVENT_TYPES
    for kind, ref in union["discriminator"]["mapping"].items():
        event = deref({"$ref": ref})
        assert event["properties"]["type"]["const"] == kind
        assert "source" not in event["required"], "ingest sets the source from the URL"
        assert {"id", "group_id", "member_id", "occurred_at", "type"} <= set(event["required"])
        assert event["properties"]["source"]["readOnly"] is True
    events = batch["properties"]["events"]
    assert batch["required"] == ["events"]
    assert (events["minItems"], events["maxItems"]) == (1, MAX_BATCH)
    assert deref(events["items"]) is union
    other = deref(alternatives[2])
    assert all(name in other["description"] for name in ("Slack", "Telegram", "Feishu"))


def test_every_reference_resolves():
    for ref in refs(document()):
        assert ref.startswith("#/components/schemas/"), ref
        assert deref({"$ref": ref}), ref


def body_examples() -> dict[str, Any]:
    return {name: example["value"] for name, example in body_content()["examples"].items()}


def test_one_example_per_event_type_and_a_batch():
    examples = body_examples()
    assert set(examples) == EVENT_TYPES | {"batch"}
    for kind in EVENT_TYPES:
        assert examples[kind]["type"] == kind
    assert 1 <= len(examples["batch"]["events"]) <= MAX_BATCH


@pytest.mark.parametrize("name", sorted(EVENT_TYPES | {"batch"}))
def test_each_example_validates_against_the_event_models(name):
    example = body_examples()[name]
    posted = example["events"] if name == "batch" else [example]
    for event in posted:
        assert parse_event({**event, "source": GENERIC.id}).type == event["type"]
    # and ingest itself takes it, signed as a generic source signs it
    body = orjson.dumps(example)
    ts = str(int(time.time()))
    headers = {
        "x-qunyun-timestamp": ts,
        "x-qunyun-signature": generic_signature(GENERIC.secret, ts, body),
    }
    read = read_delivery(source=GENERIC, headers=headers, body=body)
    assert isinstance(read, Delivery)
    assert [e.type for e in read.events] == [e["type"] for e in posted]


def test_the_body_names_the_other_platforms_payloads():
    text = webhook()["description"] + webhook()["requestBody"]["description"]
    for phrase in ("Slack Events API", "Telegram", "Feishu event v2", "X-Qunyun-Signature"):
        assert phrase in text, phrase


def test_every_answer_is_documented_with_an_example():
    responses = webhook()["responses"]
    for code in ("202", "401", "404", "413", "422", "503"):
        content = responses[code]["content"]["application/json"]
        examples = content.get("examples") or {"only": {"value": content["example"]}}
        assert examples, code
        for example in examples.values():
            value = example["value"]
            assert set(value) == (
                {"accepted", "duplicates", "ignored"} if code == "202" else {"detail"}
            ), code
    assert "Retry-After" in responses["503"]["headers"]
    assert "content" not in responses["204"] and "OneBot" in responses["204"]["description"]
    assert responses["200"]["content"]["text/plain"]["example"] == "success"  # WeCom
    assert deref(responses["202"]["content"]["application/json"]["schema"])["title"] == (
        "WebhookReceipt"
    )


def test_every_operation_has_its_own_summary_and_a_description():
    own = [route for route in api.router.routes if isinstance(route, APIRoute)]
    assert {route.path for route in own} == {
        path for path in document()["paths"] if path.startswith("/v1/")
    }
    defaults = {route.name.replace("_", " ").title() for route in own}  # "Receive Webhook"
    for path, entry in document()["paths"].items():
        for method, op in entry.items():
            assert op.get("summary") and op["summary"] not in defaults, (method, path)
            assert len(op.get("description", "")) > 40, (method, path)
