"""Every group route of every service refuses a missing token, another group's token and,
on changes, a read-only token. The table is built from the apps' own route lists, so a
new route cannot slip through unprotected."""

import importlib
import re
from pathlib import Path

import pytest

from tests.support import LIMITED_GROUP, auth

SERVICES = ["ingest", "metrics", "moderation", "campaigns", "delivery"]
PUBLIC = {"/healthz", "/readyz", "/metrics", "/v1/webhooks/{source_id}"}
# Routes over every group the token may read (each answer filtered by the token's groups;
# tests/metrics checks the filtering with three tokens).
TOKEN_SCOPED = {"/v1/overview"}
# Routes over every group at once (shared blocklists): only tokens whose groups are ["*"].
ALL_GROUPS_ONLY = "/v1/blocklists"


def routes(app) -> list[tuple[str, str]]:
    # FastAPI >= 0.165 includes routers lazily, so app.routes no longer lists them; the
    # OpenAPI document does, and every API route is in it (none sets include_in_schema=False).
    return sorted(
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    )


def concrete(path: str, group: str) -> str:
    return re.sub(r"\{[^}]+\}", "x1", path.replace("{group_id}", group))


@pytest.fixture(params=SERVICES)
def service_client(request, settings, run_app):
    app = importlib.import_module(f"services.{request.param}.app").create_app(settings)
    with run_app(app) as client:
        yield app, client


def test_every_v1_route_is_public_by_design_or_group_scoped(service_client, tokens):
    app, app_client = service_client
    for method, path in routes(app):
        if path in PUBLIC or path.startswith(("/docs", "/openapi", "/redoc")):
            continue
        if path in TOKEN_SCOPED:
            r = app_client.request(method, path)
            assert r.status_code == 401, f"{method} {path} without token: {r.status_code}"
            r = app_client.request(method, path, headers=auth("qy_not_a_token"))
            assert r.status_code == 401, f"{method} {path} unknown token: {r.status_code}"
            continue
        if path.startswith(ALL_GROUPS_ONLY):
            url = concrete(path, "x1")
            r = app_client.request(method, url, json={})
            assert r.status_code == 401, f"{method} {path} without token: {r.status_code}"
            r = app_client.request(method, url, json={}, headers=auth(tokens.limited))
            assert r.status_code == 403, f"{method} {path} one group's token: {r.status_code}"
            continue
        assert path.startswith("/v1/groups/{group_id}"), f"{method} {path} has no group scope"


def test_every_group_route_refuses_bad_tokens(service_client, tokens):
    app, client = service_client
    checked = 0
    for method, path in routes(app):
        if not path.startswith("/v1/groups/{group_id}"):
            continue
        url = concrete(path, "test:other-group")
        r = client.request(method, url, json={})
        assert r.status_code == 401, f"{method} {path} without token: {r.status_code}"
        r = client.request(method, url, json={}, headers=auth("qy_not_a_token"))
        assert r.status_code == 401, f"{method} {path} unknown token: {r.status_code}"
        r = client.request(method, url, json={}, headers=auth(tokens.limited))
        assert r.status_code == 403, f"{method} {path} other group's token: {r.status_code}"
        if method != "GET":
            r = client.request(method, url, json={}, headers=auth(tokens.reader))
            assert r.status_code == 403, f"{method} {path} read-only token: {r.status_code}"
        limited_url = concrete(path, LIMITED_GROUP)
        r = client.request(method, limited_url, json={}, headers=auth(tokens.limited))
        assert r.status_code not in (401, 403), f"{method} {path} allowed token refused"
        checked += 1
    assert checked > 0 or app.title.endswith("ingest")


def test_no_route_hides_from_the_schema():
    for service in SERVICES:
        source = Path(importlib.import_module(f"services.{service}.api").__file__ or "")
        assert "include_in_schema=False" not in source.read_text(), service
