"""Use cases behind the REST API: list a group's deliveries, retry one, post a message.

They follow the transaction rule: they take a session, change and flush, never commit;
the route commits and then wakes the dispatcher.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from services.common.db import keyset_page, new_id, utcnow
from services.common.errors import Conflict, NotFound
from services.common.settings import QunyunConfig
from services.delivery.models import DONE, PENDING, Delivery
from services.delivery.records import new_row
from services.delivery.store import insert_new

RETRYABLE_OUTCOMES = frozenset({"failed", "forbidden", "no_route"})
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
    """Queue a failed, forbidden or no_route delivery again (Conflict otherwise)."""
    row = session.exec(
        select(Delivery).where(col(Delivery.group_id) == group_id, col(Delivery.id) == delivery_id)
    ).first()
    if row is None:
        raise NotFound(f"no delivery {delivery_id!r} in group {group_id!r}")
    if row.state != DONE or row.outcome not in RETRYABLE_OUTCOMES:
        raise Conflict(f"delivery {delivery_id!r} is {row.outcome or row.state}: nothing to retry")
    now = utcnow()
    row.state, row.outcome, row.failures = PENDING, None, 0
    row.next_attempt_at, row.updated_at = now, now
    session.add(row)
    session.flush()
    return row


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
