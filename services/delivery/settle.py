"""Writing what a call did: the next step, a retry, or the outcome with its receipt.

Everything a result changes is written in one transaction: the row's state and, when the
record is finished, its receipt in the outbox, so an outcome is never known without its
receipt being on its way (and never published without being stored). The dispatcher
settles many results at once (`settle_all`: one transaction for every result collected
while the previous write ran); each write still only applies while the claim is still
this process's (its token): a row whose lease expired and was claimed elsewhere is left
to that claim, without affecting the others in the batch.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine

from services.common.contracts.receipts import DeliveryReceipt
from services.common.db import new_id, utcnow
from services.common.outbox import Outgoing, enqueue
from services.delivery.models import DONE, PENDING, UNFINISHED, Delivery, DeliveryOutbox
from services.delivery.policy import Decision
from services.delivery.store import LEASE, Claim, claim_heads

MAX_DETAIL = 2000
SUCCESS = frozenset({"delivered", "recorded"})


@dataclass(slots=True)
class Row:
    """What settling reads of a claimed row (never the payload), changed in place.

    A plain object rather than the `Delivery` model: building an ORM object per row was
    most of a settle round's Python time.
    """

    seq: int
    claim_token: str | None
    ref_id: str
    ref_topic: str
    group_id: str
    source: str | None
    platform: str | None
    operation: str
    attempts: int
    step: int
    failures: int
    detail: str
    platform_message_id: str | None
    next_attempt_at: datetime
    state: str = ""
    outcome: str | None = None
    lease_until: datetime | None = None
    updated_at: datetime | None = None


def receipt_of(row: Row) -> DeliveryReceipt:
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


def _joined(row: Row, label: str, detail: str) -> str:
    part = f"{label}: {detail}" if label and detail else detail or label
    text = f"{row.detail}; {part}" if row.detail and row.step > 0 else part
    return text[:MAX_DETAIL]


@dataclass(frozen=True)
class Settlement:
    """One claimed row's result: a call's decision, or (`called=False`) an outcome without one."""

    seq: int
    token: str
    decision: Decision
    label: str = ""
    last_step: bool = True
    message_id: str | None = None
    called: bool = True


def without_call(seq: int, token: str, outcome: str, detail: str) -> Settlement:
    """Finish a claimed row without a call (`recorded`, `no_route`, a malformed record)."""
    return Settlement(seq, token, Decision(True, outcome, detail), called=False)


def _finish(row: Row, *, outcome: str, detail: str, topic: str) -> Outgoing:
    """Set the row's outcome; return its receipt for the outbox (the caller enqueues)."""
    row.state, row.outcome, row.detail = DONE, outcome, detail[:MAX_DETAIL]
    row.claim_token, row.lease_until, row.updated_at = None, None, utcnow()
    return Outgoing(topic, row.group_id, receipt_of(row))


def _requeue(row: Row, decision: Decision, label: str) -> None:
    """Due again: the next step after a success, the same step after a retryable failure."""
    if decision.final:
        row.detail = _joined(row, label, decision.detail or "done")
        row.step, row.failures = row.step + 1, 0
    elif decision.counts_failure:
        row.failures += 1
    now = utcnow()
    row.state, row.claim_token, row.lease_until = PENDING, None, None
    row.next_attempt_at, row.updated_at = now + timedelta(seconds=decision.delay), now


def _apply(row: Row, item: Settlement, topic: str) -> Outgoing | None:
    """Change the row as `item` says; its receipt when the record is now finished."""
    decision = item.decision
    if not item.called:
        return _finish(row, outcome=decision.outcome, detail=decision.detail, topic=topic)
    if item.message_id:
        row.platform_message_id = item.message_id
    if decision.final and (item.last_step or decision.outcome not in SUCCESS):
        detail = _joined(row, item.label, decision.detail)
        return _finish(row, outcome=decision.outcome, detail=detail, topic=topic)
    _requeue(row, decision, item.label)
    return None


