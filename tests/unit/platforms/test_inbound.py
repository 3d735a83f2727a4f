"""Each platform's payload -> canonical event mapping, calling the adapters directly."""

from __future__ import annotations

import os
from typing import Any

import orjson
import pytest

from services.platforms.feishu import inbound as feishu
from services.platforms.feishu.inbound import encrypt_feishu, feishu_signature
from services.platforms.generic import inbound as generic
from services.platforms.generic.inbound import generic_signature
from services.platforms.inbound import Adapted, InvalidPayload, Unauthenticated
from services.platforms.slack import inbound as slack
from services.platforms.slack.inbound import slack_signature
from services.platforms.telegram import inbound as telegram
from tests.unit.ingest.platforms import (
    FEISHU,
    FEISHU_ENC,
    GENERIC,
    NOW,
    SLACK,
    TELEGRAM,
    load,
)

TS = str(int(NOW))


def via_generic(payload: Any) -> Adapted:
    body = orjson.dumps(payload)
    headers = {
        "x-qunyun-timestamp": TS,
        "x-qunyun-signature": generic_signature(GENERIC.secret, TS, body),
    }
    return generic.adapt(source=GENERIC, headers=headers, body=body, now=NOW)


def via_slack(payload: dict[str, Any]) -> Adapted:
    body = orjson.dumps(payload)
    headers = {
        "x-slack-request-timestamp": TS,
        "x-slack-signature": slack_signature(SLACK.secret, TS, body),
    }
    return slack.adapt(source=SLACK, headers=headers, body=body, now=NOW)


def via_telegram(payload: dict[str, Any]) -> Adapted:
    headers = {"x-telegram-bot-api-secret-token": TELEGRAM.secret}
    return telegram.adapt(source=TELEGRAM, headers=headers, body=orjson.dumps(payload), now=NOW)


def via_feishu(payload: dict[str, Any]) -> Adapted:
    if "header" in payload:
        payload["header"]["token"] = FEISHU.secret
    else:
        payload["token"] = FEISHU.secret
    return feishu.adapt(source=FEISHU, headers={}, body=orjson.dumps(payload), now=NOW)


def test_generic_single_event_and_batch_keep_their_locations():
    one = via_generic({"id": "e1", "type": "message.created"})
    assert one.raws == [{"id": "e1", "type": "message.created"}] and one.locs == [()]
    batch = via_generic({"events": [{"id": "a"}, {"id": "b"}]})
    assert [r["id"] for r in batch.raws] == ["a", "b"]
    assert batch.locs == [("events", 0), ("events", 1)]


@pytest.mark.parametrize(
    ("payload", "kind"),
    [
        ({"events": {}}, "list_type"),
        ({"events": []}, "too_short"),
        ({"events": [{}] * (generic.MAX_BATCH + 1)}, "too_long"),
        ({"events": [{}, 3]}, "dict_type"),
        ([1, 2], "dict_type"),
    ],
)
def test_generic_refuses_malformed_batches(payload, kind):
    with pytest.raises(InvalidPayload) as caught:
        via_generic(payload)
    assert caught.value.details[0]["type"] == kind


def test_slack_message_maps_to_a_canonical_message():
    payload = load("slack_message")
    [raw] = via_slack(payload).raws
    assert raw == {
        "id": "Ev123ABC456",
        "type": "message.created",
        "group_id": "slack:T123ABC456:C123ABC456",
        "member_id": "slack:T123ABC456:U123ABC456",
        "occurred_at": "2012-12-14T20:38:43.000005+00:00",
        "data": {
            "message_id": "1355517523.000005",
            "text": "Hello world",
            "kind": "text",
            "mentions": [],
            "reply_to": None,
            "attachments": [],
        },
    }


def test_slack_mentions_threads_files_joins_and_leaves():
    [mention] = via_slack(load("slack_message_mention")).raws
    assert mention["data"]["mentions"] == ["slack:T123ABC456:U0G9QF9C6"]
    assert mention["data"]["reply_to"] == "1355517523.000005"
    assert mention["data"]["kind"] == "link"
    [file_share] = via_slack(load("slack_file_share")).raws
    assert file_share["data"]["kind"] == "image"
    assert file_share["data"]["attachments"][0]["name"] == "photo.png"
    [joined] = via_slack(load("slack_member_joined_channel")).raws
    assert joined["type"] == "member.joined"
    assert joined["member_id"] == "slack:T123ABC456:W123ABC456"
    assert joined["data"]["invited_by"] == "slack:T123ABC456:U123456789"
    [left] = via_slack(load("slack_member_left_channel")).raws
    assert (left["type"], left["data"]["reason"]) == ("member.left", "left")


def test_slack_challenge_edits_and_bots():
    challenge = load("slack_url_verification")
    assert via_slack(challenge).challenge == {"challenge": challenge["challenge"]}
    for name in ("slack_message_changed", "slack_bot_message"):
        adapted = via_slack(load(name))
        assert (adapted.raws, adapted.ignored) == ([], 1)


