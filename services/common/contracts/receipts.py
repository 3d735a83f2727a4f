"""The receipt contract of topic delivery.receipts.v1: what delivery did with a record.

One receipt per carried-out record, keyed by group id. `ref_id` is the record's id and
`ref_topic` its topic; a retry (through REST) publishes a new receipt (a new `id`) for
the same `ref_id` with `attempts` counting on, so consumers keep the latest per `ref_id`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from services.common.contracts.actions import UtcIsoTimestamp

RECEIPTS_TOPIC = "delivery.receipts.v1"

ReceiptOutcome = Literal[
    "delivered", "recorded", "unsupported", "forbidden", "expired", "failed", "no_route"
]


class DeliveryReceipt(BaseModel):
    """The outcome of carrying out one record on its platform."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str
    ref_id: str
    ref_topic: str
    group_id: str
    source: str | None
    platform: str | None
    operation: str
    outcome: ReceiptOutcome
    detail: str
    attempts: int
    platform_message_id: str | None = None
    created_at: UtcIsoTimestamp
