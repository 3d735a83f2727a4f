"""Arbitrary JSON shapes, correctly signed, never make any adapter answer a 5xx."""

from __future__ import annotations

import random
import uuid

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.ingest.helpers import (
    feishu_body,
    generic_headers,
    onebot_headers,
    slack_headers,
    telegram_headers,
)

KEYS = st.sampled_from(
    [
        "id", "type", "group_id", "member_id", "occurred_at", "data", "events", "text",
        "update_id", "message", "chat", "from", "date", "message_id", "new_chat_members",
        "left_chat_member", "chat_member", "old_chat_member", "new_chat_member", "status",
        "user", "entities", "photo", "caption", "reply_to_message", "team_id", "event_id",
        "event", "channel", "ts", "files", "subtype", "schema", "header", "token",
        "event_type", "chat_type", "chat_id", "content", "sender", "sender_id", "open_id",
        "create_time", "users", "user_id", "operator_id", "mentions", "key", "name",
        "post_type", "notice_type", "request_type", "sub_type", "self_id", "time", "flag",
        "comment", "card", "card_new", "nickname", "raw_message", "qq", "url", "file",
    ]
)  # fmt: skip
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(KEYS | st.text(max_size=4), inner, max_size=6)
    ),
    max_leaves=25,
)


def _dict(obj: object) -> dict:
    return obj if isinstance(obj, dict) else {}


def envelope(platform: str, obj: object) -> object:
    """Wrap a fuzzed object where each platform's parser looks, so it gets past the top level."""
    n = random.randrange(1, 10**12)
    if platform == "telegram":
        message = {"chat": {"id": -5, "type": "group"}, "from": {"id": 1}, "date": 1700000000}
        return {"update_id": n, "message": {**message, "message_id": 3, **_dict(obj)}}
    if platform == "slack":
        event = {"type": random.choice(["message", "member_joined_channel"]), **_dict(obj)}
        return {"type": "event_callback", "team_id": "T1", "event_id": f"Ev{n}", "event": event}
    if platform == "feishu":
        kind = random.choice(["im.message.receive_v1", "im.chat.member.user.added_v1"])
        header = {"event_id": uuid.uuid4().hex, "create_time": "1700000000000", "event_type": kind}
        return {"schema": "2.0", "header": header, "event": obj}
    if platform == "onebot":
        kind = random.choice(["message", "notice", "request"])
        event = {"time": 1700000000, "self_id": 10001000, "post_type": kind, "group_id": 5}
        event |= {"user_id": 7, "message_id": n, "message_type": "group", "request_type": "group"}
        event |= {"notice_type": random.choice(["group_increase", "group_decrease", "group_card"])}
        return {**event, "sub_type": random.choice(["add", "invite", "kick"]), **_dict(obj)}
    return {"events": [obj]} if random.random() < 0.5 else obj


def request(platform: str, obj: object) -> tuple[str, bytes, dict]:
    body = orjson.dumps(obj)
    if platform == "feishu":
        if isinstance(obj, dict) and isinstance(obj.get("header", {}), dict):
            body = feishu_body(obj)  # with the right token, so the mapping code is reached
        return "/v1/webhooks/feishu-test", body, {"Content-Type": "application/json"}
    if platform == "slack":
        return "/v1/webhooks/slack-test", body, slack_headers(body)
    if platform == "telegram":
        return "/v1/webhooks/telegram-test", body, telegram_headers()
    if platform == "onebot":
        return "/v1/webhooks/onebot-test", body, onebot_headers(body)
    return "/v1/webhooks/generic-test", body, generic_headers(body)


def test_signed_garbage_is_never_a_server_error(ingest):
    @settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        JSON, st.sampled_from(["generic", "slack", "telegram", "feishu", "onebot"]), st.booleans()
    )
    def check(obj, platform, wrap):
        url, body, headers = request(platform, envelope(platform, obj) if wrap else obj)
        response = ingest.client.post(url, content=body, headers=headers)
        answers = (200, 202, 204, 401, 422)  # 204: how OneBot sources are answered
        assert response.status_code in answers, (response.status_code, response.text)

    check()
