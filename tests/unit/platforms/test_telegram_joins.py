"""Telegram join requests and invite-link channels, calling the adapter directly."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from services.platforms.inbound import Adapted, InvalidPayload
from services.platforms.telegram import inbound as telegram
from services.platforms.telegram.ids import join_request
from tests.unit.ingest.platforms import NOW, TELEGRAM, load


def via_telegram(payload: dict[str, Any]) -> Adapted:
    headers = {"x-telegram-bot-api-secret-token": TELEGRAM.secret}
    return telegram.adapt(source=TELEGRAM, headers=headers, body=orjson.dumps(payload), now=NOW)


def test_chat_join_request_is_a_join_request_with_bio_ref_and_channel():
    [raw] = via_telegram(load("telegram_chat_join_request")).raws
    assert raw == {
        "id": "10006:5555555",
        "type": "member.join_requested",
        "group_id": "telegram:-1001111111",
        "member_id": "telegram:5555555",
        "occurred_at": "2015-09-07T17:13:20+00:00",
        "data": {
            "display_name": "Dave Wu",
            "answer": "护肤博主，上海",
            "request_ref": "-1001111111:5555555",
            "channel": "小红书-春季海报",
        },
    }
    # The ref is the one delivery's approveChatJoinRequest reads back.
    assert join_request(raw["data"]["request_ref"]) == (-1001111111, 5555555)


def test_join_request_without_bio_or_link_answers_empty():
    payload = load("telegram_chat_join_request")
    del payload["chat_join_request"]["bio"]
    del payload["chat_join_request"]["invite_link"]
    [raw] = via_telegram(payload).raws
    assert (raw["data"]["answer"], raw["data"]["channel"]) == ("", None)


def test_join_request_to_a_channel_is_ignored_and_a_bad_one_names_the_field():
    channel = load("telegram_chat_join_request")
    channel["chat_join_request"]["chat"]["type"] = "channel"
    assert via_telegram(channel).ignored == 1
    bad = load("telegram_chat_join_request")
    bad["chat_join_request"]["from"]["id"] = "dave"
    with pytest.raises(InvalidPayload) as caught:
        via_telegram(bad)
    assert caught.value.details[0]["loc"] == ["body", "chat_join_request", "from", "id"]


def test_chat_member_join_takes_its_channel_from_the_invite_link_name():
    [named] = via_telegram(load("telegram_chat_member_invite_link")).raws
    assert named["type"] == "member.joined"
    assert named["data"] == {
        "display_name": "Erin",
        "invited_by": None,
        "method": "link",
        "channel": "公众号-推文",
    }
    [unnamed] = via_telegram(load("telegram_chat_member")).raws  # a link without a name
    assert unnamed["data"]["channel"] is None
