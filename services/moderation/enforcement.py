"""Enforcement: what delivery did with each action, from `delivery.receipts.v1`.

The receipts consumer (its own group, `moderation-receipts`) keeps the latest receipt of
each of moderation's actions in `moderation_receipt` (`ref_id` = the action id). A
receipt replaces the stored one only when it is at least as new (`created_at`, then
`attempts`): a REST retry's receipt wins, a redelivered or older one changes nothing.
Receipts of other records (campaigns' notifications, other deployments' actions) are
ignored. A case's `enforcement` is the receipt of its last action (null until delivery
answered it; a reversal's lift is the last action once queued). The deletions that
accompany a case's action (of the judged message, of later messages of its burst) are
not its decision: they stand for the case only when it took nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from services.common.contracts.receipts import DeliveryReceipt
from services.common.kafka.consumer import Record
from services.common.settings import Settings
from services.moderation.decisions import is_companion_delete
from services.moderation.models import (
    Case,
    CaseAction,
    CasePublic,
    Enforcement,
    Receipt,
    built,
)
from services.moderation.telemetry import RECEIPTS


def _newest(receipts: Iterable[DeliveryReceipt]) -> dict[str, DeliveryReceipt]:
    newest: dict[str, DeliveryReceipt] = {}
    for r in receipts:
        held = newest.get(r.ref_id)
        if held is None or (r.created_at, r.attempts) >= (held.created_at, held.attempts):
            newest[r.ref_id] = r
    return newest


def store_receipts(*, session: Session, receipts: Sequence[DeliveryReceipt], topic: str) -> int:
    """Keep the latest receipt of each of our actions of `topic`; return how many changed."""
    newest = _newest(r for r in receipts if r.ref_topic == topic)
    if not newest:
        return 0
    ids = sorted(newest)
    # One query: each action of ours among the ids, with its stored receipt if any.
    found = session.exec(
        select(CaseAction.id, CaseAction.case_id, Receipt)
        .join(Receipt, col(Receipt.ref_id) == col(CaseAction.id), isouter=True)
        .where(col(CaseAction.id).in_(ids))
    ).all()
    cases = {ref_id: case_id for ref_id, case_id, _ in found}
    held = {ref_id: row for ref_id, _, row in found if row is not None}
    changed = 0
    for ref_id in ids:
        receipt, row = newest[ref_id], held.get(ref_id)
        if ref_id not in cases:
            continue
        if row is not None and (
            receipt.id == row.receipt_id
            or (receipt.created_at, receipt.attempts) < (row.receipt_at, row.attempts)
        ):
            continue
        fields: dict[str, Any] = {
            "receipt_id": receipt.id,
            "outcome": receipt.outcome,
            "detail": receipt.detail[:2000],
            "attempts": receipt.attempts,
            "receipt_at": receipt.created_at,
        }
        if row is None:
            row = built(Receipt, ref_id=ref_id, case_id=cases[ref_id], **fields)
        else:
            row.sqlmodel_update(fields)
        session.add(row)
        RECEIPTS.labels(receipt.outcome).inc()
        changed += 1
    session.flush()
    return changed


def handle_receipts(records: list[Record], *, db: Engine, settings: Settings) -> None:
    """Store one poll's receipts in one transaction (a record that is not a receipt raises,
    and the consumer loop dead-letters it)."""
    receipts = [DeliveryReceipt.model_validate_json(r.value or b"") for r in records]
    with Session(db) as session:
        store_receipts(session=session, receipts=receipts, topic=settings.topic_moderation_actions)
        session.commit()


def enforcements(session: Session, case_ids: Sequence[str]) -> dict[str, Enforcement | None]:
    """The enforcement of each case: the receipt of its last action (deletions accompanying
    it aside), or None."""
    if not case_ids:
        return {}
    query = (
        select(CaseAction.case_id, CaseAction.id, Receipt)
        .join(Receipt, col(Receipt.ref_id) == col(CaseAction.id), isouter=True)
        .where(col(CaseAction.case_id).in_(case_ids))
        .order_by(col(CaseAction.created_at), col(CaseAction.id))
    )
    found: dict[str, Enforcement | None] = dict.fromkeys(case_ids)
    decided: set[str] = set()
    for case_id, action_id, receipt in session.exec(query):
        if is_companion_delete(action_id, case_id):
            if case_id in decided:
                continue
        else:
            decided.add(case_id)
        found[case_id] = (
            Enforcement(
                outcome=receipt.outcome, detail=receipt.detail, updated_at=receipt.receipt_at
            )
            if receipt is not None
            else None
        )
    return found


def present(session: Session, cases: Sequence[Case]) -> list[CasePublic]:
    """The cases as the API shows them, each with its enforcement."""
    known = enforcements(session, [c.id for c in cases])
    return [CasePublic.model_validate(c, update={"enforcement": known[c.id]}) for c in cases]
