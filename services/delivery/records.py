"""Reading the consumed records into their contract models and into delivery rows.

`ActionRecord` is the action contract itself: its later fields (`source`, `text`,
`mentions`, `request_ref`, `message_at`) are optional there, so records published before
them deliver too (with `no_route` while they lack a source). A record that does not
decode raises `InvalidRecord`, which the consumer loop retries and then dead-letters.
"""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel, ValidationError

from services.common.contracts.actions import ModerationAction
from services.common.contracts.notifications import CampaignNotification
from services.common.db import new_id, utcnow
from services.common.settings import QunyunConfig, Settings
from services.delivery.models import PENDING
from services.delivery.plan import operation_of


class InvalidRecord(ValueError):
    """A consumed record that is not a valid action or notification."""


ActionRecord = ModerationAction
"""A moderation action as delivery reads it: the contract, every field delivery needs."""


def decode(topic: str, value: bytes | None, settings: Settings) -> BaseModel:
    """The record's contract model, or InvalidRecord."""
    model: type[BaseModel]
    if topic == settings.topic_moderation_actions:
        model = ActionRecord
    elif topic == settings.topic_campaign_notifications:
        model = CampaignNotification
    else:
        raise InvalidRecord(f"delivery does not consume {topic}")
    try:
        return model.model_validate(orjson.loads(value or b""))
    except (orjson.JSONDecodeError, ValidationError) as exc:
        raise InvalidRecord(f"not a {model.__name__}: {str(exc)[:300]}") from None


def new_row(
    *, payload: dict[str, Any], ref_topic: str, config: QunyunConfig, ref_id: str | None = None
) -> dict[str, Any]:
    """The `deliveries` row (as insert parameters) of one record's JSON payload."""
    source_id = payload.get("source")
    source = config.source(source_id) if source_id else None
    now = utcnow()
    return {
        "id": new_id("dl_"),
        "ref_id": ref_id or payload["id"],
        "ref_topic": ref_topic,
        "group_id": payload["group_id"],
        "source": source_id,
        "platform": source.platform if source else None,
        "operation": operation_of(payload),
        "payload": payload,
        "state": PENDING,
        "step": 0,
        "attempts": 0,
        "failures": 0,
        "detail": "",
        "next_attempt_at": now,
        "created_at": now,
        "updated_at": now,
    }
