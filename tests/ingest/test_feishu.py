"""Feishu/Lark event subscription v2: token, encryption and signature, messages, members."""

from __future__ import annotations

import time
import uuid

import orjson

from tests.ingest.helpers import events_on, feishu_body, feishu_encrypted, load, nothing_on

PLAIN = "/v1/webhooks/feishu-test"
ENCRYPTED = "/v1/webhooks/feishu-enc"
JSON = {"Content-Type": "application/json"}


def event(name: str) -> dict:
    payload = load(name)
    payload["header"]["event_id"] += uuid.uuid4().hex[:8]  # dedup keys outlive a test
    return payload


def post(client, payload, headers=None):
    return client.post(PLAIN, content=feishu_body(payload), headers={**JSON, **(headers or {})})


def test_url_verification_plain_and_encrypted(ingest):
    payload = load("feishu_url_verification")
    response = post(ingest.client, payload)
    assert response.status_code == 200
    assert response.json() == {"challenge": "ajls384kdjx98XX"}
    # Feishu does not sign the URL check; decrypting with the key and the token prove it.
    body, headers = feishu_encrypted(payload, signed=False)
    response = ingest.client.post(ENCRYPTED, content=body, headers=headers)
    assert response.status_code == 200
    assert response.json() == {"challenge": "ajls384kdjx98XX"}
    wrong_token = ingest.client.post(PLAIN, content=orjson.dumps(payload), headers=JSON)
    assert wrong_token.status_code == 401


def test_text_message_lands_and_redelivery_is_a_duplicate(ingest):
    payload = event("feishu_message_receive")
    assert post(ingest.client, payload).json() == {"accepted": 1, "duplicates": 0, "ignored": 0}
    assert post(ingest.client, payload).json() == {"accepted": 0, "duplicates": 1, "ignored": 0}
    [got] = events_on(ingest.bootstrap, ingest.topic, expect=1, settle=1.0)
    assert got["id"] == payload["header"]["event_id"]
    assert got["source"] == "feishu-test"
    assert got["type"] == "message.created"
    assert got["group_id"] == got["_key"] == "feishu:oc_5ce6d572455d361153b7xx51da133945"
    assert got["member_id"] == "feishu:ou_84aad35d084aa403a838cf73ee18467"
    assert got["occurred_at"] == "2020-12-27T12:45:51.345000Z"
    assert got["data"]["message_id"] == "om_5ce6d572455d361153b7cb51da133945"
    assert got["data"]["text"] == "@Tom hello"
    assert got["data"]["mentions"] == ["feishu:ou_84aad35d084aa403a838cf73ee18467"]
    assert got["data"]["reply_to"] == "om_5ce6d572455d361153b7cb5xxfsdfsdfdsf"


def test_post_message_and_member_events(ingest):
    names = [
        "feishu_message_post",
        "feishu_member_added",
        "feishu_member_deleted",
        "feishu_member_withdrawn",
    ]
    payloads = [event(n) for n in names]
    for payload in payloads:
        assert post(ingest.client, payload).json()["accepted"] == 1
    got = {e["id"]: e for e in events_on(ingest.bootstrap, ingest.topic, expect=4)}
    post_msg = got[payloads[0]["header"]["event_id"]]
    assert post_msg["data"]["text"] == "我是一个标题\n第一行 :超链接@Tom\n"
    assert post_msg["data"]["kind"] == "link"
    added = got[payloads[1]["header"]["event_id"] + ":ou_84aad35d084aa403a838cf73ee18468"]
    assert added["type"] == "member.joined"
    assert added["group_id"] == "feishu:oc_a0553eda9014c201e6969b478895c230"
    assert added["member_id"] == "feishu:ou_84aad35d084aa403a838cf73ee18468"
    assert added["data"] == {
        "display_name": "user name",
        "invited_by": "feishu:ou_84aad35d084aa403a838cf73ee18467",
        "method": "invite",
        "channel": None,
    }
    deleted = got[payloads[2]["header"]["event_id"] + ":ou_84aad35d084aa403a838cf73ee18468"]
    assert deleted["type"] == "member.left"
    assert deleted["data"] == {
        "reason": "removed",
        "by": "feishu:ou_84aad35d084aa403a838cf73ee18467",
    }
    withdrawn = got[payloads[3]["header"]["event_id"] + ":ou_84aad35d084aa403a838cf73ee18469"]
    assert withdrawn["type"] == "member.left"


def test_wrong_or_missing_token_and_stale_timestamp_are_401(ingest):
    payload = event("feishu_message_receive")
    wrong = orjson.dumps(payload)  # the documented token, not this source's
    assert ingest.client.post(PLAIN, content=wrong, headers=JSON).status_code == 401
    del payload["header"]["token"]
    missing = orjson.dumps(payload)
    assert ingest.client.post(PLAIN, content=missing, headers=JSON).status_code == 401
    stale = {"X-Lark-Request-Timestamp": str(int(time.time()) - 305)}
    assert post(ingest.client, payload, stale).status_code == 401
    assert nothing_on(ingest.bootstrap, ingest.topic)


def test_encrypted_events_are_decrypted_and_signature_checked(ingest):
    payload = event("feishu_message_receive")
    body, headers = feishu_encrypted(payload)
    cases = {
        "wrong signature": {**headers, "X-Lark-Signature": "0" * 64},
        "stale": feishu_encrypted(payload, at=time.time() - 400)[1],
        "missing signature": {k: v for k, v in headers.items() if k != "X-Lark-Signature"},
        "missing nonce": {k: v for k, v in headers.items() if k != "X-Lark-Request-Nonce"},
    }
    for name, bad in cases.items():
        response = ingest.client.post(ENCRYPTED, content=body, headers=bad)
        assert response.status_code == 401, name
    plain = ingest.client.post(
        ENCRYPTED, content=feishu_body(payload, source="feishu-enc"), headers=JSON
    )
    assert plain.status_code == 401  # this source only takes encrypted events
    assert nothing_on(ingest.bootstrap, ingest.topic)
    response = ingest.client.post(ENCRYPTED, content=body, headers=headers)
    assert response.json() == {"accepted": 1, "duplicates": 0, "ignored": 0}
    again_body, again_headers = feishu_encrypted(payload)  # a retry: fresh iv, nonce, signature
    response = ingest.client.post(ENCRYPTED, content=again_body, headers=again_headers)
    assert response.json() == {"accepted": 0, "duplicates": 1, "ignored": 0}
    [got] = events_on(ingest.bootstrap, ingest.topic, expect=1, settle=1.0)
    assert got["source"] == "feishu-enc"
    assert got["data"]["text"] == "@Tom hello"


def test_private_chats_bots_and_other_events_are_ignored(ingest):
    p2p = event("feishu_message_receive")
    p2p["event"]["message"]["chat_type"] = "p2p"
    other = event("feishu_message_receive")
    other["header"]["event_type"] = "im.message.message_read_v1"
    for payload in (p2p, other):
        assert post(ingest.client, payload).json() == {"accepted": 0, "duplicates": 0, "ignored": 1}
    assert nothing_on(ingest.bootstrap, ingest.topic)
