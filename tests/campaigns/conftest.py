"""Fixtures of the campaigns tests: an engine on the session database with the tables migrated."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from services.campaigns.app import migrate_campaigns
from services.common.settings import Settings
from services.common.storage import make_engine


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    migrate_campaigns(settings.database_url)
    engine = make_engine(settings.database_url)
    yield engine
    engine.dispose()
