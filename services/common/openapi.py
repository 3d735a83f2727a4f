"""Document in each operation's OpenAPI entry the errors that shared code answers for it."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

_ERROR_SCHEMA = {
    "title": "HTTPError",
    "type": "object",
    "properties": {"detail": {"title": "Detail"}},
    "required": ["detail"],
}


def _shared_errors(operation: dict[str, Any]) -> dict[str, str]:
    shared = {"503": "Kafka, Redis or the database is unavailable; see Retry-After"}
    if operation.get("security"):
        shared["401"] = "Missing or unknown bearer token"
        shared["403"] = "The token lacks the scope or the group"
        if "requestBody" in operation:
            shared["400"] = "The body cannot be parsed (e.g. not UTF-8)"
    return shared


def document_shared_errors(app: FastAPI) -> None:
    """Add to each /v1 operation's OpenAPI entry the errors that shared code answers for it."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        schema = build()
        schema.setdefault("components", {}).setdefault("schemas", {})["HTTPError"] = _ERROR_SCHEMA
        for path, operations in schema.get("paths", {}).items():
            if not path.startswith("/v1/"):
                continue
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                for code, description in _shared_errors(operation).items():
                    responses.setdefault(
                        code,
                        {
                            "description": description,
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/HTTPError"}
                                }
                            },
                        },
                    )
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
