"""What the event-driven kinds and the scheduler share: the campaigns of a kind running where
a batch's events happened, and claiming a campaign for one process's unit of work."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from services.campaigns.models import Campaign
from services.campaigns.store import is_postgres
from services.common.contracts.events import Event


def running_campaigns(
    *, session: Session, kind: str, events: Sequence[Event], include_ended: bool = False
) -> list[Campaign]:
    """The campaigns of `kind`, scheduled or active (or ended too, for kinds that still count
    events the consumer reads after the end), in the events' groups whose windows overlap the
    events' times (each event still has to be checked against its campaign's window)."""
    if not events:
        return []
    groups = sorted({e.group_id for e in events})
    lo = min(e.occurred_at for e in events)
    hi = max(e.occurred_at for e in events)
    statuses = ("scheduled", "active", "ended") if include_ended else ("scheduled", "active")
    return list(
        session.exec(
            select(Campaign).where(
                col(Campaign.kind) == kind,
                col(Campaign.group_id).in_(groups),
                col(Campaign.status).in_(statuses),
                col(Campaign.starts_at) <= hi,
                col(Campaign.ends_at) > lo,
            )
        ).all()
    )


def claim_campaign(*, session: Session, query: SelectOfScalar[Campaign]) -> Campaign | None:
    """Claim the campaign the query finds by bumping its `version` (PostgreSQL first skips a
    row another process has locked); None when there is none or another process has it.
    A process that claimed a campaign is the only one doing its steps until it commits."""
    if is_postgres(session):
        query = query.with_for_update(skip_locked=True)
    campaign = session.exec(query).first()
    if campaign is None:
        return None
    claimed = session.exec(
        sa.update(Campaign)
        .where(col(Campaign.id) == campaign.id, col(Campaign.version) == campaign.version)
        .values(version=campaign.version + 1)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:
        return None  # another process claimed it: the caller's transaction changed nothing
    campaign.version += 1
    return campaign
