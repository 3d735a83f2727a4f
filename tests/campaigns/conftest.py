"""Fixtures of the campaigns tests: an engine on the session database, and a clean-up that
keeps one test's campaigns from firing into a later test's topics (the database is shared)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine
from sqlmodel import col

from services.campaigns.app import migrate_campaigns
from services.campaigns.models import Campaign, Outbox
from services.common.db import make_engine, utcnow
from services.common.settings import Settings
from tests.conftest import LIMITED_GROUP


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    migrate_campaigns(settings.database_url)
    engine = make_engine(settings.database_url)
    yield engine
    engine.dispose()


@pytest.fixture(autouse=True)
def _retire_test_campaigns(database_url: str, unique: Callable[[str], str]) -> Iterator[None]:
    yield
    suffix = unique("")  # every group a test makes ends with "-<run id>"
    migrate_campaigns(database_url)
    engine = make_engine(database_url)
    mine = sa.or_(col(Campaign.group_id).endswith(suffix), col(Campaign.group_id) == LIMITED_GROUP)
    with engine.begin() as conn:
        conn.execute(
            sa.update(Campaign)
            .where(mine, col(Campaign.status).in_(("scheduled", "active")))
            .values(status="cancelled")
        )
        conn.execute(sa.update(Campaign).where(mine).values(next_due_at=None))
        conn.execute(
            sa.update(Outbox)
            .where(
                sa.or_(col(Outbox.key).endswith(suffix), col(Outbox.key) == LIMITED_GROUP),
                col(Outbox.published_at).is_(None),
            )
            .values(published_at=utcnow())
        )
    engine.dispose()
