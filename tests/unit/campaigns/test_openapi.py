"""The campaigns OpenAPI document teaches the API: described routes, documented errors,
params per kind as a discriminated union, and examples that the models accept."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError

from services.campaigns import api, kinds, params, schemas
from services.campaigns.app import create_app
from services.campaigns.kinds import KIND_MODELS, PARAMS_MODELS, CampaignCreate
from services.common.settings import Settings

KINDS = {
    *("checkin", "lottery", "challenge", "event"),
    *("welcome", "autoreply", "broadcast"),
    *("poll", "feedback", "invite"),
}
CREATE = "/v1/groups/{group_id}/campaigns"


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return create_app(Settings()).openapi()


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, operations in document["paths"].items()
        if path.startswith("/v1/")
        for method, operation in operations.items()
    ]


def _schema(document: dict[str, Any], ref_or_schema: dict[str, Any]) -> dict[str, Any]:
    ref = ref_or_schema.get("$ref")
    if ref is None:
        return ref_or_schema
    schema: dict[str, Any] = document["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    return schema


def _model(name: str) -> type[BaseModel]:
    for module in (kinds, params, schemas):
        found = getattr(module, name, None)
        if isinstance(found, type) and issubclass(found, BaseModel):
            return found
    raise AssertionError(f"no model named {name}")


def test_every_operation_has_a_summary_and_a_description(document: dict[str, Any]) -> None:
    routes = [r for r in api.router.routes if isinstance(r, APIRoute)]
    assert len(_operations(document)) == sum(len(r.methods) for r in routes) > 10
    for route in routes:
        for method in route.methods:
            operation = document["paths"][route.path][method.lower()]
            default = route.name.replace("_", " ").title()  # FastAPI's, e.g. "Get Campaign"
            summary, description = operation.get("summary", ""), operation.get("description", "")
            assert summary and summary != default, (method, route.path, summary)
            assert len(description) > len(summary), (method, route.path, description)


def test_errors_are_documented_where_they_can_happen(document: dict[str, Any]) -> None:
    for method, path, operation in _operations(document):
        responses = operation["responses"]
        if "{campaign_id}" in path:
            assert "404" in responses, (method, path)
        if method in ("patch", "post") and "{campaign_id}" in path:
            assert "409" in responses, (method, path)
        for code in ("404", "409"):
            if code in responses:
                content = responses[code]["content"]["application/json"]
                assert content["example"]["detail"], (method, path, code)


def test_the_create_body_is_a_union_over_the_kinds(document: dict[str, Any]) -> None:
    body = document["paths"][CREATE]["post"]["requestBody"]["content"]["application/json"]
    union = _schema(document, body["schema"])
    assert union["discriminator"]["propertyName"] == "kind"
    assert set(union["discriminator"]["mapping"]) == KINDS == set(KIND_MODELS)
    assert len(union["oneOf"]) == len(KINDS)
    for kind, ref in union["discriminator"]["mapping"].items():
        variant = _schema(document, {"$ref": ref})
        assert variant["properties"]["kind"]["const"] == kind
        assert variant["examples"][0]["kind"] == kind
        params_schema = _schema(document, variant["properties"]["params"])
        assert params_schema.get("type") == "object" and params_schema["examples"], kind
        assert params_schema["additionalProperties"] is False, kind
    assert set(body["examples"]) == KINDS


def test_every_example_validates_against_its_model(document: dict[str, Any]) -> None:
    checked = 0
    for name, schema in document["components"]["schemas"].items():
        for example in schema.get("examples", []):
            _model(name).model_validate(example)
            checked += 1
    assert checked >= 2 * len(KINDS)
    body = document["paths"][CREATE]["post"]["requestBody"]["content"]["application/json"]
    for kind, example in body["examples"].items():
        created = CampaignCreate.model_validate(example["value"]).root
        assert isinstance(created, KIND_MODELS[kind])
        assert isinstance(created.params, PARAMS_MODELS[kind])


def _locs(body: dict[str, Any]) -> list[tuple[str | int, ...]]:
    with pytest.raises(ValidationError) as caught:
        CampaignCreate.model_validate(body)
    return [tuple(e["loc"]) for e in caught.value.errors()]


def test_errors_name_the_field_as_a_single_model_would() -> None:
    window = {"title": "t", "starts_at": "2026-12-01T09:00:00Z", "ends_at": "2026-12-02T09:00:00Z"}
    assert _locs({**window, "kind": "quiz"}) == [("kind",)]
    assert _locs(window) == [("kind",)]
    assert _locs({**window, "kind": "checkin", "params": {"points": -1}}) == [("params", "points")]
    assert _locs({**window, "kind": "event", "params": {"colour": "red"}}) == [("params", "colour")]
    streaks = {"streak_rewards": [{"days": 3}, {"days": 3}]}
    assert _locs({**window, "kind": "checkin", "params": streaks}) == [("params", "streak_rewards")]
    assert _locs({**window, "kind": "challenge", "params": {}, "reminders": ["soon"]}) == [
        ("reminders", 0),
        ("params", "goal_messages"),
    ]
    with pytest.raises(ValidationError) as caught:
        CampaignCreate.model_validate({**window, "kind": "quiz"})
    assert caught.value.errors()[0]["msg"] == (
        "Input should be 'checkin', 'lottery', 'challenge', 'event', 'welcome', 'autoreply', "
        "'broadcast', 'poll', 'feedback' or 'invite'"
    )
