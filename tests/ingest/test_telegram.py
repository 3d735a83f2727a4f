"""Telegram Bot API updates: secret token, group messages, joins and leaves (chat_member)."""

from __future__ import annotations

import random

import orjson

from tests.ingest.helpers import events_on, load, nothing_on, telegram_headers

URL = "/v1/webhooks/telegram-test"


def update(name: str) -> dict:
    payload = load(name)
    payload["update_id"] = random.randrange(10**9, 10**12)  # dedup keys outlive a test
    return payload


def post(client, payload, token=None):
    return client.post(URL, content=orjson.dumps(payload), headers=telegram_headers(token))


def test_group_message_lands_and_redelivery_is_a_duplicate(ingest):
    payload = update("telegram_message")
    assert post(ingest.client, payload).json() == {"accepted": 1, "duplicates": 0, "ignored": 0}
    assert post(ingest.client, payload).json() == {"accepted": 0, "duplicates": 1, "ignored": 0}
    [event] = events_on(ingest.bootstrap, ingest.topic, expect=1, settle=1.0)
    assert event["id"] == str(payload["update_id"])
    assert event["source"] == "telegram-test"
    assert event["type"] == "message.created"
    assert event["group_id"] == event["_key"] == "telegram:-1001111111"
    assert event["member_id"] == "telegram:1111111"
    assert event["occurred_at"] == "2015-09-07T17:05:32Z"
    assert event["data"]["message_id"] == "1365"
    assert event["data"]["text"] == "/start"
    assert event["data"]["display_name"] == "Test Firstname Test Lastname"


def test_photos_joins_and_leaves_from_chat_member_updates(ingest):
    photo, added, left, member = (
        update(n)
        for n in (
            "telegram_photo",
            "telegram_chat_member_added",
            "telegram_chat_member_left",
            "telegram_chat_member",
        )
    )
    for payload in (photo, added, left, member):
        assert post(ingest.client, payload).json()["accepted"] == 1
    events = {e["id"]: e for e in events_on(ingest.bootstrap, ingest.topic, expect=4)}
    pic = events[str(photo["update_id"])]
    assert pic["data"]["kind"] == "image"
    assert pic["data"]["text"] == "Look at this"
    assert pic["data"]["reply_to"] == "1365"
    bob = events[f"{added['update_id']}:3333333"]
    assert bob["type"] == "member.joined"
    assert bob["member_id"] == "telegram:3333333"
    assert bob["data"] == {
        "display_name": "Bob Li",
        "invited_by": "telegram:1111111",
        "method": "invite",
        "channel": None,
    }
    gone = events[f"{left['update_id']}:3333333"]
    assert gone["type"] == "member.left"
    assert gone["data"] == {"reason": "left", "by": None}
    carol = events[f"{member['update_id']}:4444444"]
    assert carol["type"] == "member.joined"
    assert carol["data"]["method"] == "link"


def test_a_join_told_twice_lands_once(ingest):
    # Telegram posts one join as a new_chat_members service message and as a chat_member
    # update (other update ids): only the chat_member update becomes an event.
    joins = update("telegram_new_chat_members")
    leave = update("telegram_left_chat_member")
    added = update("telegram_chat_member_added")
    for service in (joins, leave):
        assert post(ingest.client, service).json() == {"accepted": 0, "duplicates": 0, "ignored": 1}
    assert post(ingest.client, added).json()["accepted"] == 1
    [event] = events_on(ingest.bootstrap, ingest.topic, expect=1, settle=1.0)
    assert (event["type"], event["id"]) == ("member.joined", f"{added['update_id']}:3333333")


def test_edits_private_chats_and_service_messages_are_ignored(ingest):
    edited = update("telegram_edited_message")
    private = update("telegram_message")
    private["message"]["chat"] = {"id": 1111111, "type": "private", "first_name": "Test"}
    title = update("telegram_message")
    del title["message"]["text"]
    title["message"]["new_chat_title"] = "Renamed"
    for payload in (edited, private, title):
        assert post(ingest.client, payload).json() == {"accepted": 0, "duplicates": 0, "ignored": 1}
    assert nothing_on(ingest.bootstrap, ingest.topic)


def test_wrong_or_missing_secret_token_is_401_and_lands_nothing(ingest):
    payload = update("telegram_message")
    body = orjson.dumps(payload)
    assert post(ingest.client, payload, token="not-the-secret").status_code == 401
    missing = ingest.client.post(URL, content=body, headers={"Content-Type": "application/json"})
    assert missing.status_code == 401
    assert nothing_on(ingest.bootstrap, ingest.topic)
    assert post(ingest.client, payload).json()["accepted"] == 1


def test_malformed_update_is_422(ingest):
    payload = update("telegram_message")
    payload["message"]["chat"]["id"] = "not-an-int"
    response = post(ingest.client, payload)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "message", "chat", "id"]
    response = post(ingest.client, {"message": {}})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "update_id"]
