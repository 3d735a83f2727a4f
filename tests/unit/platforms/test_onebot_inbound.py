"""OneBot v11 events -> canonical events, calling the adapter directly (no app, no servers).

Payloads are the OneBot v11 spec's and NapCat's shapes (tests/ingest/payloads/README.md).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import orjson
import pytest

from services.common.settings import Source
from services.platforms.inbound import Adapted, InvalidPayload, Unauthenticated
from services.platforms.onebot import inbound as onebot
from services.platforms.onebot.inbound import cq_segments, onebot_signature, verify_onebot
from tests.unit.ingest.platforms import NOW, load

ONEBOT = Source(id="qq", platform="onebot", secret="onebot-secret")
SELF_ID = "10001000"


def headers_for(body: bytes, *, secret: str = ONEBOT.secret, upper: bool = False) -> dict:
    digest = hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()
    return {"x-signature": "sha1=" + (digest.upper() if upper else digest), "x-self-id": SELF_ID}


def via_onebot(payload: Any, **kwargs: Any) -> Adapted:
    body = orjson.dumps(payload)
    return onebot.adapt(source=ONEBOT, headers=headers_for(body, **kwargs), body=body, now=NOW)


def refused(payload: Any) -> list[Any]:
    with pytest.raises(InvalidPayload) as caught:
        via_onebot(payload)
    return caught.value.details[0]["loc"]


def test_signature_is_hmac_sha1_of_the_raw_body_compared_case_insensitively():
    body = b'{"post_type":"meta_event"}'
    expected = "sha1=" + hmac.new(b"k", body, hashlib.sha1).hexdigest()
    assert onebot_signature("k", body) == expected
    verify_onebot(secret="k", headers={"x-signature": expected}, body=body)
    upper = "sha1=" + expected[5:].upper()  # Lagrange.OneBot's Convert.ToHexString
    verify_onebot(secret="k", headers={"x-signature": upper}, body=body)
    verify_onebot(secret="k", headers={"x-signature": "SHA1=" + expected[5:]}, body=body)


@pytest.mark.parametrize(
    "signature",
    [
        None,
        "",
        "sha1=" + "0" * 40,
        "sha256=" + hmac.new(b"k", b"{}", hashlib.sha256).hexdigest(),
        hmac.new(b"k", b"{}", hashlib.sha1).hexdigest(),  # no scheme
        "sha1=" + hmac.new(b"other", b"{}", hashlib.sha1).hexdigest(),
        "sha1=" + hmac.new(b"k", b"{} ", hashlib.sha1).hexdigest(),  # another body
    ],
)
def test_every_wrong_signature_is_refused(signature):
    headers = {} if signature is None else {"x-signature": signature}
    with pytest.raises(Unauthenticated):
        verify_onebot(secret="k", headers=headers, body=b"{}")


def test_x_self_id_is_required_and_must_match_the_body():
    body = orjson.dumps(load("onebot_heartbeat"))
    good = headers_for(body)
    for headers in ({**good, "x-self-id": "10001001"}, {"x-signature": good["x-signature"]}):
        with pytest.raises(Unauthenticated):
            onebot.adapt(source=ONEBOT, headers=headers, body=body, now=NOW)


def test_cq_codes_are_split_and_unescaped():
    segments = cq_segments(
        "&#91;第一部分&#93;[CQ:image,file=123.jpg]之后 &amp; 表情：[CQ:face,id=123]"
        "[CQ:share,title=震惊&#44;小伙,url=http://baidu.com/?a=1&amp;b=2][CQ:shake]"
    )
    assert segments == [
        ("text", {"text": "[第一部分]"}),
        ("image", {"file": "123.jpg"}),
        ("text", {"text": "之后 & 表情："}),
        ("face", {"id": "123"}),
        ("share", {"title": "震惊,小伙", "url": "http://baidu.com/?a=1&b=2"}),
        ("shake", {}),
    ]
    title_with_equals = cq_segments("[CQ:share,title=标题中有=等号,url=http://baidu.com]")
    assert title_with_equals == [("share", {"title": "标题中有=等号", "url": "http://baidu.com"})]


def test_napcat_array_message_maps_reply_mention_text_and_image():
    [raw] = via_onebot(load("onebot_group_message_array")).raws
    assert raw == {
        "id": "message:123456:1410911054",
        "type": "message.created",
        "group_id": "qq:123456",
        "member_id": "qq:12345678",
        "occurred_at": "2018-01-06T02:04:14+00:00",
        "data": {
            "message_id": "1410911054",
            "text": "@87654321 加我微信 ",
            "kind": "image",
            "mentions": ["qq:87654321"],
            "reply_to": "1381063063",
            "display_name": "小不点-上海-油皮",
            "attachments": [
                {
                    "kind": "image",
                    "url": "https://multimedia.nt.qq.com.cn/download?appid=1407&fileid=EhTO2BIJfWHrbjxm",
                    "name": "343363CA8F525A946D646AC0C4807CFE.png",
                }
            ],
        },
    }


def test_spec_cq_string_message_reduces_codes_to_text():
    [raw] = via_onebot(load("onebot_group_message_string")).raws
    data = raw["data"]
    assert raw["id"] == "message:123456:12"
    assert (
        data["text"]
        == "看看我刚拍的照片 [二手] @10001000@全体成员 详见 https://example.com/a?b=1&c=2"
    )
    assert data["mentions"] == ["qq:10001000"]  # `at` all mentions nobody in particular
    assert data["kind"] == "image"
    assert data["attachments"][0]["url"] == "http://gchat.qpic.cn/gchatpic_new/123.jpg"
    assert data["display_name"] == "小不点"  # an empty card falls back to the nickname
    assert data["reply_to"] is None
    # The array and the string forms of one message read the same.
    array = load("onebot_group_message_string")
    array["message"] = [{"type": t, "data": d} for t, d in cq_segments(array["message"])]
    assert via_onebot(array).raws == [raw]


def test_raw_message_is_read_when_message_is_absent():
    payload = load("onebot_group_message_string")
    del payload["message"]
    [raw] = via_onebot(payload).raws
    assert raw["data"]["text"].startswith("看看我刚拍的照片")


@pytest.mark.parametrize(
    ("segment", "kind", "text"),
    [
        ({"type": "json", "data": {"data": '{"app":"com.tencent.structmsg","prompt":"[分享]"}'}},
         "card", "[分享]"),
        ({"type": "json", "data": {"data": {"app": "com.tencent.miniapp_01", "prompt": "p"}}},
         "miniprogram", "p"),
        ({"type": "json", "data": {"data": "not json"}}, "card", ""),
        ({"type": "xml", "data": {"data": "<?xml ?>"}}, "card", ""),
        ({"type": "share", "data": {"url": "http://baidu.com", "title": "百度"}},
         "link", "百度 http://baidu.com"),
        ({"type": "record", "data": {"file": "a.amr"}}, "voice", ""),
        ({"type": "video", "data": {"file": "a.mp4", "url": "https://v.qq.com/a.mp4"}},
         "video", ""),
        ({"type": "mface", "data": {"summary": "[开心]"}}, "sticker", ""),
        ({"type": "location", "data": {"lat": "39.9", "lon": "116.3"}}, "other", ""),
        ({"type": "forward", "data": {"id": "abc"}}, "other", ""),
        ({"type": "face", "data": {"id": "178"}}, "text", ""),
        ({"type": "text", "data": {"text": "见 www.example.com 和 http://x.cn"}},
         "link", "见 www.example.com 和 http://x.cn"),
    ],
)  # fmt: skip
def test_segments_name_the_kind(segment, kind, text):
    payload = load("onebot_group_message_array")
    payload["message"] = [segment]
    [raw] = via_onebot(payload).raws
    assert (raw["data"]["kind"], raw["data"]["text"]) == (kind, text)


def test_mini_program_card_is_kind_miniprogram_with_its_prompt():
    [raw] = via_onebot(load("onebot_miniprogram")).raws
    assert raw["data"]["kind"] == "miniprogram"
    assert raw["data"]["text"] == "[QQ小程序]哔哩哔哩"
    from_string = load("onebot_miniprogram")
    from_string["message"] = from_string["raw_message"]
    assert via_onebot(from_string).raws[0]["data"]["kind"] == "miniprogram"


def test_inline_base64_image_is_carried_as_data():
    payload = load("onebot_group_message_array")
    payload["message"] = [{"type": "image", "data": {"file": "base64://iVBORw0KGgo="}}]
    [raw] = via_onebot(payload).raws
    assert raw["data"]["attachments"] == [
        {"kind": "image", "url": None, "name": None, "data": "iVBORw0KGgo="}
    ]


def test_ids_may_come_as_digit_strings():
    payload = load("onebot_group_message_array")
    payload |= {"group_id": "123456", "user_id": "12345678", "self_id": "10001000"}
    [raw] = via_onebot(payload).raws
    assert (raw["group_id"], raw["member_id"]) == ("qq:123456", "qq:12345678")


def test_group_increase_invite_and_approve():
    [invited] = via_onebot(load("onebot_group_increase")).raws
    assert invited["type"] == "member.joined"
    assert invited["member_id"] == "qq:23456789"
    assert invited["id"].startswith("notice:")
    assert invited["data"] == {
        "display_name": None,
        "invited_by": "qq:12345678",
        "method": "invite",
    }
    approved = load("onebot_group_increase") | {"sub_type": "approve"}
    [raw] = via_onebot(approved).raws
    assert raw["data"] == {"display_name": None, "invited_by": None, "method": "approval"}
    assert raw["id"] != invited["id"]


@pytest.mark.parametrize(
    ("sub_type", "operator", "data"),
    [
        ("leave", 23456789, {"reason": "left", "by": None}),
        ("leave", 0, {"reason": "left", "by": None}),  # NapCat's operator of a leave
        ("kick", 12345678, {"reason": "removed", "by": "qq:12345678"}),
        ("kick_me", 12345678, {"reason": "removed", "by": "qq:12345678"}),
    ],
)
def test_group_decrease_leave_kick_and_kick_me(sub_type, operator, data):
    payload = load("onebot_group_decrease") | {"sub_type": sub_type, "operator_id": operator}
    [raw] = via_onebot(payload).raws
    assert (raw["type"], raw["member_id"], raw["data"]) == ("member.left", "qq:23456789", data)


def test_group_card_and_join_request():
    [card] = via_onebot(load("onebot_group_card")).raws
    assert (card["type"], card["data"]) == ("member.updated", {"display_name": "小明-杭州-干皮"})
    [request] = via_onebot(load("onebot_group_request")).raws
    assert request["type"] == "member.join_requested"
    assert request["id"].startswith("request:")
    assert request["member_id"] == "qq:34567890"
    assert request["data"] == {
        "display_name": None,
        "answer": "问题：从哪里知道本群？\n答案：小红书",
        "request_ref": "1742714780404951",
        "channel": None,
    }


def test_a_long_join_answer_is_cut_to_the_contract_bound():
    [request] = via_onebot(load("onebot_group_request") | {"comment": "长" * 2000}).raws
    assert request["data"]["answer"] == "长" * onebot.MAX_ANSWER


def test_notice_ids_are_stable_whatever_the_key_order():
    payload = load("onebot_group_increase")
    reordered = dict(reversed(list(payload.items())))
    assert via_onebot(payload).raws[0]["id"] == via_onebot(reordered).raws[0]["id"]


@pytest.mark.parametrize(
    "name_or_payload",
    [
        "onebot_private_message",
        "onebot_heartbeat",
        "onebot_lifecycle",
        "onebot_group_recall",
        {**load("onebot_group_request"), "request_type": "friend"},
        {**load("onebot_group_request"), "sub_type": "invite"},  # the bot invited elsewhere
        {**load("onebot_group_message_array"), "post_type": "message_sent"},
        {**load("onebot_group_message_array"), "user_id": 10001000},  # the bot's own words
        {**load("onebot_group_message_array"), "sub_type": "notice"},
        {"time": 1, "self_id": 10001000, "post_type": "notice", "notice_type": "brand_new"},
        {"time": 1, "self_id": 10001000, "post_type": "notice", "notice_type": []},
        {"time": 1, "self_id": 10001000, "post_type": "something_else"},
    ],
)
def test_what_is_no_member_activity_is_ignored(name_or_payload):
    payload = load(name_or_payload) if isinstance(name_or_payload, str) else name_or_payload
    adapted = via_onebot(payload)
    assert (adapted.raws, adapted.ignored) == ([], 1)


def test_malformed_events_name_the_field():
    assert refused({"time": 1}) == ["body", "post_type"]
    message = load("onebot_group_message_array")
    assert refused({**message, "group_id": "群"}) == ["body", "group_id"]
    assert refused({**message, "group_id": "²"}) == ["body", "group_id"]  # a digit to isdigit
    assert refused({**message, "group_id": None}) == ["body", "group_id"]
    assert refused({**message, "message": ["text"]}) == ["body", "message", 0]
    assert refused({**message, "time": "today"}) == ["body", "time"]
    del message["message_id"]
    assert refused(message) == ["body", "message_id"]
    request = load("onebot_group_request")
    del request["flag"]
    assert refused(request) == ["body", "flag"]
    assert refused({**load("onebot_group_decrease"), "user_id": [1]}) == ["body", "user_id"]
    with pytest.raises(InvalidPayload):
        body = b"not json"
        onebot.adapt(source=ONEBOT, headers=headers_for(body), body=body, now=NOW)
