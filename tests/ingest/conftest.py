"""An ingest app on the session broker and Redis, with this test's own topic."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from services.common.settings import Settings
from services.ingest.app import create_app


@dataclass
class Ingest:
    client: TestClient
    settings: Settings
    bootstrap: str

    @property
    def topic(self) -> str:
        return self.settings.topic_events


@pytest.fixture
def ingest(make_settings, run_app, kafka_bootstrap) -> Iterator[Ingest]:
    settings = make_settings(kafka_produce_timeout_seconds=3.0)
    with run_app(create_app(settings)) as client:
        yield Ingest(client, settings, kafka_bootstrap)
