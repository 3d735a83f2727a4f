"""The notifications campaigns posted and how delivery carried them out.

Delivery publishes a receipt on `delivery.receipts.v1` per carried-out record, and a new
one (a new `id`, more `attempts`) for each retry; a notification shows its latest: a
receipt replaces the stored outcome only when it is at least as new (`created_at`, then
`attempts`), so a redelivered or older receipt changes nothing. Receipts of other
records (moderation's actions, other deployments' notifications) are ignored.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlmodel import Session, col, select

from services.campaigns.models import Notification
from services.campaigns.schemas import NotificationList, NotificationPublic
from services.campaigns.store import find_campaign
from services.common.contracts.receipts import DeliveryReceipt
from services.common.db import UTCDateTime, keyset_page


def _newest(receipts: Iterable[DeliveryReceipt]) -> list[DeliveryReceipt]:
    """The newest receipt per notification (by `created_at`, then `attempts`)."""
    newest: dict[str, DeliveryReceipt] = {}
    for r in receipts:
        held = newest.get(r.ref_id)
        if held is None or (r.created_at, r.attempts) >= (held.created_at, held.attempts):
            newest[r.ref_id] = r
    return [newest[k] for k in sorted(newest)]


def apply_receipts(
    *, session: Session, receipts: list[DeliveryReceipt], topic: str
) -> list[DeliveryReceipt]:
    """Record the latest delivery outcome of each notification of `topic` (unknown ids change
    nothing); return the receipts taken (the newest per notification)."""
    mine = _newest(r for r in receipts if r.ref_topic == topic)
    if not mine:
        return []
    table = Notification.__table__  # type: ignore[attr-defined]
    at = sa.bindparam("at", type_=UTCDateTime())
    attempts = sa.bindparam("attempts", type_=sa.Integer())
    stmt = (
        sa.update(table)
        .where(
            table.c.id == sa.bindparam("ref"),
            sa.or_(
                table.c.delivery_updated_at.is_(None),
                table.c.delivery_updated_at < at,
                sa.and_(table.c.delivery_updated_at == at, table.c.delivery_attempts <= attempts),
            ),
        )
        .values(
            delivery_outcome=sa.bindparam("outcome"),
            delivery_detail=sa.bindparam("detail"),
            delivery_attempts=attempts,
            delivery_updated_at=at,
        )
    )
    rows = [
        {
            "ref": r.ref_id,
            "at": r.created_at,
            "attempts": r.attempts,
            "outcome": r.outcome,
            "detail": r.detail,
        }
        for r in mine
    ]
    session.connection().execute(stmt, rows)
    return mine


def list_notifications(
    *, session: Session, group_id: str, campaign_id: str, limit: int, cursor: str | None
) -> NotificationList:
    """A page of a campaign's notifications, oldest first, each with its delivery."""
    find_campaign(session=session, group_id=group_id, campaign_id=campaign_id)
    query = select(Notification).where(col(Notification.campaign_id) == campaign_id)
    rows, next_cursor = keyset_page(
        session, query, Notification.position, limit=limit, cursor=cursor
    )
    return NotificationList(
        notifications=[NotificationPublic.of(n) for n in rows], next_cursor=next_cursor
    )
