"""Write deploy/grafana/dashboards/qunyun.json: `python deploy/grafana/generate_dashboard.py`.

The JSON is generated so that panels stay uniform and reviewable; edit this file, run it,
and commit both (tests/deploy/test_dashboard.py fails when they differ). Every query
may use only the agreed metric names of tests/deploy/agreed.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "dashboards" / "qunyun.json"
DS = {"type": "prometheus", "uid": "${datasource}"}
RATE = "$__rate_interval"
API_ROUTES = 'route!~"/metrics|/healthz|/readyz"'


class Layout:
    """Places panels left to right on Grafana's 24-column grid and numbers them."""

    def __init__(self) -> None:
        self.panels: list[dict[str, Any]] = []
        self.x = 0
        self.y = 0
        self.row_height = 0
        self.next_id = 1

    def _id(self) -> int:
        self.next_id += 1
        return self.next_id - 1

    def row(self, title: str, repeat: str | None = None) -> None:
        if self.x:
            self.y += self.row_height
            self.x = 0
        panel: dict[str, Any] = {
            "type": "row",
            "id": self._id(),
            "title": title,
            "collapsed": False,
            "gridPos": {"h": 1, "w": 24, "x": 0, "y": self.y},
            "panels": [],
        }
        if repeat:
            panel["repeat"] = repeat
        self.panels.append(panel)
        self.y += 1
        self.row_height = 0

    def add(self, panel: dict[str, Any], w: int, h: int = 8) -> None:
        if self.x + w > 24:
            self.y += self.row_height
            self.x = 0
            self.row_height = 0
        panel["id"] = self._id()
        panel["gridPos"] = {"h": h, "w": w, "x": self.x, "y": self.y}
        self.panels.append(panel)
        self.x += w
        self.row_height = max(self.row_height, h)


def target(expr: str, legend: str, ref: str) -> dict[str, Any]:
    return {"datasource": DS, "expr": expr, "legendFormat": legend, "refId": ref, "range": True}


