"""/docs and /redoc render in headless Chromium with no network beyond localhost.

A real service app (moderation) runs under uvicorn on a free port; Chromium loads its pages
with every host but loopback unresolvable and a dead proxy for everything else, so a script
or stylesheet from a CDN would leave the page blank. The DOM Chromium dumps after running
the scripts must hold Swagger UI's and ReDoc's rendered operations.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from services.moderation.app import create_app
from tests.deploy.conftest import debian_binary
from tests.support import wait_until
from tools.localstack import free_port

CHROMIUM = "/usr/bin/chromium"
# Only loopback: names resolve to nothing and any other address goes to a closed port.
OFFLINE = [
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
    "--proxy-server=http://127.0.0.1:9",
]


def chromium() -> str:
    """Debian's chromium; installed here when running as root, as .ci/run does."""
    return debian_binary("chromium", "chromium", path=CHROMIUM)


def headless(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--virtual-time-budget=5000",
            *OFFLINE,
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def rendered_dom(binary: str, profile: Path, url: str) -> str:
    """The DOM after the page's scripts ran; with QUNYUN_SCREENSHOTS=<dir>, a PNG of it too."""
    result = headless(binary, profile, "--dump-dom", url)
    assert result.returncode == 0, result.stderr[-2000:]
    if shots := os.environ.get("QUNYUN_SCREENSHOTS"):
        name = re.sub(r"\W+", "-", url.rsplit("/", 1)[-1]).strip("-") or "page"
        target = Path(shots).resolve() / f"{name}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        shot = headless(binary, profile, "--window-size=1280,1600", f"--screenshot={target}", url)
        assert shot.returncode == 0 and target.exists(), shot.stderr[-2000:]
    return result.stdout


@pytest.fixture(scope="module")
def browser() -> str:
    return chromium()


@pytest.fixture
def service_url(make_settings) -> Iterator[str]:
    """The moderation service, as `python -m services.moderation` serves it, on a free port."""
    port = free_port()
    config = uvicorn.Config(
        create_app(make_settings()), host="127.0.0.1", port=port, log_config=None
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started or not thread.is_alive(), timeout=60)
    assert server.started, "moderation did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=30)


def test_docs_pages_reference_only_their_own_service(service_url):
    for page in ("/docs", "/redoc"):
        html = httpx.get(service_url + page, timeout=10).text
        urls = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
        urls += re.findall(r"""(?:url|spec-url):\s*["']([^"']+)["']""", html)
        assert urls, html
        external = [u for u in urls if re.match(r"^(https?:)?//", u)]
        assert external == [], f"{page} loads {external}"
        for url in urls:
            assert httpx.get(service_url + url, timeout=10).status_code == 200, url


def test_swagger_ui_renders_the_operations_offline(browser, service_url, tmp_path):
    dom = rendered_dom(browser, tmp_path / "profile", service_url + "/docs")
    assert 'class="swagger-ui' in dom, dom[:2000]
    operations = re.findall(r'class="opblock opblock-(get|post|put|patch|delete)', dom)
    assert len(operations) >= 5, dom[:4000]
    assert "/v1/groups/{group_id}/rules" in dom
    assert "qunyun moderation" in dom


def test_redoc_renders_the_operations_offline(browser, service_url, tmp_path):
    dom = rendered_dom(browser, tmp_path / "profile", service_url + "/redoc")
    assert "redoc-wrap" in dom, dom[:2000]
    assert "qunyun moderation" in dom
    assert "/v1/groups/{group_id}/rules" in dom
    assert re.search(r'class="[^"]*operation-type[^"]*\bget\b', dom), dom[:4000]


def test_a_page_needing_the_network_stays_blank(browser, tmp_path):
    """The offline flags are effective: a CDN script cannot run, so nothing renders."""
    page = tmp_path / "cdn.html"
    page.write_text(
        '<div id="out">blank</div><script src="https://cdn.jsdelivr.net/npm/'
        'swagger-ui-dist@5/swagger-ui-bundle.js"></script><script>'
        "document.getElementById('out').textContent = "
        "typeof SwaggerUIBundle === 'undefined' ? 'offline' : 'online';</script>"
    )
    dom = rendered_dom(browser, tmp_path / "profile", page.as_uri())
    assert '<div id="out">offline</div>' in dom, dom
