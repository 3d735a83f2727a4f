"""Every metrics route fuzzed from its OpenAPI schema: no input gives a server error."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from services.common.settings import Settings
from services.metrics.app import create_app
from tests.conftest import auth

# The schema comes from an app that is never started; requests go to a running one.
# /readyz may answer 503 by design; only the metrics routes are fuzzed.
schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(Settings())).include(
    path_regex="^/v1/"
)


@pytest.fixture(scope="module")
def running(kafka_bootstrap, redis_url, database_url, config_path):
    from fastapi.testclient import TestClient

    app = create_app(
        Settings(
            kafka_bootstrap_servers=kafka_bootstrap,
            redis_url=redis_url,
            database_url=database_url,
            qunyun_config=str(config_path),
            consumer_group_prefix="metrics-fuzz-",
            topic_events="community.events.v1.metrics-fuzz",
        )
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


@schema.parametrize()
@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_input_gives_a_server_error(case, running, tokens):
    kwargs = case.as_transport_kwargs(base_url="http://testserver", headers=auth(tokens.reader))
    kwargs.pop("verify", None)
    response = running.request(**kwargs)
    assert response.status_code < 500, (case.as_curl_command(), response.text)
