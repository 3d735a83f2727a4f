"""Each service starts, and /readyz names the dependency that is down."""

import contextlib
import importlib
from pathlib import Path

import pytest

from tests.support import wait_until
from tools.localstack import free_port

SERVICES = ["ingest", "metrics", "moderation", "campaigns"]


def create(service: str, settings):
    return importlib.import_module(f"services.{service}.app").create_app(settings)


@pytest.mark.parametrize("service", SERVICES)
def test_service_ready_with_dependencies_up(service, settings, run_app):
    with run_app(create(service, settings)) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = wait_until(lambda: client.get("/readyz").status_code == 200, timeout=20)
        assert ready, client.get("/readyz").text
        assert client.get("/openapi.json").status_code == 200
        assert client.get("/docs").status_code == 200
        metrics = client.get("/metrics")
        assert metrics.status_code == 200 and "qunyun_http_requests_total" in metrics.text


@pytest.mark.parametrize("service", ["ingest", "metrics", "moderation"])  # campaigns: DB only
def test_readyz_names_redis_when_down(service, make_settings, run_app):
    settings = make_settings(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    with run_app(create(service, settings)) as client:
        r = client.get("/readyz")
        assert r.status_code == 503
        assert "redis" in r.json()["detail"]


@pytest.mark.parametrize("service", SERVICES)
def test_readyz_names_kafka_when_down(service, make_settings, run_app):
    settings = make_settings(kafka_bootstrap_servers=f"127.0.0.1:{free_port()}")
    with run_app(create(service, settings)) as client:
        r = client.get("/readyz")
        assert r.status_code == 503
        assert "kafka" in r.json()["detail"]


@pytest.mark.parametrize("service", ["moderation", "campaigns"])
def test_readyz_names_database_when_down(service, make_settings, run_app):
    settings = make_settings(database_url=f"postgresql://postgres@127.0.0.1:{free_port()}/none")
    with run_app(create(service, settings)) as client:
        r = client.get("/readyz")
        assert r.status_code == 503
        assert "database" in r.json()["detail"]


def stopped(pid: int) -> bool:
    """Every thread of `pid` is stopped (state T in /proc)."""
    states = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            states.append((task / "stat").read_text().rsplit(")", 1)[1].split()[0])
    return bool(states) and all(state in "Tt" for state in states)


def test_readyz_names_a_frozen_broker(make_settings, run_app):
    """A broker that accepts TCP but answers nothing (frozen, partitioned) is not ready."""
    import signal

    from tools.localstack import start_tansu, stop

    port = free_port()
    broker = start_tansu(port)
    try:
        settings = make_settings(kafka_bootstrap_servers=f"127.0.0.1:{port}")
        with run_app(create("ingest", settings)) as client:
            assert client.get("/readyz").status_code == 200
            broker.send_signal(signal.SIGSTOP)
            try:
                # The signal is queued, not done: under load a broker thread can still answer
                # one request before every thread has stopped. Probe once all have.
                assert wait_until(lambda: stopped(broker.pid), timeout=10, interval=0.01)
                r = client.get("/readyz")
                assert r.status_code == 503 and "kafka" in r.json()["detail"]
            finally:
                broker.send_signal(signal.SIGCONT)
            assert client.get("/readyz").status_code == 200
    finally:
        stop(broker)
