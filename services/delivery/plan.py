"""What a record asks of the platform: its steps, in order, as `OperationRequest`s (pure).

A moderation action maps to the same operation (delete, mute, unmute, kick, ban, unban,
approve_join, decline_join); `flag` and `warn` have nothing to call (`recorded`). An
action's `text` is posted after it as a second request with its own idempotency key
(`<record id>:text`), so a retried post is told apart from its action. The post replies
to the judged message only on Telegram, which can reply to a message that a preceding
delete removed (`allow_sending_without_reply`); elsewhere the notice just mentions the
member (DESIGN "Moderation"). A notification (or a REST message) is one post with its
own `reply_to` and `mentions`. A mention carries the display name `mention_names` gives
its member, so the platform's mention replaces the `@<display name>` already in the text
(a member without one is looked for as `@<member id>`). Records carry these fields
optionally until every producer fills them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.platforms import Mention, Operation, OperationRequest

PLATFORM_ACTIONS: frozenset[str] = frozenset(
    {"delete", "mute", "unmute", "kick", "ban", "unban", "approve_join", "decline_join"}
)
REPLIES_TO_DELETED = frozenset({"telegram"})
TEXT_KEY_SUFFIX = ":text"


@dataclass(frozen=True)
class Plan:
    """The record's label (`operation` on its receipt) and its platform steps."""

    operation: str
    steps: tuple[OperationRequest, ...]


def operation_of(payload: dict[str, Any]) -> str:
    """The receipt's `operation`: the action's name, or `post` for notifications and messages."""
    return str(payload["action"]) if "action" in payload else "post"


def _mentions(payload: dict[str, Any]) -> tuple[Mention, ...]:
    """The record's mentions, each with the display name its `@name` in `text` uses."""
    names = payload.get("mention_names") or {}
    return tuple(
        Mention(str(m), display_name=names.get(str(m)) or None)
        for m in payload.get("mentions") or ()
    )


def _when(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


def _action_steps(payload: dict[str, Any], platform: str | None) -> list[OperationRequest]:
    action, group, record_id = payload["action"], payload["group_id"], payload["id"]
    steps: list[OperationRequest] = []
    if action in PLATFORM_ACTIONS:
        operation: Operation = action
        steps.append(
            OperationRequest(
                operation,
                group,
                record_id,
                member_id=payload.get("member_id"),
                message_id=payload.get("message_id"),
                duration_seconds=payload.get("duration_seconds"),
                request_ref=payload.get("request_ref"),
                message_at=_when(payload.get("message_at")),
            )
        )
    if payload.get("text"):
        reply = payload.get("message_id") if platform in REPLIES_TO_DELETED else None
        key = record_id + TEXT_KEY_SUFFIX if steps else record_id
        steps.append(
            OperationRequest(
                "post",
                group,
                key,
                text=payload["text"],
                reply_to=reply,
                mentions=_mentions(payload),
            )
        )
    return steps


def plan(payload: dict[str, Any], platform: str | None) -> Plan:
    """The steps carrying out a stored record on `platform` (empty: nothing to call)."""
    operation = operation_of(payload)
    if "action" in payload:
        return Plan(operation, tuple(_action_steps(payload, platform)))
    if not payload.get("text"):
        return Plan(operation, ())
    post = OperationRequest(
        "post",
        payload["group_id"],
        payload["id"],
        text=payload["text"],
        reply_to=payload.get("reply_to"),
        mentions=_mentions(payload),
    )
    return Plan(operation, (post,))
