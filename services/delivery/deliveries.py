"""Use cases behind the REST API: list a group's deliveries, retry one, post a message.

They follow the transaction rule: they take a session, change and flush, never commit;
the route commits and then wakes the dispatcher.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from services.common.db import dialect_of, keyset_page, new_id, utcnow
from services.common.errors import Conflict, NotFound
from services.common.settings import QunyunConfig
from services.delivery.models import DONE, PENDING, Delivery
from services.delivery.records import new_row
from services.delivery.store import TABLE, insert_new

RETRYABLE_OUTCOMES = frozenset({"failed", "forbidden", "no_route"})
SEQ_SEQUENCE = "deliveries_seq_seq"  # PostgreSQL's name for the `seq` serial's sequence
MESSAGES_TOPIC = "delivery.messages"
# The namespace of each platform's group ids (DESIGN "Event contract").
GROUP_NAMESPACES = {
    "telegram": "telegram:",
    "slack": "slack:",
    "feishu": "feishu:",
    "onebot": "qq:",
    "wecom": "wecom:",
}


class NoSource(ValueError):
    """A message delivery has no usable source for: none known, unknown, or another
    platform's (the API answers 422 with the message)."""


def list_deliveries(
    session: Session,
    *,
    group_id: str,
    outcome: str | None = None,
    ref_id: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[Delivery], str | None]:
    """One page of a group's deliveries, newest first, and the next cursor."""
    query = select(Delivery).where(col(Delivery.group_id) == group_id)
    if outcome is not None:
        query = query.where(col(Delivery.outcome) == outcome)
    if ref_id is not None:
        query = query.where(col(Delivery.ref_id) == ref_id)
    return keyset_page(session, query, Delivery.id, limit=limit, cursor=cursor, descending=True)


def retry_delivery(session: Session, *, group_id: str, delivery_id: str) -> Delivery:
    """Queue a failed, forbidden or no_route delivery again, behind its group's queue
    (Conflict otherwise)."""
    row = session.exec(
        select(Delivery).where(col(Delivery.group_id) == group_id, col(Delivery.id) == delivery_id)
    ).first()
    if row is None:
        raise NotFound(f"no delivery {delivery_id!r} in group {group_id!r}")
    if row.state != DONE or row.outcome not in RETRYABLE_OUTCOMES:
        raise Conflict(f"delivery {delivery_id!r} is {row.outcome or row.state}: nothing to retry")
    now = utcnow()
    session.execute(
        sa.update(TABLE)
        .where(TABLE.c.seq == row.seq)
        .values(
            seq=_back_of_the_queue(dialect_of(session)),
            state=PENDING,
            outcome=None,
            failures=0,
            next_attempt_at=now,
            updated_at=now,
        )
    )
    session.expunge(row)
    return session.exec(select(Delivery).where(col(Delivery.id) == delivery_id)).one()


def _back_of_the_queue(dialect: str) -> Any:
    """A new `seq` for a retried row, so it queues behind its group's unfinished rows.

    With its old `seq` it would be the group's head again while a newer row is in flight,
    and two of the group's rows would be carried out at once, out of order. PostgreSQL: the
    next value of the serial's sequence, as an insert would get; SQLite: max + 1, which is
    what it allocates, taken in the one statement that holds the write lock.
    """
    if dialect == "postgresql":
        return sa.Sequence(SEQ_SEQUENCE).next_value()
    return sa.select(sa.func.max(TABLE.c.seq) + 1).scalar_subquery()


def latest_source(session: Session, *, group_id: str) -> str | None:
    """The source of the latest record delivery carried for the group, if any."""
    return session.exec(
        select(Delivery.source)
        .where(col(Delivery.group_id) == group_id, col(Delivery.source).is_not(None))
        .order_by(col(Delivery.seq).desc())
        .limit(1)
    ).first()


def check_source(config: QunyunConfig, source_id: str, group_id: str) -> None:
    """NoSource unless the source is configured and its platform's groups include this one."""
    source = config.source(source_id)
    if source is None:
        raise NoSource(f"unknown source {source_id!r}: it is not in QUNYUN_CONFIG")
    namespace = GROUP_NAMESPACES.get(source.platform)
    if namespace and not group_id.startswith(namespace):
        raise NoSource(
            f"source {source_id!r} acts in {source.platform} groups ({namespace}…), "
            f"not in {group_id!r}"
        )


def post_message(
    session: Session,
    *,
    config: QunyunConfig,
    group_id: str,
    text: str,
    reply_to: str | None = None,
    source: str | None = None,
) -> str:
    """Queue a post for the group through `source` (else the group's latest); return its id."""
    source = source or latest_source(session, group_id=group_id)
    if source is None:
        raise NoSource(f"no source known for group {group_id!r}: name one")
    check_source(config, source, group_id)
    payload: dict[str, Any] = {
        "id": new_id("msg_"),
        "group_id": group_id,
        "source": source,
        "text": text,
        "reply_to": reply_to,
        "mentions": [],
        "created_at": utcnow().isoformat(),
    }
    insert_new(session, [new_row(payload=payload, ref_topic=MESSAGES_TOPIC, config=config)])
    session.flush()
    return str(payload["id"])
