"""A real Prometheus scrapes the services started as `make run` starts them.

Prometheus runs with deploy/prometheus/prometheus.yml (targets and intervals rewritten)
and deploy/prometheus/alerts.yml; traffic goes through ingest's signed webhook and the
REST APIs; the assertions read Prometheus' HTTP API, as a dashboard or an SRE would.
"""

from __future__ import annotations

import inspect
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import yaml

from services.common.settings import Settings
from tests.deploy.agreed import AGREED, SERVICE_METRICS
from tests.deploy.conftest import DEPLOY
from tests.deploy.grafana import dashboard, queries
from tests.deploy.lint import lint_problems
from tests.deploy.promql import substitute_grafana
from tests.deploy.traffic import SOURCE, generic_events, signed_webhook
from tests.support import auth, wait_until
from tools.localstack import free_port, stop
from tools.stack import HTTP, SERVICES, RunningStack, service_stack

# Every service `make run` starts. tools/stack.py lists delivery (port 8005) and lets callers
# name the services to start; with a tools/stack.py that does not yet, the stack is the
# four services it starts by default and the delivery checks below are skipped.
STACK_ARGS: dict[str, Any] = (
    {"names": tuple(SERVICES)} if "names" in inspect.signature(service_stack).parameters else {}
)


@contextmanager
def prometheus(binary: str, stack: RunningStack, workdir: Path) -> Iterator[str]:
    """Run Prometheus on a free port with the deploy config pointed at the stack."""
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    config["global"].update(
        {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"}
    )
    config["rule_files"] = [str(DEPLOY / "prometheus" / "alerts.yml")]
    (job,) = config["scrape_configs"]
    job["static_configs"] = [
        {"targets": [f"127.0.0.1:{port}"], "labels": {"service": name}}
        for name, port in stack.ports.items()
    ]
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(workdir / "prometheus.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if HTTP.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    "prometheus did not start:\n" + (workdir / "prometheus.log").read_text()
                )
            time.sleep(0.2)
        yield url
    finally:
        stop(proc)
        log.close()


def query(prom: str, expr: str) -> list[dict[str, Any]]:
    response = HTTP.get(f"{prom}/api/v1/query", params={"query": expr}, timeout=5)
    response.raise_for_status()
    body = response.json()
    assert body["status"] == "success", body
    return body["data"]["result"]


def by_label(result: list[dict[str, Any]], label: str) -> dict[str, float]:
    return {r["metric"].get(label, ""): float(r["value"][1]) for r in result}


def test_prometheus_sees_the_make_run_stack(
    make_settings, prometheus_bin, promtool, tokens, tmp_path
):
    settings: Settings = make_settings()
    prefix = settings.consumer_group_prefix
    # The groups that consume community.events.v1 (delivery reads the actions and notices).
    event_groups = {f"{prefix}{name}" for name in ("metrics", "moderation", "campaigns")}
    run = uuid.uuid4().hex[:10]
    group_id = f"prom:{run}"
    members = [f"prom:{run}:m{i}" for i in range(3)]
    headers = auth(tokens.admin)
    problems: list[str] = []

    def expect(ok: bool, what: str) -> None:
        if not ok:
            problems.append(what)

    with (
        service_stack(settings, tmp_path / "logs", **STACK_ARGS) as stack,
        prometheus(prometheus_bin, stack, tmp_path / "prometheus") as prom,
    ):
        # At least these groups (services may run more: moderation and campaigns read receipts).
        groups = event_groups | ({f"{prefix}delivery"} if "delivery" in stack.ports else set())

        def post(service: str, path: str, body: dict[str, Any]) -> httpx.Response:
            url = f"{stack.url(service)}/v1/groups/{group_id}{path}"
            return HTTP.post(url, headers=headers, json=body, timeout=10)

        # Operators set the group up: a moderation rule and a check-in campaign.
        rule = post(
            "moderation",
            "/rules",
            {
                "name": "no ads",
                "kind": "keywords",
                "params": {"keywords": ["加微信"]},
                "action": "delete",
            },
        )
        expect(rule.status_code == 201, f"moderation POST rules: {rule.status_code} {rule.text}")
        now = datetime.now(UTC)
        campaign = post(
            "campaigns",
            "/campaigns",
            {
                "kind": "checkin",
                "title": "每日打卡",
                "starts_at": (now + timedelta(seconds=1)).isoformat(),
                "ends_at": (now + timedelta(hours=1)).isoformat(),
                "params": {"keyword": "打卡", "match": "contains", "points": 10},
            },
        )
        expect(campaign.status_code == 201, f"campaigns POST: {campaign.status_code}")
        if campaign.status_code == 201:
            campaign_url = (
                f"{stack.url('campaigns')}/v1/groups/{group_id}/campaigns/{campaign.json()['id']}"
            )
            active = wait_until(
                lambda: (
                    HTTP.get(campaign_url, headers=headers, timeout=5).json().get("status")
                    == "active"
                ),
                timeout=20,
            )
            expect(active, "the check-in campaign did not become active in 20 s")

        # Members join and talk through ingest's signed generic webhook; one posts an ad.
        events = generic_events(group_id, members, run)
        events.append(
            {
                **events[1],
                "id": f"{run}-ad",
                "data": {"message_id": f"{run}-ad", "text": "加微信 领红包", "kind": "text"},
            }
        )
        body, signed = signed_webhook(events)
        webhook_url = f"{stack.url('ingest')}/v1/webhooks/{SOURCE}"
        first, again = (
            HTTP.post(webhook_url, content=body, headers=signed, timeout=10) for _ in range(2)
        )
        assert first.status_code == 202, (first.status_code, first.text, stack.log_tail("ingest"))
        assert (first.json()["accepted"], first.json()["duplicates"]) == (len(events), 0)
        assert (again.json()["accepted"], again.json()["duplicates"]) == (0, len(events))

        # Reads the frontends make, and one without a token.
        today = datetime.now(UTC).date().isoformat()
        for service, path in [
            ("metrics", f"/v1/groups/{group_id}/activity?from={today}&to={today}"),
            ("moderation", f"/v1/groups/{group_id}/rules"),
            ("campaigns", f"/v1/groups/{group_id}/campaigns"),
        ]:
            # Metrics answers 404 until it has seen the group's first event (docs/metrics.md).
            read = wait_until(
                lambda s=service, p=path: (
                    r
                    if (
                        r := HTTP.get(f"{stack.url(s)}{p}", headers=headers, timeout=10)
                    ).status_code
                    == 200
                    else None
                ),
                timeout=30,
                interval=0.5,
            ) or HTTP.get(f"{stack.url(service)}{path}", headers=headers, timeout=10)
            expect(read.status_code == 200, f"{service} GET {path}: {read.status_code}")
        unauthorized = HTTP.get(f"{stack.url('metrics')}/v1/groups/{group_id}/active", timeout=10)
        expect(unauthorized.status_code == 401, f"no token: {unauthorized.status_code}")

        # All four targets up, as Prometheus sees them.
        def targets_up() -> dict[str, str]:
            data = HTTP.get(f"{prom}/api/v1/targets", timeout=5).json()["data"]
            return {t["labels"]["service"]: t["health"] for t in data["activeTargets"]}

        health = wait_until(
            lambda: set(targets_up().values()) == {"up"} and targets_up(), timeout=20, interval=0.5
        )
        assert health == dict.fromkeys(stack.ports, "up"), targets_up()
        assert by_label(query(prom, 'up{job="qunyun"}'), "service") == dict.fromkeys(
            stack.ports, 1.0
        )

        # Domain counters moved: each check waits for the next scrapes.
        n = len(events)
        checks: list[tuple[str, str, Callable[[list[dict[str, Any]]], bool]]] = [
            (
                "ingest accepted and duplicate events",
                'sum by (outcome) (qunyun_ingest_events_total{source="generic-test"})',
                lambda r: (
                    by_label(r, "outcome").get("accepted", 0) >= n
                    and by_label(r, "outcome").get("duplicate", 0) >= n
                ),
            ),
            (
                "ingest webhook body size observed",
                'sum(qunyun_ingest_webhook_body_bytes_count{platform="generic"})',
                lambda r: bool(r) and float(r[0]["value"][1]) >= 2,
            ),
            (
                "events produced to Kafka",
                "sum(qunyun_kafka_produce_duration_seconds_count"
                f'{{topic="{settings.topic_events}"}})',
                lambda r: bool(r) and float(r[0]["value"][1]) >= 1,
            ),
            (
                "each consumer group processed every event",
                "sum by (group) (qunyun_consumer_records_total"
                f'{{outcome="processed",group=~"{prefix}.*"}})',
                lambda r: all(by_label(r, "group").get(g, 0) >= n for g in event_groups),
            ),
            (
                "consumer lag exported for each group",
                f'max by (group) (qunyun_consumer_lag_messages{{group=~"{prefix}.*"}})',
                lambda r: set(by_label(r, "group")) >= groups,
            ),
            (
                "dead-letter counters exported at zero for each group",
                f'sum by (group) (qunyun_deadletter_records_total{{group=~"{prefix}.*"}})',
                lambda r: (
                    set(by_label(r, "group")) >= groups
                    and set(by_label(r, "group").values()) == {0.0}
                ),
            ),
            (
                "consumer batch latency observed for each group",
                "sum by (group) (qunyun_consumer_batch_duration_seconds_count"
                f'{{group=~"{prefix}.*"}})',
                lambda r: set(by_label(r, "group")) >= groups,
            ),
            (
                "metrics applied the events",
                "sum(qunyun_metrics_events_applied_total)",
                lambda r: bool(r) and float(r[0]["value"][1]) >= n,
            ),
            (
                "moderation evaluated the messages",
                "sum(qunyun_moderation_messages_evaluated_total)",
                lambda r: bool(r) and float(r[0]["value"][1]) >= len(members) + 1,
            ),
            (
                "moderation decided on the ad and published the action",
                'sum(qunyun_moderation_decisions_total{rule_kind="keywords",mode="enforce"})'
                ' and sum(qunyun_moderation_actions_published_total{action="delete"})',
                lambda r: bool(r) and float(r[0]["value"][1]) >= 1,
            ),
            (
                "campaigns counted the check-ins",
                'sum(qunyun_campaigns_participations_total{kind="checkin"})',
                lambda r: bool(r) and float(r[0]["value"][1]) >= len(members),
            ),
            (
                "campaigns granted check-in points",
                'sum(qunyun_campaigns_points_granted_total{kind="checkin"})',
                lambda r: bool(r) and float(r[0]["value"][1]) >= 10 * len(members),
            ),
            (
                "campaigns published the start and timed the scheduler",
                'sum(qunyun_campaigns_notifications_published_total{kind="started"})'
                " and sum(qunyun_campaigns_scheduler_lag_seconds_count)",
                lambda r: bool(r) and float(r[0]["value"][1]) >= 1,
            ),
            (
                "HTTP requests counted per service and status",
                'sum by (service, status) (qunyun_http_requests_total{route=~"/v1/.+"})',
                lambda r: (
                    {
                        (x["metric"]["service"], x["metric"]["status"])
                        for x in r
                        if float(x["value"][1]) > 0
                    }
                    >= {("ingest", "202"), ("metrics", "200"), ("metrics", "401")}
                ),
            ),
            (
                "HTTP latency histogram per service",
                "sum by (service) (qunyun_http_request_duration_seconds_count)",
                lambda r: set(by_label(r, "service")) == set(stack.ports),
            ),
        ]
        if "delivery" in stack.ports:
            # The ad's delete action reaches delivery; the generic test source has no
            # platform client, so it ends without a call (no_route), receipted once.
            checks += [
                (
                    "delivery consumed the moderation action",
                    "sum(qunyun_consumer_records_total"
                    f'{{outcome="processed",group="{prefix}delivery"}})',
                    lambda r: bool(r) and float(r[0]["value"][1]) >= 1,
                ),
                (
                    "delivery receipted the action",
                    "sum(qunyun_delivery_receipts_total)",
                    lambda r: bool(r) and float(r[0]["value"][1]) >= 1,
                ),
            ]
        pending = checks

        def all_pass() -> bool:
            nonlocal pending
            pending = [c for c in pending if not c[2](query(prom, c[1]))]
            return not pending

        wait_until(all_pass, timeout=40, interval=0.5)
        problems += [f"{what}: {expr} -> {query(prom, expr)}" for what, expr, _ in pending]

        # Each process's own exposition: lint clean, no ids, its agreed metrics declared.
        ids = [group_id, *members, *(e["id"] for e in events)]
        for service in stack.ports:
            exposition = HTTP.get(f"{stack.url(service)}/metrics", timeout=10).text
            problems += [f"{service}: {p}" for p in lint_problems(promtool, exposition, ids)]
            for name in SERVICE_METRICS[service]:
                kind = AGREED[name][0]
                expect(f"# TYPE {name} {kind}" in exposition, f"{service} lacks {kind} {name}")

        # Every dashboard query runs on the real series (no matching or type error).
        for title, expr in queries(dashboard()):
            live = substitute_grafana(expr, interval="10s", variable=".+")
            answer = HTTP.get(f"{prom}/api/v1/query", params={"query": live}, timeout=5)
            expect(answer.status_code == 200, f"dashboard {title!r}: {live} -> {answer.text}")

        # The alert rules load and evaluate without errors on real series.
        rules = HTTP.get(f"{prom}/api/v1/rules", timeout=5).json()["data"]["groups"]
        loaded = {r["name"]: r for g in rules for r in g["rules"]}
        rules_file = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
        assert set(loaded) == {r["alert"] for g in rules_file["groups"] for r in g["rules"]}
        wait_until(
            lambda: all(r.get("lastEvaluation", "").startswith("2") for r in rules),
            timeout=5,
            interval=0.5,
        )
        errors = {name: r.get("lastError") for name, r in loaded.items() if r["health"] == "err"}
        assert not errors, errors
        assert query(prom, 'ALERTS{alertname="QunyunServiceDown"}') == []

        # A service that dies is seen down and its alert goes pending at once.
        stack.stop("campaigns")
        pending = wait_until(
            lambda: query(prom, 'ALERTS{alertname="QunyunServiceDown",alertstate="pending"}'),
            timeout=15,
            interval=0.5,
        )
        assert [a["metric"]["service"] for a in pending] == ["campaigns"], pending
        assert by_label(query(prom, 'up{job="qunyun"}'), "service")["campaigns"] == 0.0

    assert not problems, "\n".join(problems)
