"""Delivery against a real broker, Redis and database; the platform double is the only stand-in.

`delivery()` starts the service app on this test's own topics with sources pointing at
the double; `send()` puts records on its topics; `receipts()` reads delivery.receipts.v1.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from kafka import KafkaProducer

from services.common.auth import token_entry
from services.common.settings import QunyunConfig, Settings, Source, write_config
from services.delivery.app import create_app
from tests.conftest import Tokens
from tests.support import read_topic, wait_until
from tools.platform_double import DoubleConfig, DoubleHandle, Group, start_double

FAST = {"rate_per_second": 1000.0, "rate_per_group_per_minute": 60000.0}
WECOM_AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"  # WeCom's sample EncodingAESKey


@pytest.fixture(scope="session")
def double() -> Iterator[DoubleHandle]:
    handle = start_double(DoubleConfig())
    yield handle
    handle.stop()


@pytest.fixture(autouse=True)
def clean_double(double: DoubleHandle) -> Iterator[None]:
    double.state.reset()
    yield
    double.state.reset()


def sources(double: DoubleHandle) -> list[Source]:
    """One source per platform on the double (fast pacing), plus slow and uncredentialed ones."""
    c, base = double.state.config, double.base_url
    return [
        Source(id="tg", platform="telegram", secret="s-tg", bot_token=c.telegram_token,
               api_base=base, **FAST),
        Source(id="sl", platform="slack", secret="s-sl", bot_token=c.slack_bot_token,
               user_token=c.slack_user_token, api_base=base, **FAST),
        Source(id="fs", platform="feishu", secret="s-fs", app_id=c.feishu_app_id,
               app_secret=c.feishu_app_secret, api_base=base, **FAST),
        Source(id="qq", platform="onebot", secret="s-qq", api_url=double.onebot_url,
               access_token=c.onebot_token, **FAST),
        Source(id="wc", platform="wecom", secret="s-wc", encrypt_key=WECOM_AES_KEY,
               app_id=c.wecom_corp_id, app_secret=c.wecom_secret, api_base=base, **FAST),
        Source(id="tg-slow", platform="telegram", secret="s-tg2", bot_token=c.telegram_token,
               api_base=base, rate_per_second=1000.0, rate_per_group_per_minute=30.0),
        Source(id="tg-bare", platform="telegram", secret="s-tg3"),
    ]  # fmt: skip


@pytest.fixture(scope="session")
def delivery_config(
    tmp_path_factory: pytest.TempPathFactory, double: DoubleHandle, tokens: Tokens
) -> Path:
    path = tmp_path_factory.mktemp("delivery") / "qunyun.toml"
    api_tokens = [
        token_entry("admin", tokens.admin, ["*"], ["read", "write"]),
        token_entry("reader", tokens.reader, ["*"], ["read"]),
    ]
    return write_config(path, QunyunConfig(sources=sources(double), tokens=api_tokens))


@dataclass
class Harness:
    """A running delivery service and the means to feed and read it."""

    settings: Settings
    client: TestClient
    producer: KafkaProducer
    double: DoubleHandle
    make_settings: Callable[..., Settings]

    def sharing_settings(self, **overrides: Any) -> Settings:
        """Settings for another service in the same flow: this run's topics, receipts included."""
        receipts = self.settings.topic_delivery_receipts
        return self.make_settings(
            share_with=self.settings, topic_delivery_receipts=receipts, **overrides
        )

    def send(self, topic: str, records: list[dict[str, Any]]) -> None:
        """Put records on a topic keyed by group, and wait for the acks."""
        futures = [
            self.producer.send(topic, key=r["group_id"].encode(), value=json.dumps(r).encode())
            for r in records
        ]
        self.producer.flush(timeout=30)
        for future in futures:
            future.get(timeout=30)

    def actions(self, *records: dict[str, Any]) -> None:
        self.send(self.settings.topic_moderation_actions, list(records))

    def notifications(self, *records: dict[str, Any]) -> None:
        self.send(self.settings.topic_campaign_notifications, list(records))

    def receipts(self, expect: int, *, timeout: float = 30, settle: float = 0) -> list[dict]:
        """The receipts published so far (waiting for `expect` of them)."""
        found = read_topic(
            self.settings.kafka_bootstrap_servers,
            self.settings.topic_delivery_receipts,
            expect=expect,
            timeout=timeout,
            settle=settle,
        )
        return [json.loads(r.value) for r in found]

    def receipt_map(self, expect: int, **kwargs: Any) -> dict[str, dict]:
        """The latest receipt per ref_id."""
        return {r["ref_id"]: r for r in self.receipts(expect, **kwargs)}

    def group(self, platform: str, chat: str) -> Group:
        return self.double.state.group(platform, chat)


@pytest.fixture
def delivery(
    make_settings: Callable[..., Settings],
    run_app: Callable[..., Any],
    producer: KafkaProducer,
    double: DoubleHandle,
    delivery_config: Path,
    unique: Callable[[str], str],
) -> Iterator[Callable[..., Any]]:
    """`with delivery(**settings) as h:` runs the service until the block ends."""

    @contextmanager
    def start(**overrides: Any) -> Iterator[Harness]:
        settings = make_settings(
            qunyun_config=str(delivery_config),
            topic_delivery_receipts=unique("delivery.receipts.v1") + uuid_suffix(),
            **overrides,
        )
        with run_app(create_app(settings)) as client:
            assert wait_until(lambda: client.get("/readyz").status_code == 200, timeout=30)
            yield Harness(settings, client, producer, double, make_settings)

    yield start


def uuid_suffix() -> str:
    return f".{random.randrange(16**8):08x}"


def chat_number() -> int:
    """A fresh numeric chat id."""
    return random.randrange(10**8, 10**9)


def action(
    action_name: str,
    group_id: str,
    *,
    source: str | None,
    member_id: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A moderation.actions.v1 record (with the fields delivery reads)."""
    record_id = fields.pop("id", None) or f"act-{random.randrange(16**12):012x}"
    return {
        "id": record_id,
        "case_id": "case-" + record_id,
        "group_id": group_id,
        "member_id": member_id or "",
        "event_id": None,
        "message_id": None,
        "action": action_name,
        "duration_seconds": None,
        "rule_id": None,
        "reason": "test",
        "created_at": datetime.now(UTC).isoformat(),
        "source": source,
        **fields,
    }


def notification(group_id: str, text: str, *, source: str | None, **fields: Any) -> dict[str, Any]:
    """A campaigns.notifications.v1 record."""
    record_id = fields.pop("id", None) or f"cmp-{random.randrange(16**12):012x}:reminder"
    return {
        "id": record_id,
        "group_id": group_id,
        "source": source,
        "campaign_id": "cmp",
        "kind": "reminder",
        "text": text,
        "created_at": datetime.now(UTC).isoformat(),
        **fields,
    }
