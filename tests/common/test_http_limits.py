"""Every REST service: bodies over 1 MiB get 413, 422s never echo more than a short prefix."""

from __future__ import annotations

import importlib

import pytest

from tests.support import auth

SERVICES = {
    "metrics": "/v1/groups/limits-g/activity?from=2026-01-01&to=2026-01-02",
    "moderation": "/v1/groups/limits-g/rules",
    "campaigns": "/v1/groups/limits-g/campaigns",
}
HUGE = 20 * 1024 * 1024


def _app(service: str, settings):  # type: ignore[no-untyped-def]
    return importlib.import_module(f"services.{service}.app").create_app(settings)


@pytest.mark.parametrize("service", ["moderation", "campaigns"])
def test_large_body_is_413_by_content_length_and_by_stream(service, settings, run_app, tokens):
    path = SERVICES[service]
    with run_app(_app(service, settings)) as client:
        declared = client.post(path, content=b"{" + b" " * HUGE, headers=auth(tokens.admin))
        assert declared.status_code == 413, declared.text[:200]
        assert "larger than 1048576 bytes" in declared.json()["detail"]

        def chunks():  # no Content-Length: the limit is counted on the stream
            for _ in range(40):
                yield b" " * 65536

        streamed = client.post(path, content=chunks(), headers=auth(tokens.admin))
        assert streamed.status_code == 413


@pytest.mark.parametrize("service", ["moderation", "campaigns"])
def test_invalid_large_value_is_422_without_echo(service, settings, run_app, tokens):
    title = "标" * 150_000  # 2 × 450 KB of UTF-8, under the body limit
    body = {"name": title, "title": title, "kind": "no-such-kind", "params": {}}
    with run_app(_app(service, settings)) as client:
        r = client.post(SERVICES[service], json=body, headers=auth(tokens.admin))
        assert r.status_code == 422
        assert len(r.content) < 4096, len(r.content)


def test_docs_pages_load_their_assets_from_the_service(settings, run_app):
    for service in ("ingest", *SERVICES):
        with run_app(_app(service, settings)) as client:
            for page in ("/docs", "/redoc"):
                html = client.get(page).text
                assert "cdn." not in html and "googleapis" not in html
                scripts = [s.split('"')[0] for s in html.split('src="')[1:]]
                assert scripts, page
                for script in scripts:
                    assert client.get(script).status_code == 200, script
