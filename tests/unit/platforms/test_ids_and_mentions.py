"""Pure mapping: our ids to each platform's, mentions rendered each platform's way."""

from __future__ import annotations

import pytest

from services.platforms import InvalidTarget, Mention, OutboundCredentials, missing_credentials
from services.platforms.base import render_mentions, split_id, stable_uuid, with_base
from services.platforms.feishu import ids as fs_ids
from services.platforms.feishu import outbound as fs
from services.platforms.onebot import ids as ob_ids
from services.platforms.onebot import outbound as ob
from services.platforms.slack import ids as sl_ids
from services.platforms.slack import outbound as sl
from services.platforms.telegram import ids as tg_ids
from services.platforms.telegram import outbound as tg


def test_ids_inbound_writes_are_the_ids_outbound_reads():
    assert tg_ids.chat_id(tg_ids.group_id(-1001234)) == -1001234
    assert tg_ids.user_id(tg_ids.member_id(42)) == 42
    assert sl_ids.group_id("T01", "C02") == "slack:T01:C02"
    assert sl_ids.user_of(sl_ids.member_id("T01", "U03")) == "U03"
    assert fs_ids.chat_of(fs_ids.group_id("oc_1")) == "oc_1"
    assert fs_ids.open_id_of(fs_ids.member_id("ou_1")) == "ou_1"
    assert ob_ids.group_of(ob_ids.group_id(123)) == 123
    assert ob_ids.user_of(ob_ids.member_id(456)) == 456


def test_group_and_member_ids_parse_per_platform():
    assert tg_ids.chat_id("telegram:-1001234") == -1001234
    assert tg_ids.user_id("telegram:42") == 42
    assert tg_ids.join_request("-1001234:42") == (-1001234, 42)
    assert sl_ids.channel_of("slack:T01:C02") == "C02"
    assert sl_ids.user_of("slack:T01:U03") == "U03"
    assert fs_ids.chat_of("feishu:oc_1") == "oc_1"
    assert fs_ids.open_id_of("feishu:ou_1") == "ou_1"
    assert ob_ids.group_of("qq:123") == 123
    assert ob_ids.user_of("qq:456") == 456


@pytest.mark.parametrize(
    ("parse", "value"),
    [
        (tg_ids.chat_id, "slack:T:C"),
        (tg_ids.chat_id, "telegram:abc"),
        (tg_ids.user_id, None),
        (sl_ids.channel_of, "slack:T01"),
        (fs_ids.chat_of, "feishu:"),
        (ob_ids.group_of, "qq:12:34"),
        (tg_ids.join_request, "42"),
    ],
)
def test_foreign_or_malformed_ids_are_invalid_targets(parse, value):
    with pytest.raises(InvalidTarget):
        parse(value)


def test_split_id_keeps_colons_in_the_last_part():
    assert split_id("slack:T1:C:x", "slack", 2, "group") == ("T1", "C:x")


def test_mentions_replace_labels_or_are_appended():
    mentions = (Mention("x:1", "Ann"), Mention("x:2"))
    out = render_mentions("hi @Ann", mentions, render=lambda m: f"<{m.member_id}>")
    assert out == "hi <x:1> <x:2>"


def test_the_same_name_twice_takes_the_next_occurrence():
    mentions = (Mention("x:1", "A"), Mention("x:2", "A"))
    assert render_mentions("@A @A", mentions, render=lambda m: m.member_id) == "x:1 x:2"


def test_each_platforms_mention_markup():
    ann = (Mention("slack:T:U1", "Ann"),)
    assert sl.render("a<b @Ann", ann) == "a&lt;b <@U1>"
    assert fs.render("@Ann <at x>", (Mention("feishu:ou_1", "Ann"),)) == (
        '<at user_id="ou_1">Ann</at> &lt;at x>'
    )
    assert ob.render("[hi] @Ann", (Mention("qq:9", "Ann"),), "5") == (
        "[CQ:reply,id=5]&#91;hi&#93; [CQ:at,qq=9]"
    )


def test_telegram_entities_count_utf16_units():
    text, entities = tg.mention_entities("😀 @Ann", (Mention("telegram:7", "Ann"),))
    assert text == "😀 @Ann"
    assert entities[0]["offset"] == 3 and entities[0]["length"] == 4
    assert entities[0]["user"] == {"id": 7, "is_bot": False, "first_name": "Ann"}


def test_feishu_uuid_is_stable_and_short():
    assert fs.message_uuid("rec-1") == fs.message_uuid("rec-1") != fs.message_uuid("rec-2")
    assert len(fs.message_uuid("r" * 500)) <= 50
    assert stable_uuid("a", 10) == stable_uuid("a", 10)


def test_api_base_replaces_scheme_and_host_only():
    assert (
        with_base("http://127.0.0.1:3000/onebot", "https://double:9") == "https://double:9/onebot"
    )
    assert with_base("http://127.0.0.1:3000/", None) == "http://127.0.0.1:3000"


def test_missing_credentials_are_named():
    assert missing_credentials("feishu", OutboundCredentials(app_id="a")) == ["app_secret"]
    assert missing_credentials("telegram", OutboundCredentials(bot_token="t")) == []
    assert missing_credentials("wecom", OutboundCredentials()) != []


def test_credentials_never_show_secrets():
    creds = OutboundCredentials(bot_token="s1", user_token="s2", app_secret="s3", access_token="s4")
    assert not any(s in repr(creds) for s in ("s1", "s2", "s3", "s4"))
    assert sorted(creds.secrets()) == ["s1", "s2", "s3", "s4"]
