"""Writing what a call did: the next step, a retry, or the outcome with its receipt.

Everything a result changes is written in one transaction: the row's state and, when the
record is finished, its receipt in the outbox, so an outcome is never known without its
receipt being on its way (and never published without being stored). A write only
applies while the claim is still this process's (its token): a row whose lease expired
and was claimed elsewhere is left to that claim.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from services.common.contracts.receipts import DeliveryReceipt
from services.common.db import new_id, utcnow
from services.common.outbox import Outgoing, enqueue
from services.delivery.models import DONE, PENDING, Delivery, DeliveryOutbox
from services.delivery.policy import Decision

MAX_DETAIL = 2000
SUCCESS = frozenset({"delivered", "recorded"})


def receipt_of(row: Delivery) -> DeliveryReceipt:
    """The receipt of a finished row."""
    return DeliveryReceipt(
        id=new_id("rc_"),
        ref_id=row.ref_id,
        ref_topic=row.ref_topic,
        group_id=row.group_id,
        source=row.source,
        platform=row.platform,
        operation=row.operation,
        outcome=row.outcome,  # type: ignore[arg-type]
        detail=row.detail,
        attempts=row.attempts,
        platform_message_id=row.platform_message_id,
        created_at=utcnow(),
    )


def _joined(row: Delivery, label: str, detail: str) -> str:
    part = f"{label}: {detail}" if label and detail else detail or label
    text = f"{row.detail}; {part}" if row.detail and row.step > 0 else part
    return text[:MAX_DETAIL]


def finish_row(session: Session, row: Delivery, *, outcome: str, detail: str, topic: str) -> None:
    """Set the row's outcome and queue its receipt (the caller commits)."""
    row.state, row.outcome, row.detail = DONE, outcome, detail[:MAX_DETAIL]
    row.claim_token, row.lease_until, row.updated_at = None, None, utcnow()
    session.add(row)
    enqueue(session, DeliveryOutbox, [Outgoing(topic, row.group_id, receipt_of(row))])


def _requeue(row: Delivery, decision: Decision, label: str) -> None:
    """Due again: the next step after a success, the same step after a retryable failure."""
    if decision.final:
        row.detail = _joined(row, label, decision.detail or "done")
        row.step, row.failures = row.step + 1, 0
    elif decision.counts_failure:
        row.failures += 1
    now = utcnow()
    row.state, row.claim_token, row.lease_until = PENDING, None, None
    row.next_attempt_at, row.updated_at = now + timedelta(seconds=decision.delay), now


def settle(
    engine: Engine,
    *,
    seq: int,
    token: str,
    decision: Decision,
    label: str,
    last_step: bool,
    message_id: str | None,
    topic: str,
) -> Delivery | None:
    """Apply a call's decision to the claimed row; return it when now finished."""
    with Session(engine, expire_on_commit=False) as session:
        row = session.exec(
            select(Delivery).where(col(Delivery.seq) == seq, col(Delivery.claim_token) == token)
        ).first()
        if row is None:
            return None
        if message_id:
            row.platform_message_id = message_id
        finished = decision.final and (last_step or decision.outcome not in SUCCESS)
        if finished:
            detail = _joined(row, label, decision.detail)
            finish_row(session, row, outcome=decision.outcome, detail=detail, topic=topic)
        else:
            _requeue(row, decision, label)
            session.add(row)
        session.commit()
        return row if finished else None


def finish_claimed(
    engine: Engine, *, seq: int, token: str, outcome: str, detail: str, topic: str
) -> Delivery | None:
    """Finish a claimed row without a call (`recorded`, `no_route`, a malformed record)."""
    with Session(engine, expire_on_commit=False) as session:
        row = session.exec(
            select(Delivery).where(col(Delivery.seq) == seq, col(Delivery.claim_token) == token)
        ).first()
        if row is None:
            return None
        finish_row(session, row, outcome=outcome, detail=detail, topic=topic)
        session.commit()
        return row
