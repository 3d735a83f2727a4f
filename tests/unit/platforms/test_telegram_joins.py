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


def test_join_and_leave_service_messages_are_ignored_the_chat_member_update_counts():
    # Telegram sends both for one join or leave; counting both would count it twice.
    for name in ("telegram_new_chat_members", "telegram_left_chat_member"):
        adapted = via_telegram(load(name))
        assert (adapted.raws, adapted.ignored) == ([], 1)


def _change(old: dict[str, Any], new: dict[str, Any], *, by: int = 3333333) -> dict[str, Any]:
    payload = load("telegram_chat_member_added")
    change = payload["chat_member"]
    change["from"]["id"] = by
    change["old_chat_member"].update(old)
    change["new_chat_member"].update(new)
    return payload


@pytest.mark.parametrize(
    ("old", "new", "by", "expected"),
    [
        # Removed and banned by an admin: a removal, by them.
        (
            {"status": "member"},
            {"status": "kicked", "until_date": 0},
            1111111,
            ("member.left", {"reason": "removed", "by": "telegram:1111111"}),
        ),
        # A muted member (restricted, still in the chat) leaving.
        (
            {"status": "restricted", "is_member": True},
            {"status": "left"},
            3333333,
            ("member.left", {"reason": "left", "by": None}),
        ),
        # Joining a group whose defaults restrict newcomers: in the chat, so a join.
        (
            {"status": "left"},
            {"status": "restricted", "is_member": True},
            3333333,
            ("member.joined", {"method": "link", "invited_by": None}),
        ),
    ],
)
def test_status_changes_in_and_out_of_the_chat_are_joins_and_leaves(old, new, by, expected):
    [raw] = via_telegram(_change(old, new, by=by)).raws
    kind, data = expected
    assert raw["type"] == kind
    assert {key: raw["data"][key] for key in data} == data


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ({"status": "member"}, {"status": "administrator"}),  # promoted
        ({"status": "member"}, {"status": "restricted", "is_member": True}),  # muted
        ({"status": "left"}, {"status": "kicked", "until_date": 0}),  # banned while away
        ({"status": "left"}, {"status": "restricted", "is_member": False}),  # restricted away
    ],
)
def test_status_changes_that_keep_the_member_in_or_out_are_ignored(old, new):
    adapted = via_telegram(_change(old, new))
    assert (adapted.raws, adapted.ignored) == ([], 1)


def test_approved_joins_are_approvals_with_no_inviter_and_bots_are_not_members():
    direct = _change({"status": "left"}, {"status": "member"}, by=1111111)
    direct["chat_member"]["via_join_request"] = True
    through_link = load("telegram_chat_member_invite_link")
    through_link["chat_member"]["from"]["id"] = 1111111  # the admin who approved
    through_link["chat_member"]["invite_link"]["creates_join_request"] = True
    for payload in (direct, through_link):
        [raw] = via_telegram(payload).raws
        assert (raw["data"]["method"], raw["data"]["invited_by"]) == ("approval", None)
    assert raw["data"]["channel"] == "公众号-推文"
    bot = _change({"status": "left"}, {"status": "member"}, by=1111111)
    bot["chat_member"]["new_chat_member"]["user"]["is_bot"] = True
    adapted = via_telegram(bot)
    assert (adapted.raws, adapted.ignored) == ([], 1)
