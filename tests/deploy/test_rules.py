"""Prometheus config and alert rules: promtool validates them, unit tests exercise every alert."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml

from tests.deploy.agreed import queryable_names
from tests.deploy.conftest import DEPLOY, ROOT
from tests.deploy.promql import metric_names

PROMETHEUS = DEPLOY / "prometheus"
OPERATING = ROOT / "docs" / "operating.md"
# alerts.yml prefixes each runbook path with prometheus.yml's `runbook_base` external label.
RUNBOOK_BASE = "{{ $externalLabels.runbook_base }}"


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
        "QunyunDeliveriesFailing",
        "QunyunDeliveriesForbidden",
        "QunyunDeliveryRateLimited",
        "QunyunDeliveryQueueGrowing",
    } <= set(names)
    headings = {
        line[4:].strip() for line in OPERATING.read_text().splitlines() if line.startswith("### ")
    }
    for alert in alerts():
        name = alert["alert"]
        assert alert["labels"]["severity"] in {"critical", "warning"}, name
        annotations = alert["annotations"]
        assert annotations["summary"].strip() and annotations["description"].strip(), name
        assert annotations["runbook_url"] == f"{RUNBOOK_BASE}/operating.md#{name.lower()}", name
        assert name in headings, f"docs/operating.md has no '### {name}' runbook section"


def github_anchor(heading: str) -> str:
    """The fragment GitHub (and most Markdown renderers) give a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def rendered_runbooks(base: str) -> dict[str, str]:
    """Each alert's runbook_url as Prometheus renders it with `runbook_base` = base."""
    return {
        alert["alert"]: alert["annotations"]["runbook_url"].replace(RUNBOOK_BASE, base)
        for alert in alerts()
    }


def test_every_runbook_url_resolves_to_a_heading_of_operating_md():
    """The base comes from prometheus.yml's external label; the path and anchor must exist."""
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    assert "runbook_base" in config["global"]["external_labels"]
    docs = ROOT / "docs"
    anchors: dict[Path, set[str]] = {}
    for name, url in rendered_runbooks("https://qunyun.example/docs").items():
        path, _, anchor = url.removeprefix("https://qunyun.example/docs/").partition("#")
        page = docs / path
        assert page.is_file(), f"{name}: runbook {url} names no file under docs/"
        if page not in anchors:
            lines = page.read_text().splitlines()
            anchors[page] = {github_anchor(line.lstrip("#")) for line in lines if line[:1] == "#"}
        assert anchor in anchors[page], f"{name}: docs/{path} has no heading for #{anchor}"


def test_runbook_check_catches_a_missing_heading():
    assert github_anchor("### QunyunServiceDown") == "-qunyunservicedown"
    assert github_anchor(" QunyunServiceDown") == "qunyunservicedown"
    assert github_anchor("Alerts and what to do") == "alerts-and-what-to-do"
    assert "qunyunnosuchalert" not in {
        github_anchor(line.lstrip("#")) for line in OPERATING.read_text().splitlines()
    }


def test_alert_unit_tests_set_the_runbook_base_they_expect():
    doc = yaml.safe_load((PROMETHEUS / "alerts_test.yml").read_text())
    for case in doc["tests"]:
        base = case["external_labels"]["runbook_base"]
        for check in case.get("alert_rule_test", []):
            for expected in check.get("exp_alerts", []):
                url = expected["exp_annotations"]["runbook_url"]
                assert url == f"{base}/operating.md#{check['alertname'].lower()}", url


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


def test_prometheus_scrapes_the_five_services_and_loads_the_alerts():
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
        "delivery:8005": "delivery",
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
