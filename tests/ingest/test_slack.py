"""Slack Events API: signature v0, url_verification, messages, joins and leaves, retries."""

from __future__ import annotations

import time
import uuid

import orjson

from tests.ingest.helpers import events_on, load, nothing_on, slack_headers

URL = "/v1/webhooks/slack-test"


def unique_callback(name: str) -> dict:
    payload = load(name)
    payload["event_id"] += uuid.uuid4().hex[:8]  # dedup keys outlive a test in session Redis
    return payload


def post(client, payload, **kwargs):
    body = orjson.dumps(payload)
    return client.post(URL, content=body, headers=slack_headers(body, **kwargs))


def test_url_verification_is_answered_only_when_signed(ingest):
    payload = load("slack_url_verification")
    response = post(ingest.client, payload)
    assert response.status_code == 200
    assert response.json() == {"challenge": payload["challenge"]}
    body = orjson.dumps(payload)
    unsigned = ingest.client.post(URL, content=body, headers={"Content-Type": "application/json"})
    assert unsigned.status_code == 401


def test_message_lands_and_retry_is_a_duplicate(ingest):
    payload = unique_callback("slack_message")
    first = post(ingest.client, payload)
    assert first.status_code == 202, first.text
    assert first.json()["accepted"] == 1
    retry = post(ingest.client, payload, retry=1)  # Slack redelivers with a fresh signature
    assert retry.status_code == 202
    assert retry.json() == {"accepted": 0, "duplicates": 1, "ignored": 0}
    [event] = events_on(ingest.bootstrap, ingest.topic, expect=1, settle=1.0)
    assert event == {
        **event,
        "id": payload["event_id"],
        "source": "slack-test",
        "type": "message.created",
        "group_id": "slack:T123ABC456:C123ABC456",
        "member_id": "slack:T123ABC456:U123ABC456",
        "occurred_at": "2012-12-14T20:38:43.000005Z",
        "_key": "slack:T123ABC456:C123ABC456",
    }
    assert event["data"]["message_id"] == "1355517523.000005"
    assert event["data"]["text"] == "Hello world"
    assert event["data"]["kind"] == "text"


def test_mentions_threads_files_joins_and_leaves(ingest):
    names = [
        "slack_message_mention",
        "slack_file_share",
        "slack_member_joined_channel",
        "slack_member_left_channel",
    ]
    payloads = [unique_callback(n) for n in names]
    for payload in payloads:
        assert post(ingest.client, payload).json()["accepted"] == 1
    events = {e["id"]: e for e in events_on(ingest.bootstrap, ingest.topic, expect=4)}
    mention, file_share, joined, left = (events[p["event_id"]] for p in payloads)
    assert mention["data"]["mentions"] == ["slack:T123ABC456:U0G9QF9C6"]
    assert mention["data"]["reply_to"] == "1355517523.000005"
    assert mention["data"]["kind"] == "link"
    assert file_share["data"]["kind"] == "image"
    assert file_share["data"]["attachments"][0]["name"] == "photo.png"
    assert joined["type"] == "member.joined"
    assert joined["member_id"] == "slack:T123ABC456:W123ABC456"
    assert joined["data"]["invited_by"] == "slack:T123ABC456:U123456789"
    assert joined["data"]["method"] == "invite"
    assert left["type"] == "member.left"
    assert left["data"]["reason"] == "left"


def test_edits_and_bot_posts_are_acknowledged_and_ignored(ingest):
    for name in ("slack_message_changed", "slack_bot_message"):
        response = post(ingest.client, unique_callback(name))
        assert response.status_code == 202
        assert response.json() == {"accepted": 0, "duplicates": 0, "ignored": 1}
    assert nothing_on(ingest.bootstrap, ingest.topic)


def test_bad_stale_or_missing_signature_is_401_and_lands_nothing(ingest):
    payload = unique_callback("slack_message")
    body = orjson.dumps(payload)
    good = slack_headers(body)
    cases = {
        "wrong": {**good, "X-Slack-Signature": "v0=" + "a" * 64},
        "stale": slack_headers(body, at=time.time() - 400),
        "missing signature": {k: v for k, v in good.items() if k != "X-Slack-Signature"},
        "missing timestamp": {k: v for k, v in good.items() if k != "X-Slack-Request-Timestamp"},
    }
    for name, headers in cases.items():
        assert ingest.client.post(URL, content=body, headers=headers).status_code == 401, name
    assert nothing_on(ingest.bootstrap, ingest.topic)
    # Not marked seen either: the genuine delivery still goes through.
    assert ingest.client.post(URL, content=body, headers=good).json()["accepted"] == 1


def test_malformed_callback_is_422_naming_the_field(ingest):
    payload = unique_callback("slack_message")
    del payload["event"]["channel"]
    response = post(ingest.client, payload)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "event", "channel"]
    payload["event"]["channel"] = "C1"
    payload["event"]["ts"] = "not-a-ts"
    response = post(ingest.client, payload)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "event", "ts"]
