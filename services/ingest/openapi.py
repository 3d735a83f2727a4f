"""What ingest's OpenAPI document teaches: the generic event, the batch, examples, answers.

The webhook route reads its body itself (no FastAPI body parameter, which would parse
every request twice), so the body's schema is published here: the event union of
`community.events.v1` as the generic platform posts it, the batch, and the platform
payloads other sources post. Nothing here runs per request: `/openapi.json` builds it.
"""

from __future__ import annotations

import copy
from typing import Any

from fastapi import FastAPI

from services.common.contracts.events import EVENT_ADAPTER
from services.platforms.generic.inbound import MAX_BATCH

REF = "#/components/schemas/{model}"
Schema = dict[str, Any]

SUMMARY = "Receive a platform webhook and put its events on community.events.v1"
DESCRIPTION = f"""\
Point a platform at `/v1/webhooks/{{source_id}}`, where `source_id` is a `[[sources]]` entry
of QUNYUN_CONFIG (added or changed sources apply to the next request, no restart).

A **generic** source posts one canonical event or a batch `{{"events": [...]}}` of 1 to
{MAX_BATCH}, signed with `X-Qunyun-Timestamp` (unix seconds) and `X-Qunyun-Signature:
v1=<hex HMAC-SHA256(secret, timestamp + "." + raw body)>`. A batch is all-or-nothing.
Group and member ids are the sender's own; `source` and `received_at` are set by ingest.

**Slack**, **Telegram** and **Feishu** sources receive the platform's own payload (Slack
Events API callbacks, Telegram `Update`s, Feishu event v2) verified the platform's way
(`X-Slack-Signature`, `X-Telegram-Bot-Api-Secret-Token`, the Feishu verification token and
`X-Lark-Signature`) and mapped to the same events; their ids are namespaced
`slack:TEAM:CHANNEL`, `telegram:CHAT_ID`, `feishu:CHAT_ID` (groups) and `slack:TEAM:USER`,
`telegram:USER_ID`, `feishu:OPEN_ID` (members).

**OneBot v11** sources (QQ groups through NapCat or Lagrange.OneBot) receive the bot's HTTP
POST events, verified by `X-Signature: sha1=<hex HMAC-SHA1(secret, raw body)>` (hex in
either case) and `X-Self-ID`; group ids `qq:GROUP_ID`, members `qq:USER_ID`. OneBot sends
no timestamp: a replayed POST is caught as a duplicate by the event's stable id.

**WeCom** sources (企业微信 customer groups) receive WeCom's encrypted XML callbacks, verified
by the query's `msg_signature` and decrypted with the source's EncodingAESKey; group ids
`wecom:CHAT_ID`, members `wecom:USERID` or `wecom:EXTERNAL_USERID`.

The answer comes after Kafka acknowledged every new event: 202 counts them; a redelivery
of the same `(source, id)` within 24 h is counted in `duplicates` and not produced again.
OneBot sources are answered 204 without a body instead (NapCat and Lagrange read a JSON
answer as a "quick operation"), WeCom sources `success` as text/plain; their errors are
the same as everyone's.
"""

_ENVELOPE_NOTES = {
    "id": "Unique per source: a redelivery with the same id is a duplicate, not a new event",
    "group_id": "The sender's group id (e.g. `forum:42`); no `/` or control characters",
    "member_id": "The sender's member id (e.g. `forum:user:7`); no `/` or control characters",
    "occurred_at": "When it happened: ISO 8601 with an offset (kept in UTC)",
    "source": "Ignored: ingest sets the URL's source id",
    "received_at": "Ignored: ingest sets the arrival time",
}
_SET_BY_INGEST = ("source", "received_at")


def _event(event_id: str, kind: str, member: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": event_id,
        "type": kind,
        "group_id": "forum:42",
        "member_id": member,
        "occurred_at": "2026-11-21T20:00:00+08:00",
        "data": data,
    }


EVENT_EXAMPLES: dict[str, dict[str, Any]] = {
    "message.created": _event(
        "evt-1001",
        "message.created",
        "forum:user:7",
        {
            "message_id": "msg-1001",
            "text": "今晚八点直播，@小王 记得来",
            "kind": "text",
            "mentions": ["forum:user:9"],
            "display_name": "老张",
        },
    ),
    "member.joined": _event(
        "evt-1002",
        "member.joined",
        "forum:user:9",
        {
            "display_name": "小王",
            "invited_by": "forum:user:7",
            "method": "invite",
            "channel": "spring-poster",
        },
    ),
    "member.join_requested": _event(
        "evt-1005",
        "member.join_requested",
        "forum:user:21",
        {"display_name": "小李", "answer": "朋友推荐", "request_ref": "req-21"},
    ),
    "member.left": _event(
        "evt-1003", "member.left", "forum:user:13", {"reason": "removed", "by": "forum:user:1"}
    ),
    "member.updated": _event(
        "evt-1004", "member.updated", "forum:user:9", {"display_name": "王小明"}
    ),
}
BATCH_EXAMPLE = {"events": [EVENT_EXAMPLES["message.created"], EVENT_EXAMPLES["member.joined"]]}

BODY_EXAMPLES: dict[str, Any] = {
    **{
        kind: {"summary": f"A generic {kind} event", "value": event}
        for kind, event in EVENT_EXAMPLES.items()
    },
    "batch": {"summary": f"A generic batch (1 to {MAX_BATCH} events)", "value": BATCH_EXAMPLE},
}

