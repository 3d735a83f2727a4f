"""Write deploy/grafana/dashboards/qunyun.json: `python deploy/grafana/generate_dashboard.py`.

Built with grafana-foundation-sdk (dev extra). Edit the tables below, run this file and commit
both (tests/deploy/test_dashboard.py fails when they differ). Every query may use only the
agreed metric names of tests/deploy/agreed.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as builders
from grafana_foundation_sdk.builders import prometheus, stat, timeseries
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DataSourceRef,
    Threshold,
    ThresholdsMode,
    VariableModel,
    VariableOption,
    VariableRefresh,
    VariableSort,
)

OUT = Path(__file__).resolve().parent / "dashboards" / "qunyun.json"
DS = DataSourceRef(type_val="prometheus", uid="${datasource}")
RATE = "$__rate_interval"
API = 'route!~"/metrics|/healthz|/readyz"'  # the API routes, not the probes
GRP = 'group=~"$group"'
INGEST_V1 = 'service="ingest",route=~"/v1/.+"'
RATIO_503 = (
    f'sum(rate(qunyun_http_requests_total{{{INGEST_V1},status="503"}}[{RATE}]))'
    f" / sum(rate(qunyun_http_requests_total{{{INGEST_V1}}}[{RATE}]))"
)


def rate(by: str, metric: str, selector: str = "") -> str:
    """`sum by (by) (rate(metric{selector}[$__rate_interval]))`; no `by` sums everything."""
    grouping = f" by ({by}) " if by else ""
    return f"sum{grouping}(rate({metric}{selector}[{RATE}]))"


def quantiles(metric: str, by: str = "", selector: str = "") -> list[tuple[str, str]]:
    """p50 and p99 of a histogram, per `by` labels."""
    legend = " ".join(f"{{{{{label.strip()}}}}}" for label in by.split(",") if label.strip())
    le = f"{by}, le" if by else "le"
    return [
        (
            f"histogram_quantile({q}, sum by ({le}) (rate({metric}_bucket{selector}[{RATE}])))",
            f"p{round(float(q) * 100)} {legend}".strip(),
        )
        for q in ("0.5", "0.99")
    ]


class Graph(NamedTuple):
    """A time series panel: (PromQL, legend) pairs, a unit and a width on the 24-column grid."""

    title: str
    queries: list[tuple[str, str]]
    unit: str = "short"
    width: int = 8
    description: str = ""
    stack: bool = False


class Stat(NamedTuple):
    """A single-number panel with colour thresholds [(colour, from value)]."""

    title: str
    expr: str
    unit: str = "short"
    thresholds: tuple[tuple[str, float | None], ...] = (("green", None),)


ROWS: list[tuple[str, list[Graph | Stat]]] = [
    (
        "Overview",
        [
            Stat(
                "Services up",
                'sum(up{job="qunyun"})',
                thresholds=(("red", None), ("orange", 1), ("green", 5)),
            ),
            Stat(
                "Webhook events accepted /s",
                rate("", "qunyun_ingest_events_total", '{outcome="accepted"}'),
                "ops",
            ),
            Stat(
                "Ingest 503 ratio (Kafka back-pressure)",
                RATIO_503,
                "percentunit",
                (("green", None), ("orange", 0.01), ("red", 0.05)),
            ),
            Stat(
                "Max consumer lag",
                "max(sum by (group, topic) (max by (group, topic, partition) "
                "(qunyun_consumer_lag_messages)))",
                thresholds=(("green", None), ("orange", 1000), ("red", 10000)),
            ),
            Stat(
                "Dead letters (1h)",
                "sum(increase(qunyun_deadletter_records_total[1h]))",
                thresholds=(("green", None), ("red", 1)),
            ),
            Stat(
                "Campaign scheduler p99 lag",
                "histogram_quantile(0.99, sum by (le) "
                "(rate(qunyun_campaigns_scheduler_lag_seconds_bucket[10m])))",
                "s",
                (("green", None), ("orange", 10), ("red", 60)),
            ),
        ],
    ),
    (
        "Event flow: webhooks → ingest → Kafka",
        [
            Graph(
                "Webhook events /s by platform and outcome",
                [
                    (
                        rate("platform, outcome", "qunyun_ingest_events_total"),
                        "{{platform}} {{outcome}}",
                    )
                ],
                "ops",
                12,
                "accepted: new and in Kafka; duplicate: same source and id within 24 h; "
                "ignored: platform events without a message or membership change; "
                "rejected: invalid.",
            ),
            Graph(
                "Webhook events /s by type",
                [(rate("type", "qunyun_ingest_events_total", '{outcome="accepted"}'), "{{type}}")],
                "ops",
                12,
                stack=True,
            ),
            Graph(
                "Webhook responses /s by status",
                [(rate("status", "qunyun_http_requests_total", f"{{{INGEST_V1}}}"), "{{status}}")],
                "reqps",
                description="202 accepted; 401 bad signature; 413 too large; 422 invalid; "
                "503 Kafka back-pressure.",
            ),
            Graph(
                "Kafka produce latency by topic",
                quantiles("qunyun_kafka_produce_duration_seconds", "topic"),
                "s",
                description="Send until acks=all for one produce call "
                "(a webhook batch waits once).",
            ),
            Graph(
                "Kafka produce errors /s by topic",
                [(rate("topic", "qunyun_kafka_produce_errors_total"), "{{topic}}")],
                "ops",
            ),
            Graph(
                "Webhook body size by platform",
                quantiles("qunyun_ingest_webhook_body_bytes", "platform"),
                "bytes",
            ),
            Graph(
                "Dedup marks lost /s",
                [
                    (
                        rate("", "qunyun_ingest_dedup_commit_failures_total"),
                        "batches in Kafka not marked seen",
                    )
                ],
                "ops",
                description="Kafka acknowledged the batch but Redis could not record it as seen: "
                "a platform redelivery of it would be sent again (consumers absorb it: they are "
                "idempotent).",
            ),
            Graph("Ingest 503 ratio", [(RATIO_503, "503 ratio")], "percentunit"),
        ],
    ),
    (
        "Consumer group $group",
        [
            Graph(
                "Records /s by outcome",
                [
                    (
                        rate("topic, outcome", "qunyun_consumer_records_total", f"{{{GRP}}}"),
                        "{{topic}} {{outcome}}",
                    )
                ],
                "ops",
            ),
            Graph(
                "Lag (records behind)",
                [
                    (
                        "sum by (topic) (max by (topic, partition) "
                        f"(qunyun_consumer_lag_messages{{{GRP}}}))",
                        "{{topic}} total",
                    ),
                    (
                        f"max by (topic, partition) (qunyun_consumer_lag_messages{{{GRP}}})",
                        "{{topic}}/{{partition}}",
                    ),
                ],
                description="High watermark minus committed position, per partition and in total.",
            ),
            Graph(
                "Dead letters and errors /s",
                [
                    (
                        rate("topic", "qunyun_deadletter_records_total", f"{{{GRP}}}"),
                        "dead-lettered from {{topic}}",
                    ),
                    (
                        rate("kind", "qunyun_consumer_errors_total", f"{{{GRP}}}"),
                        "error: {{kind}}",
                    ),
                ],
                "ops",
                description="transient: a dependency is down (the loop waits); handler: a record "
                "failed (retried, then dead-lettered); decode: not a valid event.",
            ),
            Graph(
                "Batch handling latency",
                quantiles("qunyun_consumer_batch_duration_seconds", "", f"{{{GRP}}}"),
                "s",
                12,
            ),
            Graph(
                "Batch size (records per poll)",
                [
                    (
                        f"sum(rate(qunyun_consumer_records_total{{{GRP}}}[{RATE}])) / "
                        f"sum(rate(qunyun_consumer_batch_duration_seconds_count{{{GRP}}}[{RATE}]))",
                        "records / batch",
                    )
                ],
                width=12,
            ),
        ],
    ),
    (
        "Metrics service",
        [
            Graph(
                "Events applied /s by type",
                [
                    (rate("type", "qunyun_metrics_events_applied_total"), "{{type}}"),
                    (rate("", "qunyun_metrics_duplicates_skipped_total"), "duplicates skipped"),
                    (rate("", "qunyun_metrics_events_too_old_total"), "too old, ignored"),
                ],
                "ops",
                12,
            ),
            Graph(
                "Redis apply latency per batch",
                quantiles("qunyun_metrics_batch_apply_duration_seconds"),
                "s",
                12,
            ),
        ],
    ),
    (
        "Moderation",
        [
            Graph(
                "Messages evaluated /s",
                [(rate("", "qunyun_moderation_messages_evaluated_total"), "evaluated")],
                "ops",
            ),
            Graph(
                "Decisions /s by rule kind and action (enforced)",
                [
                    (
                        rate(
                            "rule_kind, action",
                            "qunyun_moderation_decisions_total",
                            '{mode="enforce"}',
                        ),
                        "{{rule_kind}} → {{action}}",
                    )
                ],
                "ops",
                stack=True,
            ),
            Graph(
                "Shadow decisions /s (rules on trial, not enforced)",
                [
                    (
                        rate(
                            "rule_kind, action",
                            "qunyun_moderation_decisions_total",
                            '{mode="shadow"}',
                        ),
                        "{{rule_kind}} → {{action}}",
                    )
                ],
                "ops",
                stack=True,
            ),
            Graph(
                "Actions published /s",
                [(rate("action", "qunyun_moderation_actions_published_total"), "{{action}}")],
                "ops",
                12,
                stack=True,
            ),
            Graph(
                "Evaluation latency per message",
                quantiles("qunyun_moderation_evaluation_duration_seconds"),
                "s",
                12,
            ),
        ],
    ),
    (
        "Campaigns",
        [
            Graph(
                "Participations /s by kind",
                [(rate("kind", "qunyun_campaigns_participations_total"), "{{kind}}")],
                "ops",
            ),
            Graph(
                "Grants /s and points granted /s by kind",
                [
                    (rate("kind", "qunyun_campaigns_grants_total"), "grants {{kind}}"),
                    (rate("kind", "qunyun_campaigns_points_granted_total"), "points {{kind}}"),
                ],
                "ops",
            ),
            Graph(
                "Notifications published /s by kind",
                [(rate("kind", "qunyun_campaigns_notifications_published_total"), "{{kind}}")],
                "ops",
            ),
            Graph(
                "Scheduler lag (due → fired)",
                quantiles("qunyun_campaigns_scheduler_lag_seconds"),
                "s",
                24,
                "How late an announcement, reminder, start, end or draw fired after it was due.",
            ),
        ],
    ),
    (
        "Delivery",
        [
            Graph(
                "Platform calls /s by platform and outcome",
                [
                    (
                        rate("platform, outcome", "qunyun_delivery_calls_total"),
                        "{{platform}} {{outcome}}",
                    )
                ],
                "ops",
                12,
                "One per call attempt. failed includes 429s and 5xx that are retried; "
                "forbidden (401/403, no admin rights) is never retried.",
            ),
            Graph(
                "Receipts /s by outcome",
                [(rate("outcome", "qunyun_delivery_receipts_total"), "{{outcome}}")],
                "ops",
                12,
                "The final outcome of each record: delivered, recorded, unsupported, forbidden, "
                "expired, failed (after its retries), no_route (no credentials).",
                stack=True,
            ),
            Graph(
                "Retries /s by platform and reason",
                [
                    (
                        rate("platform, reason", "qunyun_delivery_retries_total"),
                        "{{platform}} {{reason}}",
                    ),
                    (
                        rate("platform", "qunyun_delivery_unknown_outcome_retries_total"),
                        "{{platform}} unknown outcome",
                    ),
                ],
                "ops",
                description="rate_limited: the platform answered 429 with a hint; error: 5xx or "
                "a timeout. Unknown outcome: the call may have taken effect and is repeated.",
            ),
            Graph(
                "Rate-limit waits /s by source and cause",
                [
                    (
                        rate("source, cause", "qunyun_delivery_rate_limit_waits_total"),
                        "{{source}} {{cause}}",
                    )
                ],
                "ops",
                description="pacing: our token bucket for the source or group was empty; "
                "hint: the platform asked us to wait (retry_after, Retry-After).",
            ),
            Graph(
                "Queue depth by source",
                [
                    (
                        "max by (source) (qunyun_delivery_queue_depth)",
                        "{{source}}",
                    )
                ],
                description="Records waiting or in flight (every replica reports the same "
                "number: max, not sum). `-`: records without a source.",
            ),
        ],
    ),
    (
        "HTTP APIs",
        [
            Graph(
                "Requests /s by service",
                [(rate("service", "qunyun_http_requests_total", f"{{{API}}}"), "{{service}}")],
                "reqps",
            ),
            Graph(
                "5xx ratio by service",
                [
                    (
                        rate("service", "qunyun_http_requests_total", f'{{{API},status=~"5.."}}')
                        + " / "
                        + rate("service", "qunyun_http_requests_total", f"{{{API}}}"),
                        "{{service}}",
                    )
                ],
                "percentunit",
            ),
            Graph(
                "4xx /s by service and status",
                [
                    (
                        rate(
                            "service, status",
                            "qunyun_http_requests_total",
                            f'{{{API},status=~"4.."}}',
                        ),
                        "{{service}} {{status}}",
                    )
                ],
                "reqps",
            ),
            Graph(
                "Latency p50 / p99 by service",
                quantiles("qunyun_http_request_duration_seconds", "service", f"{{{API}}}"),
                "s",
                12,
            ),
            Graph(
                "Slowest routes (p99)",
                [
                    (
                        "topk(10, histogram_quantile(0.99, sum by (service, method, route, le) "
                        f"(rate(qunyun_http_request_duration_seconds_bucket{{{API}}}[{RATE}]))))",
                        "{{service}} {{method}} {{route}}",
                    )
                ],
                "s",
                12,
            ),
        ],
    ),
]


def graph_panel(spec: Graph) -> timeseries.Panel:
    panel = (
        timeseries.Panel()
        .title(spec.title)
        .datasource(DS)
        .unit(spec.unit)
        .span(spec.width)
        .height(8)
        .draw_style(common.GraphDrawStyle.LINE)
        .line_width(1)
        .fill_opacity(10)
        .show_points(common.VisibilityMode.NEVER)
        .stacking(
            common_builders.StackingConfig()
            .mode(common.StackingMode.NORMAL if spec.stack else common.StackingMode.NONE)
            .group("A")
        )
        .legend(
            common_builders.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.TABLE)
            .placement(common.LegendPlacement.BOTTOM)
            .show_legend(True)
            .calcs(["mean", "max"])
        )
        .tooltip(
            common_builders.VizTooltipOptions()
            .mode(common.TooltipDisplayMode.MULTI)
            .sort(common.SortOrder.DESCENDING)
        )
    )
    if spec.description:
        panel = panel.description(spec.description)
    for i, (expr, legend) in enumerate(spec.queries):
        panel = panel.with_target(
            prometheus.Dataquery()
            .datasource(DS)
            .expr(expr)
            .legend_format(legend)
            .ref_id(chr(65 + i))
            .range()
        )
    return panel


def stat_panel(spec: Stat) -> stat.Panel:
    steps = [Threshold(color=colour, value=value) for colour, value in spec.thresholds]
    return (
        stat.Panel()
        .title(spec.title)
        .datasource(DS)
        .unit(spec.unit)
        .span(4)
        .height(5)
        .thresholds(builders.ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps(steps))
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .color_mode(common.BigValueColorMode.BACKGROUND)
        .graph_mode(common.BigValueGraphMode.AREA)
        .with_target(prometheus.Dataquery().datasource(DS).expr(spec.expr).ref_id("A").instant())
    )


def variables() -> list[Builder[VariableModel]]:
    consumer_groups = "label_values(qunyun_consumer_records_total, group)"  # Grafana's syntax
    return [
        builders.DatasourceVariable("datasource")
        .label("Data source")
        .type("prometheus")
        .current(VariableOption(text="Prometheus", value="qunyun-prometheus")),
        builders.QueryVariable("group")
        .label("Consumer group")
        .datasource(DS)
        .query({"query": consumer_groups, "refId": "group"})
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .include_all(True)
        .multi(True)
        .current(VariableOption(text=["All"], value=["$__all"]))
        .sort(VariableSort.ALPHABETICAL_ASC),
    ]


def build() -> builders.Dashboard:
    board = (
        builders.Dashboard("qunyun")
        .uid("qunyun-overview")
        .description(
            "Event flow, consumers, moderation, campaigns, delivery and HTTP APIs of qunyun."
        )
        .tags(["qunyun"])
        .editable()
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .refresh("30s")
        .time("now-3h", "now")
        .timezone("")
        .version(1)
        .variables(variables())
    )
    for title, specs in ROWS:
        row = builders.Row(title).collapsed(False)
        if "$group" in title:
            row = row.repeat("group")
        board = board.with_row(row)
        for spec in specs:
            board = board.with_panel(
                graph_panel(spec) if isinstance(spec, Graph) else stat_panel(spec)
            )
    return board


def render() -> str:
    data = json.loads(json.dumps(build().build(), cls=JSONEncoder))
    for number, panel in enumerate(data["panels"], start=1):
        panel["id"] = number  # Grafana wants unique panel ids; the builder leaves them out
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(render())
    print(f"wrote {OUT}")
