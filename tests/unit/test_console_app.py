"""The console process without a broker, Redis or database: ready, its config, /v1/me."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.common.auth import token_entry
from services.common.settings import QunyunConfig, Settings, write_config
from services.console.app import STATIC, content_security_policy, create_app
from tools.localstack import free_port

TOKEN = "qy_console_unit_token"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    config = write_config(
        tmp_path / "qunyun.toml",
        QunyunConfig(tokens=[token_entry("ops", TOKEN, ["g1"], ["read"])]),
    )
    nowhere = f"127.0.0.1:{free_port()}"  # nothing listens: the console must not care
    return Settings(
        kafka_bootstrap_servers=nowhere,
        redis_url=f"redis://{nowhere}/0",
        qunyun_config=str(config),
        qunyun_timezone="Asia/Shanghai",
    )


def test_ready_without_kafka_redis_or_a_database(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        assert client.get("/healthz").status_code == 200
        answer = client.get("/readyz")
        assert answer.status_code == 200, answer.text
        assert "qunyun_http_requests_total" in client.get("/metrics").text


def test_config_names_the_page_host_or_the_configured_urls(settings: Settings) -> None:
    with TestClient(create_app(settings), base_url="http://ops.example:8006") as client:
        config = client.get("/config.json").json()
    assert config["services"] == {
        "ingest": "http://ops.example:8001",
        "metrics": "http://ops.example:8002",
        "moderation": "http://ops.example:8003",
        "campaigns": "http://ops.example:8004",
        "delivery": "http://ops.example:8005",
    }
    assert (config["locale"], config["timezone"]) == ("zh-CN", "Asia/Shanghai")
    configured = settings.model_copy(
        update={"console_metrics_url": "https://metrics.example/", "console_locale": "en"}
    )
    with TestClient(create_app(configured)) as client:
        config = client.get("/config.json").json()
    assert config["services"]["metrics"] == "https://metrics.example"
    assert config["services"]["delivery"] == "http://testserver:8005"
    assert config["locale"] == "en"


def test_me_says_what_a_token_may_do_and_refuses_an_unknown_one(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        me = client.get("/v1/me", headers={"Authorization": f"Bearer {TOKEN}"})
        assert me.json() == {"name": "ops", "groups": ["g1"], "scopes": ["read"]}
        assert client.get("/v1/me", headers={"Authorization": "Bearer nope"}).status_code == 401
        assert client.get("/v1/me").status_code == 401


def test_the_web_app_is_served_with_script_types_and_no_caching(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        page = client.get("/")
        assert page.status_code == 200 and '<div id="app">' in page.text
        assert page.headers["cache-control"] == "no-cache"
        for path in ("/js/main.js", "/vendor/preact.mjs", "/vendor/echarts.esm.min.mjs"):
            answer = client.get(path)
            assert answer.status_code == 200, path
            assert answer.headers["content-type"].startswith("text/javascript"), path
        assert client.get("/i18n/zh-CN.json").json()["app.console"] == "控制台"
        assert client.get("/nothing-here.js").status_code == 404


def policy_of(answer: Any) -> dict[str, list[str]]:
    """The Content-Security-Policy header as directive → sources."""
    directives = [d.split() for d in answer.headers["content-security-policy"].split(";")]
    return {d[0]: d[1:] for d in directives if d}


def test_the_web_app_has_a_strict_content_security_policy(settings: Settings) -> None:
    page_text = (STATIC / "index.html").read_text("utf-8")
    import_map = page_text.split('<script type="importmap">', 1)[1].split("</script>", 1)[0]
    digest = base64.b64encode(hashlib.sha256(import_map.encode()).digest()).decode()
    with TestClient(create_app(settings), base_url="http://ops.example:8006") as client:
        page = client.get("/")
        policy = policy_of(page)
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["referrer-policy"] == "no-referrer"
        assert policy_of(client.get("/js/main.js")) == policy
    assert policy["default-src"] == ["'none'"]
    # Scripts: the console's own files and the import map by its hash, nothing inline else.
    assert policy["script-src"] == ["'self'", f"'sha256-{digest}'"]
    assert policy["style-src"] == ["'self'"]
    assert policy["style-src-attr"] == ["'unsafe-inline'"]  # ECharts' tooltips
    assert policy["connect-src"] == ["'self'"] + [f"http://ops.example:800{n}" for n in range(1, 6)]
    assert policy["frame-ancestors"] == ["'none'"] and policy["base-uri"] == ["'none'"]
    assert not any("unsafe-eval" in s or s == "*" for sources in policy.values() for s in sources)


def test_the_policy_names_configured_api_origins_and_nothing_a_host_header_smuggles(
    settings: Settings,
) -> None:
    configured = settings.model_copy(update={"console_metrics_url": "https://api.example/metrics/"})
    with TestClient(create_app(configured)) as client:
        assert "https://api.example" in policy_of(client.get("/"))["connect-src"]
    # The default origins come from the request's Host: one that is no origin is left out.
    smuggled = content_security_policy([], ["http://evil;script-src *:8001", "http://[::1]:8002"])
    assert "evil" not in smuggled and "script-src *" not in smuggled
    assert "connect-src 'self' http://[::1]:8002;" in smuggled
