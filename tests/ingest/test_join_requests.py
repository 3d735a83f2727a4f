"""Join requests and acquisition channels through ingest: Telegram's chat_join_request and
named invite links, and the generic format's member.join_requested and channel."""

from __future__ import annotations

import random
import uuid

import orjson

from tests.ingest.helpers import events_on, generic_headers, load, nothing_on, telegram_headers

TELEGRAM = "/v1/webhooks/telegram-test"
GENERIC = "/v1/webhooks/generic-test"


def update(name: str) -> dict:
    payload = load(name)
    payload["update_id"] = random.randrange(10**9, 10**12)  # dedup keys outlive a test
    return payload


def post_telegram(client, payload):
    return client.post(TELEGRAM, content=orjson.dumps(payload), headers=telegram_headers())


def post_generic(client, payload):
    body = orjson.dumps(payload)
    return client.post(GENERIC, content=body, headers=generic_headers(body))


def test_telegram_join_request_and_named_invite_link_land_once(ingest):
    request = update("telegram_chat_join_request")
    joined = update("telegram_chat_member_invite_link")
    for payload in (request, joined):
        assert post_telegram(ingest.client, payload).json() == {
            "accepted": 1,
            "duplicates": 0,
            "ignored": 0,
        }
        assert post_telegram(ingest.client, payload).json()["duplicates"] == 1
    events = {e["type"]: e for e in events_on(ingest.bootstrap, ingest.topic, expect=2)}
    asked = events["member.join_requested"]
    assert asked["id"] == f"{request['update_id']}:5555555"
    assert asked["group_id"] == asked["_key"] == "telegram:-1001111111"
    assert asked["member_id"] == "telegram:5555555"
    assert asked["data"] == {
        "display_name": "Dave Wu",
        "answer": "护肤博主，上海",
        "request_ref": "-1001111111:5555555",
        "channel": "小红书-春季海报",
    }
    member = events["member.joined"]
    assert member["member_id"] == "telegram:6666666"
    assert member["data"] == {
        "display_name": "Erin",
        "invited_by": None,
        "method": "link",
        "channel": "公众号-推文",
    }


def test_telegram_join_request_to_a_channel_is_ignored(ingest):
    payload = update("telegram_chat_join_request")
    payload["chat_join_request"]["chat"]["type"] = "channel"
    assert post_telegram(ingest.client, payload).json() == {
        "accepted": 0,
        "duplicates": 0,
        "ignored": 1,
    }
    assert nothing_on(ingest.bootstrap, ingest.topic)


def test_generic_join_with_channel_and_join_request(ingest):
    run = uuid.uuid4().hex[:8]
    base = {
        "group_id": f"forum:{run}",
        "member_id": "forum:user:7",
        "occurred_at": "2026-11-21T20:00:00+08:00",
    }
    joined = base | {
        "id": f"j-{run}",
        "type": "member.joined",
        "data": {"method": "qrcode", "channel": "线下沙龙-11月"},
    }
    asked = base | {
        "id": f"r-{run}",
        "type": "member.join_requested",
        "data": {"display_name": "小七", "answer": "朋友推荐", "request_ref": "req-77"},
    }
    response = post_generic(ingest.client, {"events": [joined, asked]})
    assert response.json() == {"accepted": 2, "duplicates": 0, "ignored": 0}, response.text
    events = {e["type"]: e for e in events_on(ingest.bootstrap, ingest.topic, expect=2)}
    assert events["member.joined"]["data"]["channel"] == "线下沙龙-11月"
    assert events["member.join_requested"]["data"] == {
        "display_name": "小七",
        "answer": "朋友推荐",
        "request_ref": "req-77",
        "channel": None,
    }


def test_generic_join_request_needs_a_ref_and_a_short_channel(ingest):
    run = uuid.uuid4().hex[:8]
    event = {
        "id": f"r-{run}",
        "type": "member.join_requested",
        "group_id": f"forum:{run}",
        "member_id": "forum:user:8",
        "occurred_at": "2026-11-21T20:00:00+08:00",
        "data": {"answer": "hi"},
    }
    missing = post_generic(ingest.client, event)
    assert missing.status_code == 422
    assert missing.json()["detail"][0]["loc"] == ["body", "data", "request_ref"]
    joined = event | {"type": "member.joined", "data": {"channel": "c" * 65}}
    too_long = post_generic(ingest.client, joined)
    assert too_long.status_code == 422
    assert too_long.json()["detail"][0]["loc"] == ["body", "data", "channel"]
    assert nothing_on(ingest.bootstrap, ingest.topic)
