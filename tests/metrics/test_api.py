"""The metrics API's checks: tokens, validation with named parameters, pagination cursors."""

from __future__ import annotations

from datetime import datetime

import pytest

from services.common.redis_client import make_redis
from services.metrics.app import create_app
from services.metrics.apply import Applier
from tests.metrics.helpers import SHANGHAI, event
from tests.support import LIMITED_GROUP, auth

GROUP = "metrics:api-checks"
NOW = datetime.now(SHANGHAI)


@pytest.fixture(scope="module")
def client(kafka_bootstrap, redis_url, database_url, config_path):
    from services.common.kafka.admin import ensure_topics
    from services.common.settings import Settings

    settings = Settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        redis_url=redis_url,
        database_url=database_url,
        qunyun_config=str(config_path),
        consumer_group_prefix="metrics-api-checks-",
        topic_events="community.events.v1.metrics-api-checks",
        topic_deadletter="deadletter.v1.metrics-api-checks",
    )
    ensure_topics(settings, [settings.topic_events, settings.topic_deadletter])
    from fastapi.testclient import TestClient

    # Both groups seen (one rename each), so their reads answer 200 with zeros.
    applier = Applier(make_redis(redis_url), tz=SHANGHAI, history_days=400)
    applier.apply([event("member.updated", g, "someone-else", NOW) for g in (GROUP, LIMITED_GROUP)])

    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


ROUTES = [
    "activity?from=2026-01-01&to=2026-01-02",
    "active?date=2026-01-01",
    "rolling?window=5m",
    "retention?from=2026-01-01&to=2026-01-02",
    "lifecycle?from=2026-01-01&to=2026-01-02",
    "members/dormant",
    "leaderboard",
    "members/someone",
    "channels?from=2026-01-01&to=2026-01-02",
    "inviters?from=2026-01-01&to=2026-01-02",
]


@pytest.mark.parametrize("route", ROUTES)
def test_tokens_are_checked(client, tokens, route):
    assert client.get(f"/v1/groups/{GROUP}/{route}").status_code == 401
    assert (
        client.get(f"/v1/groups/{GROUP}/{route}", headers=auth(tokens.limited)).status_code == 403
    )
    expected = 404 if route.startswith("members/someone") else 200
    r = client.get(f"/v1/groups/{LIMITED_GROUP}/{route}", headers=auth(tokens.limited))
    assert r.status_code == expected, r.text


@pytest.mark.parametrize(
    ("query", "param", "words"),
    [
        ("activity?from=2026-1-01&to=2026-01-02", "from", "pattern"),
        ("activity?from=2026-02-30&to=2026-03-02", "from", "calendar date"),
        ("activity?from=2026-01-05&to=2026-01-02", "to", "before from"),
        ("activity?from=2024-11-01&to=2026-01-02", "to", "400 days"),
        ("activity?from=0001-01-01&to=0001-01-02", "from", "between"),
        ("activity?to=2026-01-02", "from", "missing"),
        ("active?date=yesterday", "date", "pattern"),
        ("rolling?window=2h", "window", "5m"),
        ("retention?from=2026-01-01&to=2026-01-02&periods=91", "periods", "90"),
        ("retention?from=2026-01-01&to=2026-01-02&periods=0", "periods", "1"),
        ("retention?from=2026-01-01&to=2026-01-02&mode=forever", "mode", "exact"),
        ("retention?from=2026-01-01&to=2026-01-02&cohort=month", "cohort", "day"),
        ("lifecycle?from=2026-01-01&to=2026-01-02&period=year", "period", "week"),
        ("members/dormant?days=0", "days", "1"),
        ("members/dormant?days=401", "days", "400"),
        ("members/dormant?cursor=not-a-cursor", "cursor", "cursor"),
        ("leaderboard?limit=101", "limit", "100"),
        ("leaderboard?days=abc", "days", "integer"),
        ("channels?from=2026-01-05&to=2026-01-02", "to", "before from"),
        ("channels?from=2024-11-01&to=2026-01-02", "to", "400 days"),
        ("inviters?from=2026-01-05&to=2026-01-02", "to", "before from"),
        ("inviters?from=2026-01-01&to=2026-01-02&limit=0", "limit", "1"),
        ("retention?from=2026-01-01&to=2026-01-02&channel=", "channel", "1"),
    ],
)
def test_bad_parameters_are_422_naming_the_parameter(client, tokens, query, param, words):
    r = client.get(f"/v1/groups/{GROUP}/{query}", headers=auth(tokens.reader))
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert any(
        d["loc"][-1] == param and words in d["msg"] + d["type"] + str(d.get("ctx")) for d in detail
    ), detail


def test_empty_group_answers_zeros(client, tokens):
    h = auth(tokens.reader)
    body = client.get(f"/v1/groups/{GROUP}/active?date=2026-01-01", headers=h).json()
    assert body == {"date": "2026-01-01", "dau": 0, "wau": 0, "mau": 0, "stickiness": 0.0}
    assert client.get(f"/v1/groups/{GROUP}/leaderboard", headers=h).json() == {"members": []}
    dormant = client.get(f"/v1/groups/{GROUP}/members/dormant", headers=h).json()
    assert dormant == {"members": [], "next_cursor": None}
    body = client.get(
        f"/v1/groups/{GROUP}/retention?from=2026-01-05&to=2026-01-11&cohort=week&periods=2",
        headers=h,
    ).json()
    assert body["cohorts"] == [
        {
            "cohort": "2026-01-05",
            "size": 0,
            "periods": [
                {"period": 1, "count": 0, "rate": 0.0},
                {"period": 2, "count": 0, "rate": 0.0},
            ],
        }
    ]


@pytest.mark.parametrize("route", ROUTES)
def test_a_group_never_seen_is_404_after_the_parameters_are_checked(client, tokens, route):
    r = client.get(f"/v1/groups/metrics:typo/{route}", headers=auth(tokens.reader))
    assert r.status_code == 404, r.text
    assert r.json() == {"detail": "no events seen for group metrics:typo"}
    r = client.get("/v1/groups/metrics:typo/active?date=yesterday", headers=auth(tokens.reader))
    assert r.status_code == 422


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("sort=size", "sort"),
        ("date=2026-02-30", "date"),
        ("cursor=%21%21", "cursor"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
    ],
)
def test_bad_overview_parameters_are_422(client, tokens, query, param):
    r = client.get(f"/v1/overview?{query}", headers=auth(tokens.reader))
    assert r.status_code == 422, r.text
    assert any(d["loc"][-1] == param for d in r.json()["detail"])
    assert client.get(f"/v1/overview?{query}").status_code == 401