# What settling reads of a claimed row (never the payload) and what it writes back.
READ = ("seq", "claim_token", "ref_id", "ref_topic", "group_id", "source", "platform",
        "operation", "attempts", "step", "failures", "detail", "platform_message_id",
        "next_attempt_at")  # fmt: skip
WRITTEN = ("state", "outcome", "detail", "step", "failures", "platform_message_id",
           "claim_token", "lease_until", "next_attempt_at", "updated_at")  # fmt: skip
TABLE: sa.Table = Delivery.__table__  # type: ignore[attr-defined]


@functools.cache
def _claimed_rows() -> sa.Select[Any]:
    """The small columns of the rows `b_seqs`, locked (built once), and whether each row's
    group has another unfinished row (`more`: only then can a claim find its next head)."""
    seqs: sa.BindParameter[int] = sa.bindparam("b_seqs", expanding=True)
    other = TABLE.alias("other")
    more = (
        sa.exists()
        .where(
            other.c.state.in_(UNFINISHED),
            other.c.group_id == TABLE.c.group_id,
            other.c.seq != TABLE.c.seq,
        )
        .label("more")
    )
    return (
        sa.select(*(TABLE.c[name] for name in READ), more)
        .where(TABLE.c.seq.in_(seqs))
        .with_for_update(of=TABLE)
    )


@functools.cache
def _changes() -> sa.Update:
    t = TABLE.c
    return (
        sa.update(TABLE)
        .where(t.seq == sa.bindparam("b_seq"))
        .values({name: sa.bindparam(f"b_{name}") for name in WRITTEN})
    )


def settle_all(engine: Engine, items: Sequence[Settlement], *, topic: str) -> list[Row | None]:
    """Apply every result in one transaction; per item, the row when now finished, else None."""
    return settle_and_claim(engine, items, topic=topic)[0]


def settle_and_claim(
    engine: Engine,
    items: Sequence[Settlement],
    *,
    topic: str,
    refill: int = 0,
    lease: timedelta = LEASE,
) -> tuple[list[Row | None], list[Claim]]:
    """Apply every result in one transaction, and claim up to `refill` next heads of their groups.

    Per item, the row when now finished, else None. An item whose claim is no longer this
    process's (its token changed) is skipped (None). Core statements: the claimed rows'
    small columns read under a row lock (PostgreSQL), every change written by one
    executemany UPDATE, the receipts by one INSERT. Then, in the same transaction, the due
    heads of the groups just written are claimed (store.claim_heads): a group's next record,
    or the next step of the same one, goes straight to a call, with no claim transaction of
    its own — one per finished call, so the slots the batch frees are filled again. Only
    groups that can have one are asked: a row requeued (its next step, a retry) or a group
    the locked read saw another unfinished row in. When records trickle in, a group's
    next record is not there yet when its previous one settles, and the claim statement
    (a round trip that would find nothing) is not sent.
    """
    if not items:
        return [], []
    # A Core transaction, not a Session: every statement is Core (services.common.db.Db).
    with engine.begin() as conn:
        found = conn.execute(_claimed_rows(), {"b_seqs": [item.seq for item in items]}).all()
        by_seq = {r.seq: Row(*r[:-1]) for r in found}
        waiting = {r.group_id for r in found if r.more}
        receipts: list[Outgoing] = []
        finished: list[Row | None] = []
        changed: list[dict[str, Any]] = []
        for item in items:
            row = by_seq.get(item.seq)
            receipt = None
            if row is not None and row.claim_token == item.token:
                receipt = _apply(row, item, topic)
                changed.append(
                    {"b_seq": row.seq, **{f"b_{name}": getattr(row, name) for name in WRITTEN}}
                )
            if receipt is not None:
                receipts.append(receipt)
            finished.append(row if receipt is not None else None)
        if changed:
            conn.execute(_changes(), changed)
        enqueue(conn, DeliveryOutbox, receipts)
        groups = {
            row.group_id
            for row in (by_seq[c["b_seq"]] for c in changed)
            if row.state == PENDING or row.group_id in waiting
        }
        claims = claim_heads(conn, limit=refill, lease=lease, groups=groups) if refill else []
    return finished, claims
