"""OneBot v11 (QQ groups via NapCat, Lagrange.OneBot): X-Signature, group messages in both
message formats, member notices, join requests, ignored events, refusals.

Each event lands on the topic once; a replay of the same POST is a duplicate (OneBot sends no
timestamp, so deduplication is the replay protection). OneBot sources are answered 204 with
no body (a JSON answer would be read as a "quick operation"), so duplicates are seen on the
topic and in ingest's counters, not in the answer.
"""

from __future__ import annotations

import random

import orjson
from prometheus_client import REGISTRY

from tests.ingest.helpers import events_on, load, nothing_on, onebot_headers

URL = "/v1/webhooks/onebot-test"


def fresh(name: str, **fields) -> dict:
    """A documented payload in its own group (dedup keys outlive a test)."""
    return load(name) | {"group_id": random.randrange(10**8, 10**9)} | fields


def post(client, payload, *, upper: bool = False):
    body = orjson.dumps(payload)
    return client.post(URL, content=body, headers=onebot_headers(body, upper=upper))


def counted(outcome: str) -> float:
    """Events of the OneBot test source ingest counted with this outcome, of every type."""
    return sum(
        sample.value
        for metric in REGISTRY.collect()
        if metric.name == "qunyun_ingest_events"
        for sample in metric.samples
        if sample.name == "qunyun_ingest_events_total"
        and sample.labels["source"] == "onebot-test"
        and sample.labels["outcome"] == outcome
    )


def answered_204(response) -> bool:
    """NapCat and Lagrange get nothing to read as a quick operation."""
    return response.status_code == 204 and response.content == b""


def test_group_messages_in_both_formats_land_once_and_replays_are_duplicates(ingest):
    array = fresh("onebot_group_message_array")
    string = fresh("onebot_group_message_string")
    card = fresh("onebot_miniprogram")
    accepted, duplicates = counted("accepted"), counted("duplicate")
    for payload in (array, string, card):
        first = post(ingest.client, payload)
        assert answered_204(first), (first.status_code, first.text)
        assert answered_204(post(ingest.client, payload))  # the replay
    landed = events_on(ingest.bootstrap, ingest.topic, expect=3, settle=1.5)
    assert len(landed) == 3  # the replays were not produced again
    assert (counted("accepted") - accepted, counted("duplicate") - duplicates) == (3, 3)
    events = {e["group_id"]: e for e in landed}
    assert len(events) == 3
    napcat = events[f"qq:{array['group_id']}"]
    assert napcat["_key"] == napcat["group_id"]
    assert napcat["source"] == "onebot-test"
    assert napcat["type"] == "message.created"
    assert napcat["member_id"] == "qq:12345678"
    assert napcat["occurred_at"] == "2018-01-06T02:04:14Z"
    assert napcat["data"]["message_id"] == "1410911054"
    assert napcat["data"]["text"] == "@87654321 加我微信 "
    assert napcat["data"]["mentions"] == ["qq:87654321"]
    assert napcat["data"]["reply_to"] == "1381063063"
    assert napcat["data"]["display_name"] == "小不点-上海-油皮"
    assert napcat["data"]["kind"] == "image"
    [image] = napcat["data"]["attachments"]
    assert image["url"].startswith("https://multimedia.nt.qq.com.cn/download?appid=1407&fileid=")
    spec = events[f"qq:{string['group_id']}"]
    assert spec["data"]["text"].startswith("看看我刚拍的照片 [二手] @10001000@全体成员")
    assert spec["data"]["mentions"] == ["qq:10001000"]
    assert spec["data"]["attachments"][0]["url"] == "http://gchat.qpic.cn/gchatpic_new/123.jpg"
    mini = events[f"qq:{card['group_id']}"]
    assert (mini["data"]["kind"], mini["data"]["text"]) == ("miniprogram", "[QQ小程序]哔哩哔哩")


def test_lagrange_upper_case_signature_is_accepted(ingest):
    payload = fresh("onebot_group_message_string")
    assert answered_204(post(ingest.client, payload, upper=True))
    [event] = events_on(ingest.bootstrap, ingest.topic, expect=1)
    assert event["group_id"] == f"qq:{payload['group_id']}"