def test_slack_malformed_callback_names_the_field():
    payload = load("slack_message")
    payload["event"]["ts"] = "not-a-ts"
    with pytest.raises(InvalidPayload) as caught:
        via_slack(payload)
    assert caught.value.details[0]["loc"] == ["body", "event", "ts"]


def test_telegram_message_photo_joins_and_leaves():
    [message] = via_telegram(load("telegram_message")).raws
    assert message["id"] == "10000"
    assert message["group_id"] == "telegram:-1001111111"
    assert message["member_id"] == "telegram:1111111"
    assert message["occurred_at"] == "2015-09-07T17:05:32+00:00"
    assert message["data"]["text"] == "/start"
    assert message["data"]["display_name"] == "Test Firstname Test Lastname"
    [photo] = via_telegram(load("telegram_photo")).raws
    assert (photo["data"]["kind"], photo["data"]["reply_to"]) == ("image", "1365")
    [bob] = via_telegram(load("telegram_chat_member_added")).raws
    assert (bob["id"], bob["member_id"]) == ("10008:3333333", "telegram:3333333")
    assert bob["data"] == {
        "display_name": "Bob Li",
        "invited_by": "telegram:1111111",
        "method": "invite",
        "channel": None,
    }
    [gone] = via_telegram(load("telegram_chat_member_left")).raws
    assert (gone["type"], gone["data"]) == ("member.left", {"reason": "left", "by": None})
    [carol] = via_telegram(load("telegram_chat_member")).raws
    assert (carol["type"], carol["data"]["method"]) == ("member.joined", "link")


def test_telegram_ignores_edits_private_chats_and_refuses_bad_ids():
    private = load("telegram_message")
    private["message"]["chat"] = {"id": 1, "type": "private"}
    for payload in (load("telegram_edited_message"), private):
        assert via_telegram(payload).ignored == 1
    bad = load("telegram_message")
    bad["message"]["chat"]["id"] = "not-an-int"
    with pytest.raises(InvalidPayload) as caught:
        via_telegram(bad)
    assert caught.value.details[0]["loc"] == ["body", "message", "chat", "id"]
    with pytest.raises(Unauthenticated):
        telegram.adapt(source=TELEGRAM, headers={}, body=b"{}", now=NOW)


def test_feishu_text_post_and_member_events():
    [text] = via_feishu(load("feishu_message_receive")).raws
    assert text["group_id"] == "feishu:oc_5ce6d572455d361153b7xx51da133945"
    assert text["occurred_at"] == "2020-12-27T12:45:51.345000+00:00"
    assert text["data"]["text"] == "@Tom hello"
    assert text["data"]["mentions"] == ["feishu:ou_84aad35d084aa403a838cf73ee18467"]
    [post] = via_feishu(load("feishu_message_post")).raws
    assert post["data"]["text"] == "我是一个标题\n第一行 :超链接@Tom\n"
    assert post["data"]["kind"] == "link"
    [added] = via_feishu(load("feishu_member_added")).raws
    assert added["type"] == "member.joined"
    assert added["data"]["method"] == "invite"
    [deleted] = via_feishu(load("feishu_member_deleted")).raws
    by = "feishu:ou_84aad35d084aa403a838cf73ee18467"
    assert deleted["data"] == {"reason": "removed", "by": by}


def test_feishu_challenge_private_chats_and_wrong_token():
    assert via_feishu(load("feishu_url_verification")).challenge == {"challenge": "ajls384kdjx98XX"}
    p2p = load("feishu_message_receive")
    p2p["event"]["message"]["chat_type"] = "p2p"
    assert via_feishu(p2p).ignored == 1
    wrong = orjson.dumps(load("feishu_message_receive"))  # the documented token
    with pytest.raises(Unauthenticated):
        feishu.adapt(source=FEISHU, headers={}, body=wrong, now=NOW)


def test_feishu_encrypted_events_need_the_signature():
    payload = load("feishu_message_receive")
    payload["header"]["token"] = FEISHU_ENC.secret
    key = FEISHU_ENC.encrypt_key
    assert key is not None
    body = orjson.dumps({"encrypt": encrypt_feishu(key, orjson.dumps(payload), os.urandom(16))})
    headers = {
        "x-lark-request-timestamp": TS,
        "x-lark-request-nonce": "n",
        "x-lark-signature": feishu_signature(key, TS, "n", body),
    }
    [raw] = feishu.adapt(source=FEISHU_ENC, headers=headers, body=body, now=NOW).raws
    assert raw["data"]["text"] == "@Tom hello"
    with pytest.raises(Unauthenticated, match="x-lark-signature"):
        feishu.adapt(source=FEISHU_ENC, headers={}, body=body, now=NOW)