def timeseries(
    title: str,
    queries: list[tuple[str, str]],
    unit: str = "short",
    description: str = "",
    stack: bool = False,
) -> dict[str, Any]:
    return {
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": DS,
        "targets": [target(e, legend, chr(65 + i)) for i, (e, legend) in enumerate(queries)],
        "fieldConfig": {
            "defaults": {
                "unit": unit,
                "custom": {
                    "drawStyle": "line",
                    "lineWidth": 1,
                    "fillOpacity": 10,
                    "showPoints": "never",
                    "stacking": {"mode": "normal" if stack else "none", "group": "A"},
                },
            },
            "overrides": [],
        },
        "options": {
            "legend": {"displayMode": "table", "placement": "bottom", "calcs": ["mean", "max"]},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
    }


def stat(
    title: str, expr: str, unit: str = "short", thresholds: list[tuple[str, float | None]] = ()
) -> dict[str, Any]:
    steps = [{"color": c, "value": v} for c, v in (thresholds or [("green", None)])]
    return {
        "type": "stat",
        "title": title,
        "datasource": DS,
        "targets": [{**target(expr, "", "A"), "instant": True, "range": False}],
        "fieldConfig": {
            "defaults": {"unit": unit, "thresholds": {"mode": "absolute", "steps": steps}},
            "overrides": [],
        },
        "options": {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "background",
            "graphMode": "area",
        },
    }


def quantiles(metric: str, by: str, selector: str = "") -> list[tuple[str, str]]:
    legend = " ".join(f"{{{{{label.strip()}}}}}" for label in by.split(",") if label.strip())
    out = []
    for q in ("0.5", "0.99"):
        expr = (
            f"histogram_quantile({q}, sum by ({by + ', ' if by else ''}le) "
            f"(rate({metric}_bucket{selector}[{RATE}])))"
        )
        out.append((expr, f"p{round(float(q) * 100)} {legend}".strip()))
    return out


def build() -> dict[str, Any]:
    lay = Layout()

    lay.row("Overview")
    lay.add(
        stat(
            "Services up",
            'sum(up{job="qunyun"})',
            thresholds=[("red", None), ("orange", 1), ("green", 4)],
        ),
        4,
        5,
    )
    lay.add(
        stat(
            "Webhook events accepted /s",
            f'sum(rate(qunyun_ingest_events_total{{outcome="accepted"}}[{RATE}]))',
            "ops",
        ),
        4,
        5,
    )
    lay.add(
        stat(
            "Ingest 503 ratio (Kafka back-pressure)",
            f'sum(rate(qunyun_http_requests_total{{service="ingest",route=~"/v1/.+",status="503"}}[{RATE}]))'
            f' / sum(rate(qunyun_http_requests_total{{service="ingest",route=~"/v1/.+"}}[{RATE}]))',
            "percentunit",
            [("green", None), ("orange", 0.01), ("red", 0.05)],
        ),
        4,
        5,
    )
    lay.add(
        stat(
            "Max consumer lag",
            "max(sum by (group, topic) (max by (group, topic, partition) "
            "(qunyun_consumer_lag_messages)))",
            thresholds=[("green", None), ("orange", 1000), ("red", 10000)],
        ),
        4,
        5,
    )
    lay.add(
        stat(
            "Dead letters (1h)",
            "sum(increase(qunyun_deadletter_records_total[1h]))",
            thresholds=[("green", None), ("red", 1)],
        ),
        4,
        5,
    )
    lay.add(
        stat(
            "Campaign scheduler p99 lag",
            "histogram_quantile(0.99, sum by (le) "
            "(rate(qunyun_campaigns_scheduler_lag_seconds_bucket[10m])))",
            "s",
            [("green", None), ("orange", 10), ("red", 60)],
        ),
        4,
        5,
    )

    lay.row("Event flow: webhooks → ingest → Kafka")
    lay.add(
        timeseries(
            "Webhook events /s by platform and outcome",
            [
                (
                    f"sum by (platform, outcome) (rate(qunyun_ingest_events_total[{RATE}]))",
                    "{{platform}} {{outcome}}",
                )
            ],
            "ops",
            "accepted: new and in Kafka; duplicate: same source and id within 24 h; "
            "ignored: platform events without a message or membership change; rejected: invalid.",
        ),
        12,
    )
    lay.add(
        timeseries(
            "Webhook events /s by type",
            [
                (
                    "sum by (type) "
                    f'(rate(qunyun_ingest_events_total{{outcome="accepted"}}[{RATE}]))',
                    "{{type}}",
                )
            ],
            "ops",
            stack=True,
        ),
        12,
    )
    lay.add(
        timeseries(
            "Webhook responses /s by status",
            [
                (
                    "sum by (status) (rate(qunyun_http_requests_total"
                    f'{{service="ingest",route=~"/v1/.+"}}[{RATE}]))',
                    "{{status}}",
                )
            ],
            "reqps",
            "202 accepted; 401 bad signature; 413 too large; 422 invalid; 503 Kafka back-pressure.",
        ),
        8,
    )
    lay.add(
        timeseries(
            "Kafka produce latency by topic",
            quantiles("qunyun_kafka_produce_duration_seconds", "topic"),
            "s",
            "Send until acks=all for one produce call (a webhook batch waits once).",
        ),
        8,
    )
    lay.add(
        timeseries(
            "Kafka produce errors /s by topic",
            [
                (
                    f"sum by (topic) (rate(qunyun_kafka_produce_errors_total[{RATE}]))",
                    "{{topic}}",
                )
            ],
            "ops",
        ),
        8,
    )
    lay.add(
        timeseries(
            "Webhook body size by platform",
            quantiles("qunyun_ingest_webhook_body_bytes", "platform"),
            "bytes",
        ),
        8,
    )
    lay.add(
        timeseries(
            "Dedup marks lost /s",
            [
                (
                    f"sum(rate(qunyun_ingest_dedup_commit_failures_total[{RATE}]))",
                    "batches in Kafka not marked seen",
                )
            ],
            "ops",
            "Kafka acknowledged the batch but Redis could not record it as seen: a platform "
            "redelivery of it would be sent again (consumers absorb it: they are idempotent).",
        ),
        8,
    )
    lay.add(
        timeseries(
            "Ingest 503 ratio",
            [
                (
                    "sum(rate(qunyun_http_requests_total"
                    f'{{service="ingest",route=~"/v1/.+",status="503"}}[{RATE}])) / '
                    "sum(rate(qunyun_http_requests_total"
                    f'{{service="ingest",route=~"/v1/.+"}}[{RATE}]))',
                    "503 ratio",
                )
            ],
            "percentunit",
        ),
        8,
    )

    grp = 'group=~"$group"'
    lay.row("Consumer group $group", repeat="group")
    lay.add(
        timeseries(
            "Records /s by outcome",
            [
                (
                    "sum by (topic, outcome) "
                    f"(rate(qunyun_consumer_records_total{{{grp}}}[{RATE}]))",
                    "{{topic}} {{outcome}}",
                )
            ],
            "ops",
        ),
        8,
    )
    lay.add(
        timeseries(
            "Lag (records behind)",
            [
                (
                    "sum by (topic) (max by (topic, partition) "
                    f"(qunyun_consumer_lag_messages{{{grp}}}))",
                    "{{topic}} total",
                ),
                (
                    f"max by (topic, partition) (qunyun_consumer_lag_messages{{{grp}}})",
                    "{{topic}}/{{partition}}",
                ),
            ],
            "short",
            "High watermark minus committed position, per partition and in total.",
        ),
        8,
    )
    lay.add(
        timeseries(
            "Dead letters and errors /s",
            [
                (
                    f"sum by (topic) (rate(qunyun_deadletter_records_total{{{grp}}}[{RATE}]))",
                    "dead-lettered from {{topic}}",
                ),
                (
                    f"sum by (kind) (rate(qunyun_consumer_errors_total{{{grp}}}[{RATE}]))",
                    "error: {{kind}}",
                ),
            ],
            "ops",
            "transient: a dependency is down (the loop waits); handler: a record failed "
            "(retried, then dead-lettered); decode: not a valid event.",
        ),
        8,
    )
    lay.add(
        timeseries(
            "Batch handling latency",
            quantiles("qunyun_consumer_batch_duration_seconds", "", f"{{{grp}}}"),
            "s",
        ),
        12,
    )
    lay.add(
        timeseries(
            "Batch size (records per poll)",
            [
                (
                    f"sum(rate(qunyun_consumer_records_total{{{grp}}}[{RATE}])) / "
                    f"sum(rate(qunyun_consumer_batch_duration_seconds_count{{{grp}}}[{RATE}]))",
                    "records / batch",
                )
            ],
        ),
        12,
    )

    lay.row("Metrics service")
    lay.add(
        timeseries(
            "Events applied /s by type",
            [
                (
                    f"sum by (type) (rate(qunyun_metrics_events_applied_total[{RATE}]))",
                    "{{type}}",
                ),
                (
                    f"sum(rate(qunyun_metrics_duplicates_skipped_total[{RATE}]))",
                    "duplicates skipped",
                ),
                (
                    f"sum(rate(qunyun_metrics_events_too_old_total[{RATE}]))",
                    "too old, ignored",
                ),
            ],
            "ops",
        ),
        12,
    )
    lay.add(
        timeseries(
            "Redis apply latency per batch",
            quantiles("qunyun_metrics_batch_apply_duration_seconds", ""),
            "s",
        ),
        12,
    )

    lay.row("Moderation")
    lay.add(
        timeseries(
            "Messages evaluated /s",
            [
                (
                    f"sum(rate(qunyun_moderation_messages_evaluated_total[{RATE}]))",
                    "evaluated",
                )
            ],
            "ops",
        ),
        8,
    )
    lay.add(
        timeseries(
            "Decisions /s by rule kind and action (enforced)",
            [
                (
                    "sum by (rule_kind, action) (rate(qunyun_moderation_decisions_total"
                    f'{{mode="enforce"}}[{RATE}]))',
                    "{{rule_kind}} → {{action}}",
                )
            ],
            "ops",
            stack=True,
        ),
        8,
    )
    lay.add(
        timeseries(
            "Shadow decisions /s (rules on trial, not enforced)",
            [
                (
                    "sum by (rule_kind, action) (rate(qunyun_moderation_decisions_total"
                    f'{{mode="shadow"}}[{RATE}]))',
                    "{{rule_kind}} → {{action}}",
                )
            ],
            "ops",
            stack=True,
        ),
        8,
    )
    lay.add(
        timeseries(
            "Actions published /s",
            [
                (
                    f"sum by (action) (rate(qunyun_moderation_actions_published_total[{RATE}]))",
                    "{{action}}",
                )
            ],
            "ops",
            stack=True,
        ),
        12,
    )
    lay.add(
        timeseries(
            "Evaluation latency per message",
            quantiles("qunyun_moderation_evaluation_duration_seconds", ""),
            "s",
        ),
        12,
    )

    lay.row("Campaigns")
    lay.add(
        timeseries(
            "Participations /s by kind",
            [
                (
                    f"sum by (kind) (rate(qunyun_campaigns_participations_total[{RATE}]))",
                    "{{kind}}",
                )
            ],
            "ops",
        ),
        8,
    )
    lay.add(
        timeseries(
            "Grants /s and points granted /s by kind",
            [
                (
                    f"sum by (kind) (rate(qunyun_campaigns_grants_total[{RATE}]))",
                    "grants {{kind}}",
                ),
                (
                    f"sum by (kind) (rate(qunyun_campaigns_points_granted_total[{RATE}]))",
                    "points {{kind}}",
                ),
            ],
            "ops",
        ),
        8,
    )
    lay.add(
        timeseries(
            "Notifications published /s by kind",
            [
                (
                    f"sum by (kind) (rate(qunyun_campaigns_notifications_published_total[{RATE}]))",
                    "{{kind}}",
                )
            ],
            "ops",
        ),
        8,
    )
    lay.add(
        timeseries(
            "Scheduler lag (due → fired)",
            quantiles("qunyun_campaigns_scheduler_lag_seconds", ""),
            "s",
            "How late an announcement, reminder, start, end or draw fired after it was due.",
        ),
        24,
    )

    lay.row("HTTP APIs")
    lay.add(
        timeseries(
            "Requests /s by service",
            [
                (
                    f"sum by (service) (rate(qunyun_http_requests_total{{{API_ROUTES}}}[{RATE}]))",
                    "{{service}}",
                )
            ],
            "reqps",
        ),
        8,
    )
    lay.add(
        timeseries(
            "5xx ratio by service",
            [
                (
                    "sum by (service) (rate(qunyun_http_requests_total"
                    f'{{{API_ROUTES},status=~"5.."}}[{RATE}])) / sum by (service) '
                    f"(rate(qunyun_http_requests_total{{{API_ROUTES}}}[{RATE}]))",
                    "{{service}}",
                )
            ],
            "percentunit",
        ),
        8,
    )
    lay.add(
        timeseries(
            "4xx /s by service and status",
            [
                (
                    "sum by (service, status) (rate(qunyun_http_requests_total"
                    f'{{{API_ROUTES},status=~"4.."}}[{RATE}]))',
                    "{{service}} {{status}}",
                )
            ],
            "reqps",
        ),
        8,
    )
    lay.add(
        timeseries(
            "Latency p50 / p99 by service",
            quantiles("qunyun_http_request_duration_seconds", "service", f"{{{API_ROUTES}}}"),
            "s",
        ),
        12,
    )
    lay.add(
        timeseries(
            "Slowest routes (p99)",
            [
                (
                    "topk(10, histogram_quantile(0.99, sum by (service, method, route, le) "
                    f"(rate(qunyun_http_request_duration_seconds_bucket{{{API_ROUTES}}}[{RATE}]))))",
                    "{{service}} {{method}} {{route}}",
                )
            ],
            "s",
        ),
        12,
    )

    return {
        "uid": "qunyun-overview",
        "title": "qunyun",
        "description": "Event flow, consumers, moderation, campaigns and HTTP APIs of qunyun.",
        "tags": ["qunyun"],
        "editable": True,
        "graphTooltip": 1,
        "refresh": "30s",
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-3h", "to": "now"},
        "timepicker": {},
        "timezone": "",
        "annotations": {"list": []},
        "links": [],
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Data source",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {"text": "Prometheus", "value": "qunyun-prometheus"},
                    "hide": 0,
                },
                {
                    "name": "group",
                    "label": "Consumer group",
                    "type": "query",
                    "datasource": DS,
                    "query": {
                        "query": "label_values(qunyun_consumer_records_total, group)",
                        "refId": "group",
                    },
                    "definition": "label_values(qunyun_consumer_records_total, group)",
                    "refresh": 2,
                    "includeAll": True,
                    "multi": True,
                    "current": {"text": ["All"], "value": ["$__all"]},
                    "sort": 1,
                    "hide": 0,
                },
            ]
        },
        "panels": lay.panels,
    }


def render() -> str:
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(render())
    print(f"wrote {OUT}")
