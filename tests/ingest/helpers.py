"""Signing and payload helpers for the ingest tests: each platform's documented way."""

from __future__ import annotations

import copy
import json
import os
import time
from pathlib import Path
from typing import Any

import orjson

from services.platforms.feishu.inbound import encrypt_feishu, feishu_signature
from services.platforms.generic.inbound import generic_signature
from services.platforms.onebot.inbound import onebot_signature
from services.platforms.slack.inbound import slack_signature
from tests.support import SOURCE_SECRETS, read_topic

PAYLOADS = Path(__file__).parent / "payloads"


def load(name: str) -> dict[str, Any]:
    """Return a fresh copy of a documented payload fixture."""
    return copy.deepcopy(json.loads((PAYLOADS / f"{name}.json").read_text()))


def secret(source_id: str) -> str:
    return SOURCE_SECRETS[source_id][1]


def generic_headers(body: bytes, *, source: str = "generic-test", at: float | None = None) -> dict:
    ts = str(int(at if at is not None else time.time()))
    return {
        "Content-Type": "application/json",
        "X-Qunyun-Timestamp": ts,
        "X-Qunyun-Signature": generic_signature(secret(source), ts, body),
    }


def slack_headers(body: bytes, *, at: float | None = None, retry: int | None = None) -> dict:
    ts = str(int(at if at is not None else time.time()))
    headers = {
        "Content-Type": "application/json",
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": slack_signature(secret("slack-test"), ts, body),
    }
    if retry is not None:
        headers["X-Slack-Retry-Num"] = str(retry)
        headers["X-Slack-Retry-Reason"] = "http_timeout"
    return headers


def telegram_headers(token: str | None = None) -> dict:
    return {
        "Content-Type": "application/json",
        "X-Telegram-Bot-Api-Secret-Token": token or secret("telegram-test"),
    }


def onebot_headers(body: bytes, *, upper: bool = False, self_id: str = "10001000") -> dict:
    """Sign a body as NapCat does (lower-case hex) or as Lagrange.OneBot does (upper case)."""
    signature = onebot_signature(secret("onebot-test"), body)
    if upper:
        signature = "sha1=" + signature.removeprefix("sha1=").upper()
    return {"Content-Type": "application/json", "X-Signature": signature, "X-Self-ID": self_id}


def feishu_body(payload: dict[str, Any], *, source: str = "feishu-test") -> bytes:
    """Put the source's verification token where Feishu carries it and encode the body."""
    payload = copy.deepcopy(payload)
    if "header" in payload:
        payload["header"]["token"] = secret(source)
    else:
        payload["token"] = secret(source)
    return orjson.dumps(payload)


def feishu_encrypted(
    payload: dict[str, Any], *, at: float | None = None, signed: bool = True
) -> tuple[bytes, dict]:
    """Encrypt a payload for feishu-enc and sign it as Feishu does; return body and headers."""
    key = SOURCE_SECRETS["feishu-enc"][2]
    assert key is not None
    plain = feishu_body(payload, source="feishu-enc")
    body = orjson.dumps({"encrypt": encrypt_feishu(key, plain, os.urandom(16))})
    headers = {"Content-Type": "application/json"}
    if signed:
        ts, nonce = str(int(at if at is not None else time.time())), os.urandom(8).hex()
        headers |= {
            "X-Lark-Request-Timestamp": ts,
            "X-Lark-Request-Nonce": nonce,
            "X-Lark-Signature": feishu_signature(key, ts, nonce, body),
        }
    return body, headers


def events_on(bootstrap: str, topic: str, *, expect: int, settle: float = 1.0) -> list[dict]:
    """Read the topic; return the decoded events (keeping reading `settle` s to catch extras)."""
    records = read_topic(bootstrap, topic, expect=expect, timeout=15.0 + settle, settle=settle)
    out = []
    for record in records:
        event = orjson.loads(record.value)
        event["_key"] = record.key.decode() if record.key else None
        out.append(event)
    return out


def nothing_on(bootstrap: str, topic: str, *, wait: float = 1.5) -> bool:
    """Tell whether the topic stays empty for `wait` seconds."""
    return read_topic(bootstrap, topic, expect=1, timeout=wait) == []
