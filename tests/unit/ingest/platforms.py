"""Sources and documented payloads for calling the adapters directly (no app, no servers)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from services.common.settings import Source

PAYLOADS = Path(__file__).parents[2] / "ingest" / "payloads"
NOW = 1_800_000_000.0  # the clock every adapter call here runs at

GENERIC = Source(id="gen", platform="generic", secret="generic-secret")
SLACK = Source(id="sl", platform="slack", secret="slack-signing-secret")
TELEGRAM = Source(id="tg", platform="telegram", secret="telegram-token")
FEISHU = Source(id="fs", platform="feishu", secret="feishu-token")
FEISHU_ENC = Source(id="fe", platform="feishu", secret="feishu-token-2", encrypt_key="enc-key")


def load(name: str) -> dict[str, Any]:
    """Return a fresh copy of a documented payload (tests/ingest/payloads)."""
    return copy.deepcopy(json.loads((PAYLOADS / f"{name}.json").read_text()))
