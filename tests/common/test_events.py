import orjson
import pytest
from pydantic import ValidationError

from services.common.contracts.events import (
    MAX_TEXT_BYTES,
    InvalidEvent,
    MemberJoined,
    MessageCreated,
    decode_event,
    encode_event,
    error_details,
    parse_event,
)

BASE = {
    "id": "evt-123",
    "source": "slack-main",
    "group_id": "slack:T01:C02",
    "member_id": "slack:T01:U03",
    "occurred_at": "2026-11-21T08:00:00+00:00",
    "received_at": "2026-11-21T08:00:01+00:00",
}

DESIGN_EXAMPLES = [
    {
        **BASE,
        "type": "message.created",
        "data": {
            "message_id": "m1",
            "text": "大家好，今天打卡",
            "kind": "text",
            "mentions": ["slack:T01:U04"],
            "reply_to": None,
            "display_name": "小王-上海-油皮",
            "attachments": [
                {"kind": "image", "url": "https://x/y.png", "name": "y.png", "data": "aGVsbG8="}
            ],
        },
    },
    {
        **BASE,
        "type": "member.joined",
        "data": {"display_name": "小李", "invited_by": "slack:T01:U09", "method": "qrcode"},
    },
    {**BASE, "type": "member.left", "data": {"reason": "removed", "by": "slack:T01:U01"}},
    {**BASE, "type": "member.updated", "data": {"display_name": "小李-北京-干皮"}},
]


@pytest.mark.parametrize("example", DESIGN_EXAMPLES, ids=lambda e: e["type"])
def test_design_examples_round_trip(example):
    event = parse_event(example)
    assert event.type == example["type"]
    assert decode_event(encode_event(event)) == event


def test_every_kind_and_method_accepted():
    for kind in [
        "text",
        "image",
        "link",
        "file",
        "voice",
        "video",
        "sticker",
        "card",
        "miniprogram",
        "other",
    ]:
        e = parse_event(
            {**BASE, "type": "message.created", "data": {"message_id": "m", "kind": kind}}
        )
        assert isinstance(e, MessageCreated) and e.data.kind == kind
    for method in ["invite", "link", "qrcode", "approval", "other"]:
        e = parse_event({**BASE, "type": "member.joined", "data": {"method": method}})
        assert isinstance(e, MemberJoined) and e.data.method == method


def test_times_normalised_to_utc():
    e = parse_event({**BASE, "type": "member.joined", "occurred_at": "2026-11-21T08:00:00+08:00"})
    assert e.occurred_at.isoformat() == "2026-11-21T00:00:00+00:00"


def _locs(obj):
    with pytest.raises(ValidationError) as info:
        parse_event(obj)
    return {".".join(map(str, d["loc"])) for d in error_details(info.value)}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"type": "message.deleted"}, "type"),
        ({"id": ""}, "id"),
        ({"group_id": None}, "group_id"),
        ({"group_id": "team/channel"}, "group_id"),
        ({"member_id": "u1\x00"}, "member_id"),
        ({"occurred_at": "yesterday"}, "occurred_at"),
        ({"occurred_at": "2026-11-21T08:00:00"}, "occurred_at"),  # no timezone
        ({"occurred_at": "0001-01-01T00:00:00+01:00"}, "occurred_at"),  # before UTC's year 1
        ({"occurred_at": "9999-12-31T23:59:59-01:00"}, "occurred_at"),  # after UTC's year 9999
        ({"data": {"text": "hi"}}, "data.message_id"),
        ({"data": {"message_id": "m", "kind": "gif"}}, "data.kind"),
        ({"data": {"message_id": "m", "text": "x" * (MAX_TEXT_BYTES + 1)}}, "data.text"),
        ({"data": {"message_id": "m", "mentions": "u1"}}, "data.mentions"),
        (
            {"data": {"message_id": "m", "attachments": [{"kind": "image", "data": "@@"}]}},
            "data.attachments.0.data",
        ),
    ],
)
def test_bad_events_name_the_field(change, field):
    obj = {**BASE, "type": "message.created", "data": {"message_id": "m"}, **change}
    assert field in _locs(obj)


def test_missing_field_named():
    obj = {**BASE, "type": "member.left"}
    del obj["member_id"]
    assert "member_id" in _locs(obj)


def test_decode_rejects_non_json_and_wrong_schema():
    with pytest.raises(InvalidEvent, match="not JSON"):
        decode_event(b"\xff\xfe not json")
    with pytest.raises(InvalidEvent, match="group_id"):
        decode_event(b'{"type": "member.joined", "id": "x", "source": "s"}')
    with pytest.raises(InvalidEvent):
        decode_event(None)


def test_join_channel_is_kept_and_bounded():
    """`channel` (the acquisition channel of a join) survives encoding; over 64 chars is refused."""
    base = {
        "id": "join-channel",
        "source": "generic-test",
        "type": "member.joined",
        "group_id": "g-channel",
        "member_id": "m-1",
        "occurred_at": "2026-11-21T08:00:00+00:00",
        "received_at": "2026-11-21T08:00:01+00:00",
    }
    event = decode_event(
        encode_event(decode_event(orjson.dumps({**base, "data": {"channel": "海报A"}})))
    )
    assert event.data.channel == "海报A"
    with pytest.raises(InvalidEvent, match="data.channel"):
        decode_event(orjson.dumps({**base, "data": {"channel": "x" * 65}}))
