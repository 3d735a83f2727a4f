"""Prometheus config and alert rules: promtool validates them, unit tests exercise every alert."""

from __future__ import annotations

import re
import subprocess

import yaml

from tests.deploy.agreed import queryable_names
from tests.deploy.conftest import DEPLOY, ROOT
from tests.deploy.promql import metric_names

PROMETHEUS = DEPLOY / "prometheus"
OPERATING = ROOT / "docs" / "operating.md"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=120)


def alerts() -> list[dict]:
    doc = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    return [rule for group in doc["groups"] for rule in group["rules"] if "alert" in rule]


def test_promtool_check_config_and_rules(promtool):
    result = run(promtool, "check", "config", str(PROMETHEUS / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    result = run(promtool, "check", "rules", str(PROMETHEUS / "alerts.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alerts())} rules found" in result.stdout


def test_promtool_test_rules(promtool):
    result = run(promtool, "test", "rules", str(PROMETHEUS / "alerts_test.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_test_rules_can_fail(promtool, tmp_path):
    """A unit test expecting the wrong thing fails, so the suite above is not vacuous."""
    (tmp_path / "alerts.yml").write_text((PROMETHEUS / "alerts.yml").read_text())
    wrong = {
        "rule_files": ["alerts.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {"series": 'up{job="qunyun",instance="a:1",service="a"}', "values": "1x10"}
                ],
                "alert_rule_test": [
                    {
                        "eval_time": "5m",
                        "alertname": "QunyunServiceDown",
                        "exp_alerts": [{"exp_labels": {"severity": "critical"}}],
                    }
                ],
            }
        ],
    }
    (tmp_path / "wrong_test.yml").write_text(yaml.safe_dump(wrong))
    result = run(promtool, "test", "rules", str(tmp_path / "wrong_test.yml"))
    assert result.returncode != 0


def test_every_alert_has_severity_annotations_and_a_runbook():
    names = [a["alert"] for a in alerts()]
    assert len(names) == len(set(names))
    assert {
        "QunyunServiceDown",
        "QunyunIngestErrorRatioHigh",
        "QunyunIngestBackpressure",
        "QunyunKafkaProduceErrors",
        "QunyunConsumerLagHigh",
        "QunyunConsumerLagGrowing",
        "QunyunConsumerBlocked",
        "QunyunDeadLetters",
        "QunyunCampaignsSchedulerLate",
        "QunyunHighRequestLatency",
    } <= set(names)
    headings = {
        line[4:].strip() for line in OPERATING.read_text().splitlines() if line.startswith("### ")
    }
    for alert in alerts():
        name = alert["alert"]
        assert alert["labels"]["severity"] in {"critical", "warning"}, name
        annotations = alert["annotations"]
        assert annotations["summary"].strip() and annotations["description"].strip(), name
        assert annotations["runbook_url"] == f"docs/operating.md#{name.lower()}", name
        assert name in headings, f"docs/operating.md has no '### {name}' runbook section"


def test_every_alert_has_a_firing_and_a_quiet_unit_test():
    doc = yaml.safe_load((PROMETHEUS / "alerts_test.yml").read_text())
    fires: set[str] = set()
    quiet: set[str] = set()
    for case in doc["tests"]:
        for check in case.get("alert_rule_test", []):
            (fires if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {a["alert"] for a in alerts()}
    assert names - fires == set(), "alerts never seen firing in alerts_test.yml"
    assert names - quiet == set(), "alerts never seen quiet in alerts_test.yml"


def test_alerts_use_only_agreed_metrics():
    known = queryable_names()
    for alert in alerts():
        used = metric_names(alert["expr"])
        assert used, alert["alert"]
        assert used <= set(known), f"{alert['alert']} uses unknown metrics {used - set(known)}"


def test_metric_name_check_catches_a_typo():
    assert metric_names("rate(qunyun_ingest_event_total[5m])") - set(queryable_names()) == {
        "qunyun_ingest_event_total"
    }


def test_prometheus_scrapes_the_four_services_and_loads_the_alerts():
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    assert config["rule_files"] == ["alerts.yml"]
    (job,) = config["scrape_configs"]
    targets = {
        target: static["labels"]["service"]
        for static in job["static_configs"]
        for target in static["targets"]
    }
    assert targets == {
        "ingest:8001": "ingest",
        "metrics:8002": "metrics",
        "moderation:8003": "moderation",
        "campaigns:8004": "campaigns",
    }


def test_docs_list_every_label_and_no_id_label():
    text = OPERATING.read_text()
    from tests.deploy.agreed import AGREED

    for name, (_, labels) in AGREED.items():
        if name == "up":
            continue
        assert f"`{name}`" in text, f"docs/operating.md does not list {name}"
        for label in labels:
            assert re.search(rf"\b{label}\b", text), f"label {label} undocumented"
