"""Sources reload without a restart: a new `[[sources]]` entry takes the next webhook, a
removed one answers 404, and a broken file keeps the running sources."""

from __future__ import annotations

import time
import uuid

import orjson
from prometheus_client import REGISTRY

from services.common.settings import Source, load_config, write_config
from services.ingest.app import create_app
from services.platforms.generic.inbound import generic_signature
from tests.ingest.helpers import events_on
from tests.support import wait_until

SECRET = "reloaded-generic-secret"


def rejections() -> float:
    labels = {"outcome": "rejected"}
    return REGISTRY.get_sample_value("qunyun_config_reloads_total", labels) or 0.0


def post(client, source_id: str, n: int, run: str):
    event = {
        "id": f"evt-{run}-{n}",
        "type": "message.created",
        "group_id": f"reload:{run}",
        "member_id": "m:1",
        "occurred_at": "2026-11-21T08:00:00+08:00",
        "data": {"message_id": f"msg-{n}", "text": "hello"},
    }
    body = orjson.dumps(event)
    ts = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "X-Qunyun-Timestamp": ts,
        "X-Qunyun-Signature": generic_signature(SECRET, ts, body),
    }
    return client.post(f"/v1/webhooks/{source_id}", content=body, headers=headers)


def test_new_source_takes_webhooks_without_restart_and_broken_file_keeps_it(
    tmp_path, config_path, make_settings, run_app, kafka_bootstrap
):
    path = tmp_path / "qunyun.toml"
    original = load_config(config_path)
    write_config(path, original)
    settings = make_settings(qunyun_config=str(path), kafka_produce_timeout_seconds=3.0)
    run = uuid.uuid4().hex[:8]
    source_id = f"added-{run}"
    with run_app(create_app(settings)) as client:
        assert post(client, source_id, 0, run).status_code == 404

        config = load_config(path)
        config.sources.append(Source(id=source_id, platform="generic", secret=SECRET))
        write_config(path, config)
        accepted = wait_until(lambda: post(client, source_id, 1, run).status_code == 202, 10)
        assert accepted, "a source added to the file must take webhooks without a restart"
        [event] = events_on(kafka_bootstrap, settings.topic_events, expect=1)
        assert event["source"] == source_id and event["id"] == f"evt-{run}-1"

        before = rejections()
        path.write_text(path.read_text() + '\n[[sources]]\nid = "bad id!"\nplatform = "x"\n')
        assert wait_until(lambda: rejections() > before, 10), "the broken file is reported"
        kept = not wait_until(lambda: post(client, source_id, 2, run).status_code != 202, 3)
        assert kept, "a broken file must keep the running sources"

        write_config(path, original)
        assert wait_until(lambda: post(client, source_id, 3, run).status_code == 404, 10)
