"""Moderation's OpenAPI document teaches the API: summaries, descriptions, errors, rule
bodies per kind (a oneOf with a discriminator on `kind`) and examples that are valid."""

from __future__ import annotations

import base64
import re
from functools import cache
from types import ModuleType
from typing import Any

import pytest
from fastapi import APIRouter
from fastapi.routing import APIRoute

from services.common.settings import Settings
from services.moderation import api
from services.moderation import app as moderation_app
from services.moderation.app import create_app
from services.moderation.models import PolicyUpdate
from services.moderation.params import PARAMS, RULE_KINDS, InvalidParams, validate_params
from services.moderation.qr import decode_qr
from services.moderation.rule_bodies import RULE_BODIES, RuleCreate, RuleUpdate
from services.moderation.trial import SampleEvent

RULES = "/v1/groups/{group_id}/rules"
RULE = "/v1/groups/{group_id}/rules/{rule_id}"


@cache
def document() -> dict[str, Any]:
    return create_app(Settings()).openapi()


def schema(name: str) -> dict[str, Any]:
    return document()["components"]["schemas"][name]  # type: ignore[no-any-return]


def deref(node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    return schema(ref.rsplit("/", 1)[1]) if ref else node


def operations() -> list[tuple[APIRoute, str, dict[str, Any]]]:
    """Moderation's own operations (the routers of the modules app.py includes): each route,
    method and OpenAPI entry."""
    modules = [m for m in vars(moderation_app).values() if isinstance(m, ModuleType)]
    routers = {
        id(value): value
        for module in modules
        for value in vars(module).values()
        if isinstance(value, APIRouter)
    }.values()
    return [
        (route, method, document()["paths"][route.path][method.lower()])
        for router in routers
        for route in router.routes
        if isinstance(route, APIRoute)
        for method in route.methods
    ]


def body_examples(path: str, method: str) -> dict[str, Any]:
    content = document()["paths"][path][method]["requestBody"]["content"]["application/json"]
    return {name: example["value"] for name, example in content["examples"].items()}


def test_every_operation_has_its_own_summary_and_a_description():
    ops = operations()
    documented = {(path, method) for path, entry in document()["paths"].items() for method in entry}
    assert {(route.path, method.lower()) for route, method, _ in ops} == {
        (path, method) for path, method in documented if path.startswith("/v1/")
    }
    for route, method, op in ops:
        default = route.name.replace("_", " ").title()  # FastAPI's, e.g. "Read Rule"
        assert op.get("summary") and op["summary"] != default, (method, route.path)
        assert len(op.get("description", "")) > 40, (method, route.path)
    for path, entry in document()["paths"].items():  # /healthz, /readyz, /metrics too
        assert all(op.get("summary") for op in entry.values()), path


def test_404_and_409_are_documented_where_they_happen():
    for route, method, op in operations():
        has_id = any(name != "group_id" for name in re.findall(r"{(\w+)}", route.path))
        assert ("404" in op["responses"]) == has_id, (method, route.path)
        if route in api.router.routes:  # the gates' routes have conflicts of their own
            conflicts = route.path.endswith(("/reverse", "/actions"))
            assert ("409" in op["responses"]) == conflicts, route.path


def discriminated(union: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Return the schema of each kind in a oneOf with a discriminator on `kind`."""
    assert union["discriminator"]["propertyName"] == "kind"
    mapping = union["discriminator"]["mapping"]
    assert set(mapping) == set(RULE_KINDS)
    assert sorted(m["$ref"] for m in union["oneOf"]) == sorted(mapping.values())
    return {kind: deref({"$ref": ref}) for kind, ref in mapping.items()}


def test_the_create_body_is_a_union_over_every_kind_with_typed_params_and_an_example():
    post = document()["paths"][RULES]["post"]["requestBody"]["content"]["application/json"]
    assert deref(post["schema"]) == schema("RuleCreate")
    bodies = discriminated(schema("RuleCreate"))
    for kind, body in bodies.items():
        assert body["properties"]["kind"]["const"] == kind
        params = deref(body["properties"]["params"])
        assert params["title"] == PARAMS[kind].__name__
        assert params["additionalProperties"] is False
        assert params["examples"] == [PARAMS[kind].EXAMPLE]
        assert [example["kind"] for example in body["examples"]] == [kind]
        assert ("params" in body.get("required", [])) == bool(params.get("required"))
    flood = deref(bodies["flood"]["properties"]["params"])
    assert set(flood["properties"]) == {"max_messages", "seconds"}
    assert flood["required"] == ["max_messages", "seconds"]
    assert deref(bodies["qr_code"]["properties"]["params"])["properties"] == {}


def test_the_update_body_is_the_same_union_or_a_change_that_keeps_the_kind():
    branches = schema("RuleUpdate")["anyOf"]
    by_kind = discriminated(next(b for b in branches if "discriminator" in b))
    for kind, body in by_kind.items():
        assert body["properties"]["kind"]["const"] == kind
        assert body["required"] == ["kind"]  # every other field may be absent
    same = deref(next(b for b in branches if "$ref" in b))
    assert same["properties"]["kind"]["type"] == "null"
    assert len(same["properties"]["params"]["anyOf"]) == len(RULE_KINDS) + 1


def valid_rule(body: dict[str, Any]) -> None:
    rule = RuleCreate.model_validate(body)  # what the route reads
    RULE_BODIES[rule.kind].model_validate(body)  # what the document shows
    validate_params(rule.kind, rule.params)  # what the route checks params with


def test_the_rule_examples_are_valid_rules():
    for kind, params in PARAMS.items():
        validate_params(kind, params.EXAMPLE)
    for body in RULE_BODIES.values():
        for example in body.model_json_schema()["examples"]:
            valid_rule(example)
    examples = body_examples(RULES, "post")
    assert sorted(e["kind"] for e in examples.values()) == sorted(RULE_KINDS)
    for example in examples.values():
        valid_rule(example)


def fits_some_kind(params: dict[str, Any]) -> bool:
    for kind in RULE_KINDS:
        try:
            validate_params(kind, params)
        except InvalidParams:
            continue
        return True
    return False


def test_the_update_policy_and_sample_examples_are_valid():
    for example in body_examples(RULE, "patch").values():
        change = RuleUpdate.model_validate(example)
        if change.kind is not None:
            validate_params(change.kind, change.params or {})
        elif change.params is not None:
            assert fits_some_kind(change.params)
    policies = [*body_examples("/v1/groups/{group_id}/policy", "put").values()]
    for policy in [*policies, *schema("PolicyUpdate")["examples"]]:
        PolicyUpdate.model_validate(policy)
    samples = body_examples(f"{RULES}/test", "post")
    for sample in [*samples.values(), *schema("SampleEvent")["examples"]]:
        SampleEvent.model_validate(sample)
    image = samples["qr_code"]["attachments"][0]["data"]
    assert decode_qr(base64.b64decode(image)) == ["https://example.cn"]


@pytest.mark.parametrize("kind", ["keywords", "flood"])
def test_a_body_that_does_not_fit_its_kind_is_still_one_model_at_run_time(kind):
    # the union is documentation: the route validates `params` against the kind itself,
    # so a 422 names body.params.<field>, not a branch of the union
    rule = RuleCreate.model_validate({"name": "x", "kind": kind, "params": {}, "action": "flag"})
    with pytest.raises(InvalidParams) as raised:
        validate_params(rule.kind, rule.params)
    assert all(e["loc"][:2] == ["body", "params"] for e in raised.value.errors)
