"""No secret ever appears in a log line, an error body or a /metrics page.

The four services run as real processes (DEBUG logging, so the widest log surface) with the
test config's known secrets: webhook secrets, the Feishu encrypt key and the API tokens.
Traffic includes failures of every kind: forged and cross-source signatures, secrets sent
to the wrong place, near-miss and misplaced tokens, 401/403/404/422 answers. Two more
processes start against dead dependencies whose URLs carry passwords, so connection errors
get logged. Then every log line of every process, every response body and every /metrics
page is searched for each secret: none may be found.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import httpx
import orjson

from services.platforms.generic.inbound import generic_signature
from services.platforms.slack.inbound import slack_signature
from tests.faults.harness import FIGURES
from tests.ingest.helpers import (
    feishu_body,
    feishu_encrypted,
    generic_headers,
    load,
    slack_headers,
    telegram_headers,
)
from tests.support import LIMITED_GROUP, SOURCE_SECRETS, auth
from tools.localstack import free_port, stop
from tools.stack import HTTP, service_stack, settings_env, start_service

JSON = {"Content-Type": "application/json"}
REDIS_PASSWORD = "redis-pass-" + uuid.uuid4().hex[:12]
DB_PASSWORD = "db-pass-" + uuid.uuid4().hex[:12]


def secret_values(tokens) -> dict[str, str]:
    """Name every secret value the test knows, in each form it could leak in."""
    values: dict[str, str] = {}
    for source_id, (_, secret, encrypt_key) in SOURCE_SECRETS.items():
        values[f"{source_id} secret"] = secret
        if encrypt_key:
            values[f"{source_id} encrypt key"] = encrypt_key
    for name in ("admin", "reader", "limited"):
        token = getattr(tokens, name)
        values[f"{name} token"] = token
        values[f"{name} Authorization header"] = f"Bearer {token}"
        values[f"{name} token, random part"] = token.rsplit("_", 1)[1][:16]
    values["Redis password"] = REDIS_PASSWORD
    values["database password"] = DB_PASSWORD
    values.update({f"{k} (URL-quoted)": quote(v, safe="") for k, v in list(values.items())})
    return values


def webhook_traffic(client: httpx.Client) -> list[httpx.Response]:
    """Deliveries that fail in every way a secret could be echoed, and a few that succeed."""
    sent: list[httpx.Response] = []

    def post(source: str, body: bytes, headers: dict[str, str]) -> None:
        sent.append(client.post(f"/v1/webhooks/{source}", content=body, headers=headers))

    now = str(int(time.time()))
    event = {
        "id": f"secrets-{uuid.uuid4().hex}",
        "type": "message.created",
        "group_id": "generic:secrets",
        "member_id": "generic:m1",
        "occurred_at": "2026-11-21T08:00:00+00:00",
        "data": {"message_id": "m1", "text": "hello", "kind": "text"},
    }
    good = orjson.dumps(event)
    post("generic-test", good, generic_headers(good))
    post("generic-test", good, generic_headers(good))  # a duplicate
    post(
        "generic-test",
        good,
        {**JSON, "X-Qunyun-Timestamp": now, "X-Qunyun-Signature": "v1=" + "0" * 64},
    )
    # The right secret sent where a signature belongs, and a body naming secrets.
    post(
        "generic-test",
        good,
        {
            **JSON,
            "X-Qunyun-Timestamp": now,
            "X-Qunyun-Signature": SOURCE_SECRETS["generic-test"][1],
        },
    )
    bad = orjson.dumps({**event, "type": "nope", "occurred_at": SOURCE_SECRETS["slack-test"][1]})
    post("generic-test", bad, generic_headers(bad))
    cross = generic_signature(SOURCE_SECRETS["slack-test"][1], now, good)
    post("generic-test", good, {**JSON, "X-Qunyun-Timestamp": now, "X-Qunyun-Signature": cross})

    slack = orjson.dumps(load("slack_url_verification"))
    post("slack-test", slack, slack_headers(slack))
    forged = slack_signature("not-the-secret", now, slack)
    post(
        "slack-test", slack, {**JSON, "X-Slack-Request-Timestamp": now, "X-Slack-Signature": forged}
    )
    post("slack-test", slack, slack_headers(slack, at=time.time() - 1000))

    telegram = load("telegram_message")
    post("telegram-test", b'{"update_id": "x"}', telegram_headers())
    post(
        "telegram-test", orjson.dumps(telegram), telegram_headers(SOURCE_SECRETS["generic-test"][1])
    )
    post("telegram-test", orjson.dumps(telegram), telegram_headers("wrong-token"))

    invalid_feishu = load("feishu_message_receive")
    del invalid_feishu["header"]["event_id"]
    post("feishu-test", feishu_body(invalid_feishu), JSON)  # right token, invalid event: 422
    post("feishu-test", feishu_body(load("feishu_url_verification")), JSON)
    post("feishu-test", feishu_body(invalid_feishu, source="feishu-enc"), JSON)  # other's token
    body, headers = feishu_encrypted(invalid_feishu)
    post("feishu-enc", body, headers)
    body, headers = feishu_encrypted(load("feishu_message_receive"))
    post("feishu-enc", body, {**headers, "X-Lark-Signature": "0" * 64})
    post("feishu-enc", feishu_body(load("feishu_message_receive"), source="feishu-enc"), JSON)
    return sent


def rest_traffic(client: httpx.Client, service: str, tokens) -> list[httpx.Response]:
    """Refused, invalid, missing and successful calls with every token, right and wrong."""
    paths = {
        "metrics": ("/v1/groups/{g}/leaderboard", "/v1/groups/{g}/leaderboard?days=-1"),
        "moderation": ("/v1/groups/{g}/rules", "/v1/groups/{g}/rules/no-such-rule"),
        "campaigns": ("/v1/groups/{g}/campaigns", "/v1/groups/{g}/campaigns/no-such-campaign"),
    }[service]
    group = "test:secrets"
    ok, failing = (p.replace("{g}", quote(group, safe="")) for p in paths)
    calls = [
        ("GET", ok, auth(tokens.admin)),
        ("GET", failing, auth(tokens.admin)),
        ("GET", ok, {}),
        ("GET", ok, auth(tokens.admin + "x")),  # a near miss holding the real token
        ("GET", ok, {"Authorization": f"Basic {tokens.admin}"}),
        ("GET", ok, {"Authorization": tokens.admin}),
        ("GET", ok, {"X-Api-Key": tokens.admin}),
        ("GET", ok.replace(quote(group, safe=""), quote(LIMITED_GROUP)), auth(tokens.limited)),
        ("GET", ok, auth(tokens.limited)),
        ("POST", ok, auth(tokens.reader)),
        ("POST", ok, auth(tokens.admin)),  # no body: 422
        ("GET", ok + f"?cursor={tokens.admin}", auth(tokens.admin)),
    ]
    return [client.request(m, p, headers=h, json=None) for m, p, h in calls]


def broken_traffic(
    broken: list[tuple[str, int, subprocess.Popen[bytes], Path]], tokens
) -> list[httpx.Response]:
    """Make each broken service touch its dead dependency: readiness, a read, a webhook."""
    sent: list[httpx.Response] = []
    for name, port, proc, _ in broken:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                HTTP.get(f"{base}/healthz", timeout=2)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        if proc.poll() is not None:
            continue  # it refused to start without its dependency: its log says why
        with httpx.Client(base_url=base, timeout=30) as client:
            sent.append(client.get("/readyz"))
            if name == "ingest":
                event = {
                    "id": f"secrets-{uuid.uuid4().hex}",
                    "type": "member.joined",
                    "group_id": "generic:secrets",
                    "member_id": "generic:m2",
                    "occurred_at": "2026-11-21T08:00:00+00:00",
                    "data": {},
                }
                body = orjson.dumps(event)
                sent.append(
                    client.post(
                        "/v1/webhooks/generic-test", content=body, headers=generic_headers(body)
                    )
                )
            else:
                read = {"metrics": "leaderboard", "moderation": "rules"}[name]
                sent.append(client.get(f"/v1/groups/g/{read}", headers=auth(tokens.admin)))
    return sent


def start_broken(tmp_path: Path, settings) -> list[tuple[str, int, subprocess.Popen[bytes], Path]]:
    """Start services whose Redis, broker or database is gone, with passwords in the URLs."""
    env = {**os.environ, **settings_env(settings), "HOST": "127.0.0.1", "LOG_LEVEL": "DEBUG"}
    dead = {
        "metrics": {"REDIS_URL": f"redis://:{REDIS_PASSWORD}@127.0.0.1:{free_port()}/0"},
        "ingest": {"KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}"},
        "moderation": {
            "DATABASE_URL": f"postgresql://qunyun:{DB_PASSWORD}@127.0.0.1:{free_port()}/qunyun"
        },
    }
    started = []
    for name, override in dead.items():
        log, port = tmp_path / f"broken-{name}.log", free_port()
        started.append((name, port, start_service(name, port, {**env, **override}, log), log))
    return started


def test_no_secret_in_logs_error_bodies_or_metrics(make_settings, tokens, tmp_path):
    settings = make_settings(log_level="DEBUG")
    secrets = secret_values(tokens)
    bodies: list[str] = []
    metrics_pages: dict[str, str] = {}
    broken = start_broken(tmp_path, settings)
    try:
        with service_stack(settings, tmp_path / "logs") as stack:
            with httpx.Client(base_url=stack.url("ingest"), timeout=30) as client:
                responses = webhook_traffic(client)
            for service in ("metrics", "moderation", "campaigns"):
                with httpx.Client(base_url=stack.url(service), timeout=30) as client:
                    responses += rest_traffic(client, service, tokens)
            for service in stack.ports:
                metrics_pages[service] = HTTP.get(f"{stack.url(service)}/metrics").text
            bodies = [r.text for r in responses]
            logs = dict(stack.logs)
        broken_responses = broken_traffic(broken, tokens)
        bodies += [r.text for r in broken_responses]
        statuses = sorted({r.status_code for r in responses + broken_responses})
    finally:
        for _, _, proc, _ in broken:
            stop(proc)
    logs.update({f"broken-{name}": log for name, _, _, log in broken})
    lines = {name: path.read_text(errors="replace").splitlines() for name, path in logs.items()}
    found = [
        f"{what} in {where} line {n}: {line[:200]}"
        for where, log_lines in lines.items()
        for n, line in enumerate(log_lines, 1)
        for what, value in secrets.items()
        if value in line
    ]
    found += [
        f"{what} in response body {i}: {body[:200]}"
        for i, body in enumerate(bodies)
        for what, value in secrets.items()
        if value in body
    ]
    found += [
        f"{what} in /metrics of {service}"
        for service, page in metrics_pages.items()
        for what, value in secrets.items()
        if value in page
    ]
    scanned = sum(len(v) for v in lines.values())
    FIGURES.append(
        f"[faults:secrets] {len(secrets)} secret forms; {scanned} log lines from {len(lines)} "
        f"processes, {len(bodies)} response bodies (statuses {statuses}), "
        f"{len(metrics_pages)} /metrics pages scanned; {len(found)} leaks"
    )
    print(f"\n{FIGURES[-1]}")
    assert {401, 403, 404, 422, 503} <= set(statuses)
    assert sorted(r.status_code for r in broken_responses) == [503] * len(broken_responses)
    assert len(broken_responses) >= 4  # ingest and metrics answer 503 for their dead dependency
    assert all(len(v) >= 3 for v in lines.values()), {k: len(v) for k, v in lines.items()}
    assert not found, "\n".join(found[:40])
