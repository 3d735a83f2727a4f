"""The Grafana provisioning and dashboard: valid PromQL, agreed metric names only, mounted right."""

from __future__ import annotations

import importlib.util
import subprocess

import yaml

from tests.deploy.agreed import AGREED, queryable_names
from tests.deploy.conftest import ROOT
from tests.deploy.grafana import DASHBOARD, GRAFANA, dashboard, panels, queries
from tests.deploy.promql import metric_names, substitute_grafana


def test_dashboard_json_is_what_the_generator_writes():
    spec = importlib.util.spec_from_file_location("gen", GRAFANA / "generate_dashboard.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert DASHBOARD.read_text() == module.render(), (
        "run `python deploy/grafana/generate_dashboard.py` and commit qunyun.json"
    )


def test_dashboard_has_the_rows_an_sre_needs():
    board = dashboard()
    assert board["uid"] and board["title"]
    rows = [p["title"] for p in board["panels"] if p["type"] == "row"]
    for wanted in ("Event flow", "Consumer group", "Moderation", "Campaigns", "Delivery", "HTTP"):
        assert any(r.startswith(wanted) for r in rows), f"no {wanted!r} row in {rows}"
    consumer_row = next(p for p in board["panels"] if p["title"].startswith("Consumer group"))
    assert consumer_row.get("repeat") == "group"
    ids = [p["id"] for p in panels(board)]
    assert len(ids) == len(set(ids))
    for panel in panels(board):
        if panel["type"] != "row":
            assert panel["targets"], panel["title"]
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]


def test_dashboard_queries_use_only_agreed_metrics():
    known = set(queryable_names())
    used: set[str] = set()
    for title, expr in queries(dashboard()):
        names = metric_names(expr)
        assert names, f"{title}: {expr}"
        assert names <= known, f"panel {title!r} uses unknown metrics {names - known}"
        used |= {queryable_names()[n] for n in names}
    for variable in dashboard()["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]["query"]  # label_values(metric, label)
            assert metric_names(query.split("(", 1)[1].split(",")[0]) <= known
    # Every agreed metric is on the dashboard somewhere.
    assert set(AGREED) - used == set()


def test_dashboard_queries_are_valid_promql(promtool, tmp_path):
    rules = [
        {"record": f"dashboard:panel_{i}", "expr": substitute_grafana(expr)}
        for i, (_, expr) in enumerate(queries(dashboard()))
    ]
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_grafana_provisioning_points_at_prometheus_and_the_dashboards():
    datasources = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yml").read_text())
    (source,) = datasources["datasources"]
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    datasource_var = next(v for v in dashboard()["templating"]["list"] if v["name"] == "datasource")
    assert datasource_var["current"]["value"] == source["uid"]
    providers = yaml.safe_load((GRAFANA / "provisioning/dashboards/qunyun.yml").read_text())
    (provider,) = providers["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"


def test_docker_compose_mounts_prometheus_and_grafana_files():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    prometheus = services["prometheus"]
    assert "./deploy/prometheus:/etc/prometheus:ro" in prometheus["volumes"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    grafana = services["grafana"]
    assert "./deploy/grafana/provisioning:/etc/grafana/provisioning:ro" in grafana["volumes"]
    assert "./deploy/grafana/dashboards:/var/lib/grafana/dashboards:ro" in grafana["volumes"]
    for name in ("ingest", "metrics", "moderation", "campaigns", "delivery"):
        assert name in services