def test_notices_and_join_requests_land_once_with_their_fields(ingest):
    group = random.randrange(10**8, 10**9)
    payloads = [
        load("onebot_group_increase") | {"group_id": group},
        load("onebot_group_increase") | {"group_id": group, "sub_type": "approve", "user_id": 7},
        load("onebot_group_decrease") | {"group_id": group},
        load("onebot_group_decrease")
        | {"group_id": group, "sub_type": "leave", "user_id": 8, "operator_id": 8},
        load("onebot_group_card") | {"group_id": group},
        load("onebot_group_request") | {"group_id": group, "flag": f"flag-{group}"},
    ]
    duplicates = counted("duplicate")
    for payload in payloads:
        assert answered_204(post(ingest.client, payload)), payload
    for payload in payloads:  # NapCat never retries, but a replayed POST must not count
        assert answered_204(post(ingest.client, payload)), payload
    assert counted("duplicate") - duplicates == 6
    events = events_on(ingest.bootstrap, ingest.topic, expect=6, settle=1.5)
    assert len(events) == 6 and {e["group_id"] for e in events} == {f"qq:{group}"}
    by = {(e["type"], e["member_id"]): e["data"] for e in events}
    assert by[("member.joined", "qq:23456789")] == {
        "display_name": None,
        "invited_by": "qq:12345678",
        "method": "invite",
        "channel": None,
    }
    assert by[("member.joined", "qq:7")]["method"] == "approval"
    assert by[("member.left", "qq:23456789")] == {"reason": "removed", "by": "qq:12345678"}
    assert by[("member.left", "qq:8")] == {"reason": "left", "by": None}
    assert by[("member.updated", "qq:23456789")] == {"display_name": "小明-杭州-干皮"}
    assert by[("member.join_requested", "qq:34567890")] == {
        "display_name": None,
        "answer": "问题：从哪里知道本群？\n答案：小红书",
        "request_ref": f"flag-{group}",
        "channel": None,
    }


def test_private_messages_meta_events_and_unknown_notices_are_ignored_and_counted(ingest):
    before = counted("ignored")
    ignored = [
        load("onebot_private_message"),
        load("onebot_heartbeat"),
        load("onebot_lifecycle"),
        fresh("onebot_group_recall"),
        fresh("onebot_group_increase", notice_type="group_msg_emoji_like"),
        fresh("onebot_group_request", sub_type="invite"),
    ]
    for payload in ignored:
        assert answered_204(post(ingest.client, payload)), payload
    assert counted("ignored") - before == len(ignored)
    assert nothing_on(ingest.bootstrap, ingest.topic)


def test_missing_or_wrong_signature_or_self_id_is_401_and_lands_nothing(ingest):
    payload = fresh("onebot_group_message_array")
    body = orjson.dumps(payload)
    good = onebot_headers(body)
    without = lambda name: {k: v for k, v in good.items() if k != name}  # noqa: E731
    cases = {
        "no signature": without("X-Signature"),
        "no self id": without("X-Self-ID"),
        "wrong digest": {**good, "X-Signature": "sha1=" + "0" * 40},
        "sha256 scheme": {**good, "X-Signature": good["X-Signature"].replace("sha1=", "sha256=")},
        "other self id": {**good, "X-Self-ID": "10001001"},
    }
    for name, headers in cases.items():
        assert ingest.client.post(URL, content=body, headers=headers).status_code == 401, name
    tampered = body.replace(b"12345678", b"12345679", 1)
    assert ingest.client.post(URL, content=tampered, headers=good).status_code == 401
    assert nothing_on(ingest.bootstrap, ingest.topic)
    assert answered_204(ingest.client.post(URL, content=body, headers=good))
    assert len(events_on(ingest.bootstrap, ingest.topic, expect=1)) == 1


def test_malformed_events_are_422_naming_the_field_and_oversize_is_413(ingest):
    message = fresh("onebot_group_message_array")
    request = fresh("onebot_group_request")
    del request["flag"]
    cases = [
        (b"{not json", ["body"]),
        (b"[1]", ["body"]),
        (orjson.dumps({"time": 1, "self_id": 10001000}), ["body", "post_type"]),
        (orjson.dumps(message | {"group_id": "群"}), ["body", "group_id"]),
        (orjson.dumps(message | {"message": [7]}), ["body", "message", 0]),
        (orjson.dumps(request), ["body", "flag"]),
        (orjson.dumps(request | {"flag": ""}), ["body", "data", "request_ref"]),
    ]
    for body, loc in cases:
        response = ingest.client.post(URL, content=body, headers=onebot_headers(body))
        assert response.status_code == 422, (body[:60], response.text)
        assert response.json()["detail"][0]["loc"] == loc, response.text
    big = orjson.dumps(message | {"raw_message": "x" * (1024 * 1024)})
    assert ingest.client.post(URL, content=big, headers=onebot_headers(big)).status_code == 413
    assert nothing_on(ingest.bootstrap, ingest.topic)
