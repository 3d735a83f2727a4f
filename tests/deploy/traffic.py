"""A little real traffic for the metrics tests: generic webhooks, signed as DESIGN.md says."""

from __future__ import annotations

import hashlib
import hmac
import time
from datetime import UTC, datetime
from typing import Any

import orjson

from tests.support import SOURCE_SECRETS

SOURCE = "generic-test"


def generic_events(group_id: str, member_ids: list[str], run: str) -> list[dict[str, Any]]:
    """A join and a message per member, in the generic event format."""
    now = datetime.now(UTC).isoformat()
    events: list[dict[str, Any]] = []
    for i, member in enumerate(member_ids):
        events.append(
            {
                "id": f"{run}-join-{i}",
                "type": "member.joined",
                "group_id": group_id,
                "member_id": member,
                "occurred_at": now,
                "data": {"display_name": f"m{i}-city-skin", "method": "link"},
            }
        )
        events.append(
            {
                "id": f"{run}-msg-{i}",
                "type": "message.created",
                "group_id": group_id,
                "member_id": member,
                "occurred_at": now,
                "data": {"message_id": f"{run}-message-{i}", "text": "大家好 打卡", "kind": "text"},
            }
        )
    return events


def signed_webhook(events: list[dict[str, Any]], source: str = SOURCE) -> tuple[bytes, dict]:
    """Return the body and headers of a generic webhook carrying these events."""
    secret = SOURCE_SECRETS[source][1]
    body = orjson.dumps({"events": events})
    timestamp = str(int(time.time()))
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return body, {
        "Content-Type": "application/json",
        "X-Qunyun-Timestamp": timestamp,
        "X-Qunyun-Signature": f"v1={digest.hexdigest()}",
    }
