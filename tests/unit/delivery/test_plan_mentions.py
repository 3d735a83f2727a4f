"""A record's `mention_names` reach the platform: the `@name` already in the text becomes
the mention (nothing appended); a member without a name is looked for as `@<member id>`."""

from __future__ import annotations

from typing import Any

from services.delivery.plan import plan
from services.platforms import Mention, OperationRequest
from services.platforms.telegram.outbound import mention_entities

ACTION = {
    "id": "a1",
    "group_id": "telegram:-100",
    "member_id": "telegram:42",
    "message_id": "9",
    "action": "mute",
    "duration_seconds": 600,
    "text": "@小明 因 广告 被禁言 10 分钟",
    "mentions": ["telegram:42"],
}


def _telegram_body(post: OperationRequest) -> dict[str, Any]:
    """The text and entities the Telegram client puts in the post's sendMessage body.

    The call itself is checked at the platform double (tests/moderation/test_delivered.py);
    here only the rendering, with the client's own function.
    """
    text, entities = mention_entities(post.text or "", post.mentions)
    return {"text": text, "entities": entities}


def test_a_named_mention_carries_its_display_name_and_nothing_is_appended():
    record = {**ACTION, "mention_names": {"telegram:42": "小明"}}
    _mute, post = plan(record, "telegram").steps
    assert post.mentions == (Mention("telegram:42", "小明"),)
    body = _telegram_body(post)
    assert body["text"] == "@小明 因 广告 被禁言 10 分钟"
    [entity] = body["entities"]
    assert (entity["type"], entity["offset"], entity["length"]) == ("text_mention", 0, 3)
    assert entity["user"]["id"] == 42 and entity["user"]["first_name"] == "小明"


def test_without_a_name_the_member_id_is_the_label():
    record = {**ACTION, "text": "@telegram:42 违反群规", "mention_names": {}}
    _mute, post = plan(record, "telegram").steps
    assert post.mentions == (Mention("telegram:42"),)
    assert post.mentions[0].label == "@telegram:42"
    body = _telegram_body(post)
    assert body["text"] == "@telegram:42 违反群规"
    assert [(e["offset"], e["length"]) for e in body["entities"]] == [(0, len("@telegram:42"))]


def test_records_before_mention_names_still_plan_and_append_the_id_label():
    [post] = plan(
        {
            "id": "n1",
            "group_id": "telegram:-100",
            "text": "@小明 中奖",
            "mentions": ["telegram:42"],
        },
        "telegram",
    ).steps
    assert post.mentions == (Mention("telegram:42"),)
    assert _telegram_body(post)["text"] == "@小明 中奖 @telegram:42"


def test_a_notification_names_only_the_members_it_has_names_for():
    record = {
        "id": "c1:winners",
        "group_id": "telegram:-100",
        "text": "【开奖】t：@小明（周边）、@telegram:7（贴纸）",
        "mentions": ["telegram:42", "telegram:7"],
        "mention_names": {"telegram:42": "小明"},
    }
    [post] = plan(record, "telegram").steps
    assert post.mentions == (Mention("telegram:42", "小明"), Mention("telegram:7"))
    body = _telegram_body(post)
    assert body["text"] == record["text"]
    assert [e["user"]["id"] for e in body["entities"]] == [42, 7]
