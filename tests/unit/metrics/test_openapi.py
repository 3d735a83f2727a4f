"""Every metrics route teaches its use in the OpenAPI document: a summary of its own and a
description (what is counted, time zone, the 404 of unseen groups, pagination)."""

from __future__ import annotations

from services.common.settings import Settings
from services.metrics.app import create_app


def operations() -> list[tuple[str, str, dict]]:
    spec = create_app(Settings()).openapi()
    return [
        (method.upper(), path, op)
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if method in {"get", "post", "put", "patch", "delete"}
    ]


def default_summary(op: dict) -> str:
    """FastAPI's summary when none is given: the function name in title case."""
    name = op["operationId"].split("_v1_")[0].split("__")[0]
    return name.replace("_", " ").title()


def test_every_operation_has_its_own_summary_and_a_description():
    found = operations()
    assert any(path == "/v1/groups/{group_id}/inviters" for _, path, _ in found)
    for method, path, op in found:
        summary, description = op.get("summary", ""), op.get("description", "")
        assert summary and summary != default_summary(op), (method, path, summary)
        assert len(description) >= 40, (method, path, description)


def test_group_routes_describe_the_404_of_unseen_groups_and_their_time_zone():
    for _, path, op in operations():
        if not path.startswith("/v1/groups/"):
            continue
        assert "no events seen for group" in op["description"], path
        assert "404" in op["responses"], path
        if not path.endswith(("/rolling", "/members/{member_id}")):
            assert "QUNYUN_TIMEZONE" in op["description"], path


def test_paged_routes_say_how_to_page():
    by_path = {path: op for _, path, op in operations()}
    for path in ("/v1/groups/{group_id}/members/dormant", "/v1/overview"):
        assert "next_cursor" in by_path[path]["description"], path
    assert "limit" in by_path["/v1/groups/{group_id}/inviters"]["description"]
