"""The stack the console's browser tests drive: `make run`'s (tools/devstack.py) on free ports,
filled by the simulator, with a Telegram source pointing at the platform double.

Its config holds three tokens (all groups read+write, all groups read-only, one group
read+write) and two sources: the generic `dev` the simulator sends through, and the
Telegram `tg` whose outbound calls go to the double.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from services.common.auth import token_entry
from services.common.settings import QunyunConfig, Source, write_config
from tools.devstack import DevStack, wait_caught_up
from tools.localstack import free_port
from tools.platform_double import DoubleConfig, DoubleHandle
from tools.simulate import generate, send_webhook_batches
from tools.stack import SERVICES

# Settings `make run` would take from the environment instead of starting its own servers.
OUTSIDE = ("KAFKA_BOOTSTRAP_SERVERS", "REDIS_URL", "DATABASE_URL", "QUNYUN_CONFIG", "PORT")
GROUPS = ("sim:g0", "sim:g1", "sim:g2")
TELEGRAM_CHAT = "-1002001"
TELEGRAM_GROUP = f"telegram:{TELEGRAM_CHAT}"
DAYS = 21


@dataclass
class ConsoleStack:
    """A started stack with the console, its tokens and how to send it events."""

    devstack: DevStack
    admin: str
    reader: str
    one_group: str
    secret: str
    double: DoubleHandle

    @property
    def console_url(self) -> str:
        return f"http://127.0.0.1:{self.devstack.ports['console']}"

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.devstack.ports[service]}"

    def send(self, events: Iterable[dict[str, Any]]) -> None:
        """Post events through ingest as the generic source `dev` (signed like a platform)."""
        stats = send_webhook_batches(
            url=self.url("ingest"), source_id="dev", secret=self.secret, events=events
        )
        assert stats["accepted"] + stats["duplicates"] == stats["events"], stats

    def caught_up(self) -> None:
        """Wait until metrics, moderation and campaigns have consumed every event."""
        lag = wait_caught_up(
            self.devstack, ["metrics", "moderation", "campaigns"], seconds=60, hurry=lambda: False
        )
        assert all(n == 0 for n in lag.values()), lag


def message(group: str, member: str, text: str, *, at: datetime | None = None) -> dict[str, Any]:
    """One generic `message.created` event with a fresh id."""
    serial = secrets.token_hex(6)
    moment = (at or datetime.now(UTC)).isoformat(timespec="milliseconds")
    return {
        "id": f"console-{serial}",
        "source": "dev",
        "type": "message.created",
        "group_id": group,
        "member_id": member,
        "occurred_at": moment,
        "data": {
            "message_id": f"m-{serial}",
            "text": text,
            "display_name": member.rsplit(":", 1)[-1],
        },
    }


def start_console_stack(var: Path, double: DoubleHandle) -> ConsoleStack:
    """Start broker, Redis, the five services and the console; fill them with DAYS of traffic."""
    admin, reader, one = (
        f"qy_console_{k}_" + secrets.token_hex(12) for k in ("admin", "ro", "one")
    )
    secret = secrets.token_hex(16)
    var.mkdir(parents=True, exist_ok=True)
    config = write_config(
        var / "console-config.toml",
        QunyunConfig(
            sources=[
                Source(id="dev", platform="generic", secret=secret),
                Source(
                    id="tg",
                    platform="telegram",
                    secret=secrets.token_hex(8),
                    bot_token=DoubleConfig().telegram_token,
                    api_base=double.base_url,
                ),
            ],
            tokens=[
                token_entry("运营-admin", admin, ["*"], ["read", "write"]),
                token_entry("看板-reader", reader, ["*"], ["read"]),
                token_entry("g1-operator", one, [GROUPS[1]], ["read", "write"]),
            ],
        ),
    )
    env = {k: v for k, v in os.environ.items() if k not in OUTSIDE}
    env["QUNYUN_CONFIG"] = str(config)
    env["QUNYUN_TIMEZONE"] = "Asia/Shanghai"
    stack = DevStack(
        var=var,
        ports={name: free_port() for name in [*SERVICES, "console"]},
        broker_port=free_port(),
        redis_port=free_port(),
        base_env=env,
        out=lambda line: None,
    )
    running = ConsoleStack(stack, admin, reader, one, secret, double)
    try:
        pending = stack.start()
        assert not pending, f"not ready: {pending}"
        now = datetime.now(UTC).replace(microsecond=0)
        running.send(
            generate(
                seed=20,
                group_ids=GROUPS,
                members=60,
                days=DAYS,
                start=now - timedelta(days=DAYS),
                source="dev",
                messages_per_member=0.8,
                id_prefix="console",
            )
        )
        running.send([message(TELEGRAM_GROUP, "telegram:42", "你好")])
        running.caught_up()
    except BaseException:
        stack.stop(drain_seconds=5)
        raise
    return running
