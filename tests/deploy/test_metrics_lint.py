"""Every service's /metrics passes `promtool check metrics` and carries no unbounded label."""

from __future__ import annotations

import importlib
import json
import uuid
from datetime import UTC, datetime

import pytest

from services.common.contracts.events import parse_event
from tests.deploy.lint import lint_problems, promtool_lint
from tests.deploy.traffic import SOURCE, generic_events, signed_webhook
from tests.support import auth, produce_events, wait_until

SERVICES = ["ingest", "metrics", "moderation", "campaigns", "delivery"]


def test_promtool_flags_a_bad_exposition(promtool):
    """The lint this file relies on does fail: a counter without _total, a non-base unit."""
    bad = (
        "# HELP qunyun_bad_things Things.\n# TYPE qunyun_bad_things counter\n"
        "qunyun_bad_things 1\n"
        "# HELP qunyun_bad_latency_milliseconds Latency.\n"
        "# TYPE qunyun_bad_latency_milliseconds gauge\nqunyun_bad_latency_milliseconds 3\n"
    )
    result = promtool_lint(promtool, bad)
    assert result.returncode != 0
    assert "_total" in result.stdout + result.stderr
    assert "base unit" in result.stdout + result.stderr


@pytest.mark.parametrize("service", SERVICES)
def test_metrics_lint_clean(service, make_settings, run_app, producer, tokens, promtool):
    settings = make_settings()
    run = uuid.uuid4().hex[:10]
    group_id = f"lint:{run}"
    members = [f"lint:{run}:member-{i}" for i in range(2)]
    events = generic_events(group_id, members, run)
    app = importlib.import_module(f"services.{service}.app").create_app(settings)
    with run_app(app) as client:
        wait_until(lambda: client.get("/readyz").status_code == 200, timeout=30)
        # Requests of every kind, so the HTTP metrics have samples to lint.
        client.get("/healthz")
        client.get("/openapi.json")
        client.get(f"/v1/groups/{group_id}/nothing-here", headers=auth(tokens.reader))
        client.get(f"/v1/groups/{group_id}/activity")  # no token: 401 (or 404 on ingest)
        if service == "ingest":
            body, headers = signed_webhook(events)
            client.post(f"/v1/webhooks/{SOURCE}", content=body, headers=headers)
        elif service == "delivery":
            # A moderation action through the consumer: its receipt and queue depth exist.
            record = action_record(group_id, members[0], run)
            producer.send(
                settings.topic_moderation_actions,
                key=group_id.encode(),
                value=json.dumps(record).encode(),
            ).get(timeout=30)
            group = settings.consumer_group_prefix + service
            needle = f'qunyun_consumer_records_total{{group="{group}"'
            wait_until(lambda: needle in client.get("/metrics").text, timeout=40, interval=0.3)
        else:
            # Records through the consumer, so consumer counters, lag and batch timing exist.
            produce_events(
                producer,
                settings.topic_events,
                [parse_event({**e, "source": SOURCE}) for e in events],
            )
            group = settings.consumer_group_prefix + service
            needle = f'qunyun_consumer_records_total{{group="{group}"'
            wait_until(lambda: needle in client.get("/metrics").text, timeout=40, interval=0.3)
        response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    body = response.text
    if service != "ingest":
        assert needle in body, f"{group} consumed nothing in 40 s"

    problems = lint_problems(promtool, body, [group_id, *members, *(e["id"] for e in events)])
    assert not problems, f"{service}: " + "\n".join(problems)


def action_record(group_id: str, member_id: str, run: str) -> dict[str, object]:
    """A moderation.actions.v1 record (a delete of one message) through the test source."""
    return {
        "id": f"{run}-action",
        "case_id": f"{run}-case",
        "group_id": group_id,
        "member_id": member_id,
        "event_id": f"{run}-ad",
        "message_id": f"{run}-ad",
        "action": "delete",
        "duration_seconds": None,
        "rule_id": None,
        "reason": "lint",
        "created_at": datetime.now(UTC).isoformat(),
        "source": SOURCE,
    }


def test_id_labels_and_leaked_ids_are_caught(promtool):
    body = (
        "# HELP qunyun_x_messages_total Messages.\n# TYPE qunyun_x_messages_total counter\n"
        'qunyun_x_messages_total{member_id="slack:T1:U9"} 1\n'
    )
    problems = lint_problems(promtool, body, ["slack:T1:U9"])
    assert any("id-like label" in p for p in problems)
    assert any("'slack:T1:U9' appears" in p for p in problems)