REQUEST_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "A generic source's event or batch; other platforms' sources take the "
        "platform's own payload (Slack Events API, Telegram Update, Feishu event v2, "
        "OneBot v11 event).",
        "content": {
            "application/json": {
                "schema": {"$ref": REF.format(model="WebhookBody")},
                "examples": BODY_EXAMPLES,
            }
        },
    },
    "parameters": [
        {
            "name": name,
            "in": "header",
            "required": False,
            "description": f"Generic sources only: {what}",
            "schema": {"type": "string"},
        }
        for name, what in (
            ("X-Qunyun-Timestamp", "unix seconds, within 300 s of the server's clock"),
            (
                "X-Qunyun-Signature",
                "`v1=<hex HMAC-SHA256(secret, timestamp.body)>`, "
                "several comma-separated for key rotation",
            ),
        )
    ],
}


def _answer(description: str, examples: dict[str, Any], *, ref: str = "HTTPError") -> Schema:
    return {
        "description": description,
        "content": {
            "application/json": {
                "schema": {"$ref": REF.format(model=ref)},
                "examples": {
                    name: {"summary": summary, "value": value}
                    for name, (summary, value) in examples.items()
                },
            }
        },
    }


def _detail(summary: str, detail: Any) -> tuple[str, dict[str, Any]]:
    return summary, {"detail": detail}


RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {
        "description": "Every new event was acknowledged by Kafka",
        "content": {
            "application/json": {
                "examples": {
                    "new": {
                        "summary": "A batch of two, both new",
                        "value": {"accepted": 2, "duplicates": 0, "ignored": 0},
                    },
                    "redelivered": {
                        "summary": "The same delivery again",
                        "value": {"accepted": 0, "duplicates": 2, "ignored": 0},
                    },
                    "ignored": {
                        "summary": "A platform event that is no message or membership change",
                        "value": {"accepted": 0, "duplicates": 0, "ignored": 1},
                    },
                }
            }
        },
    },
    204: {"description": "A OneBot source's events, every new one acknowledged by Kafka"},
    200: {
        "description": "A Slack or Feishu URL challenge, answered; or a WeCom source's events, "
        "every new one acknowledged by Kafka (`success`)",
        "content": {
            "application/json": {
                "schema": {"type": "object", "properties": {"challenge": {"type": "string"}}},
                "example": {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"},
            },
            "text/plain": {"schema": {"type": "string"}, "example": "success"},
        },
    },
    401: _answer(
        "Bad, missing or stale signature or token (never echoed)",
        {
            "signature": _detail("Signed with another secret", "signature does not match"),
            "missing": _detail("Not signed", "missing X-Qunyun-Signature header"),
            "stale": _detail("Replayed later", "timestamp is outside the 300 s window"),
        },
    ),
    404: _answer(
        "No source with this id in QUNYUN_CONFIG",
        {"unknown": _detail("A source not (yet) configured", "unknown source")},
    ),
    413: _answer(
        "Body over 1 MiB, by Content-Length or as the stream passes it",
        {"large": _detail("2 MiB posted", "body is larger than 1048576 bytes")},
    ),
    422: _answer(
        "Invalid JSON or payload; each bad field named, batch index included",
        {
            "missing": _detail(
                "The fourth event of a batch has no member_id",
                [
                    {
                        "loc": ["body", "events", 3, "member_id"],
                        "msg": "Field required",
                        "type": "missing",
                    }
                ],
            ),
        },
    ),
    503: {
        **_answer(
            "Kafka or Redis cannot take the events in time; retry after Retry-After seconds",
            {"kafka": _detail("The broker is down", "kafka is unavailable, retry later")},
        ),
        "headers": {"Retry-After": {"description": "Seconds", "schema": {"type": "integer"}}},
    },
}


def _as_posted(schema: Schema) -> Schema:
    """An event schema as a generic source posts it: `source` not required, notes added."""
    posted = copy.deepcopy(schema)
    posted["required"] = [name for name in posted["required"] if name != "source"]
    for name, note in _ENVELOPE_NOTES.items():
        posted["properties"][name]["description"] = note
        if name in _SET_BY_INGEST:
            posted["properties"][name]["readOnly"] = True
    return posted


def body_schemas() -> dict[str, Schema]:
    """The components the request body refers to: events, batch, platform payload, body."""
    union = EVENT_ADAPTER.json_schema(ref_template=REF, mode="validation")
    schemas: dict[str, Schema] = union.pop("$defs")
    for ref in union["discriminator"]["mapping"].values():
        model = ref.rsplit("/", 1)[1]
        schemas[model] = _as_posted(schemas[model])
    event_ref = {"$ref": REF.format(model="WebhookEvent")}
    schemas["WebhookEvent"] = {
        "title": "WebhookEvent",
        "description": "One canonical event, by `type`",
        **union,
    }
    schemas["WebhookBatch"] = {
        "title": "WebhookBatch",
        "description": "Events produced all-or-nothing: one invalid event refuses the batch",
        "type": "object",
        "properties": {
            "events": {"type": "array", "items": event_ref, "minItems": 1, "maxItems": MAX_BATCH}
        },
        "required": ["events"],
    }
    schemas["PlatformPayload"] = {
        "title": "PlatformPayload",
        "description": "A Slack Events API callback, a Telegram Update, a Feishu event v2 or a "
        "OneBot v11 event, "
        "posted by the platform to a source of that platform and verified its way",
        "type": "object",
    }
    schemas["WebhookBody"] = {
        "title": "WebhookBody",
        "anyOf": [
            event_ref,
            {"$ref": REF.format(model="WebhookBatch")},
            {"$ref": REF.format(model="PlatformPayload")},
        ],
    }
    return schemas


def document_webhook_body(app: FastAPI) -> None:
    """Add the webhook body's schemas to the app's OpenAPI components."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        schema.setdefault("components", {}).setdefault("schemas", {}).update(body_schemas())
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
