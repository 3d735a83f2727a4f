"""WeCom, pure: the callback proofs against wechatpy and WeCom's sample, the event mapping,
the enrichment of a join, errcodes → outcomes, the source's keys checked at start-up."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import httpx
import pytest
from pydantic import ValidationError

from services.common.contracts.events import MemberJoined, parse_event
from services.platforms.inbound import InvalidPayload, Unauthenticated
from services.platforms.wecom import api, crypto, enrich, inbound
from tests.platforms import wecom_samples as ws

CHAT = "wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA"


def adapt(query, body, source=None, now=None):
    src = source or ws.source()
    return inbound.adapt(source=src, query=query, body=body, now=now or time.time())


def test_wecoms_own_url_check_sample_decrypts_to_its_echo():
    doc = ws.DOC_URL_CHECK
    src = ws.source(secret=doc["token"], encrypt_key=doc["key"], app_id=doc["corp_id"])
    now = int(doc["query"]["timestamp"])
    assert inbound.verify_url(source=src, query=doc["query"], now=now) == doc["echo"]
    with pytest.raises(Unauthenticated, match="ReceiveId"):
        inbound.verify_url(source=ws.source(secret=doc["token"]), query=doc["query"], now=now)
    with pytest.raises(Unauthenticated, match="300 s"):  # the sample is from 2014
        inbound.verify_url(source=src, query=doc["query"], now=time.time())


def test_signature_agrees_with_wechatpy():
    args = ("tok", "1409659589", "263014780", "P9nAzC+/==")
    assert crypto.callback_signature(*args) == ws.signature(*args)


@pytest.mark.parametrize(
    ("key", "problem"),
    [("short", "43 characters"), ("!" * 43, "not base64"), (ws.ENCODING_AES_KEY, None)],
)
def test_encoding_aes_key_is_checked(key, problem):
    if problem is None:
        assert len(crypto.aes_key(key)) == 32
    else:
        with pytest.raises(ValueError, match=problem):
            crypto.aes_key(key)


def test_add_member_maps_each_listed_member_with_the_join_scene():
    xml = ws.change_xml(
        CHAT, "add_member", ["wmJack", "zhangsan"], join_scene=3, created=1700000000
    )
    adapted = adapt(*ws.encrypted_post(xml))
    assert adapted.ignored == 0
    first, second = (parse_event({**raw, "source": "s", "received_at": "2026-01-01T00:00:00Z"})
                     for raw in adapted.raws)  # fmt: skip
    assert first.type == "member.joined" and first.group_id == f"wecom:{CHAT}"
    assert first.member_id == "wecom:wmJack" and second.member_id == "wecom:zhangsan"
    assert first.data.method == "qrcode" and first.data.invited_by is None
    assert first.occurred_at == datetime.fromtimestamp(1700000000, UTC)
    assert first.id.endswith(":wmJack") and first.id.split(":")[0] == second.id.split(":")[0]


@pytest.mark.parametrize(("scene", "method"), [(0, "invite"), (3, "qrcode"), (1, "other")])
def test_join_scenes(scene, method):
    xml = ws.change_xml(CHAT, "add_member", ["wmA"], join_scene=scene)
    assert adapt(*ws.encrypted_post(xml)).raws[0]["data"] == {"method": method}


@pytest.mark.parametrize(("scene", "reason"), [(0, "left"), (1, "removed")])
def test_del_member_reason_from_quit_scene(scene, reason):
    xml = ws.change_xml(CHAT, "del_member", ["wmA"], quit_scene=scene)
    [raw] = adapt(*ws.encrypted_post(xml)).raws
    assert raw["type"] == "member.left" and raw["data"] == {"reason": reason}


def test_old_comma_separated_member_list():
    xml = ws.change_xml(CHAT, "add_member", ["wmA", "wmB"], join_scene=0, items=False)
    members = [raw["member_id"] for raw in adapt(*ws.encrypted_post(xml)).raws]
    assert members == ["wecom:wmA", "wecom:wmB"]


def test_the_same_change_has_the_same_ids_and_another_change_others():
    xml = ws.change_xml(CHAT, "add_member", ["wmA"], join_scene=0, version="v1", created=1)
    again = adapt(*ws.encrypted_post(xml)).raws[0]["id"]  # re-encrypted: new IV, new nonce
    assert adapt(*ws.encrypted_post(xml)).raws[0]["id"] == again
    other = ws.change_xml(CHAT, "add_member", ["wmA"], join_scene=0, version="v2", created=1)
    assert adapt(*ws.encrypted_post(other)).raws[0]["id"] != again


@pytest.mark.parametrize(
    "xml",
    [
        ws.change_xml(CHAT, "change_name", None),
        ws.change_xml(CHAT, "change_notice", None),
        ws.change_xml(CHAT, "", None, change_type="create"),
        ws.change_xml(CHAT, "", None, change_type="dismiss"),
        ws.change_xml(CHAT, "add_member", None, join_scene=0),  # no MemChangeList
        ws.change_xml("x", "", None, event="change_external_contact"),
    ],
)
def test_other_changes_are_ignored(xml):
    adapted = adapt(*ws.encrypted_post(xml))
    assert adapted.raws == [] and adapted.ignored == 1


def test_refusals():
    xml = ws.change_xml(CHAT, "add_member", ["wmA"], join_scene=0)
    query, body = ws.encrypted_post(xml)
    with pytest.raises(Unauthenticated, match="msg_signature"):
        adapt({**query, "msg_signature": "0" * 40}, body)
    with pytest.raises(Unauthenticated, match="missing nonce"):
        adapt({k: v for k, v in query.items() if k != "nonce"}, body)
    with pytest.raises(Unauthenticated, match="300 s"):
        adapt(*ws.encrypted_post(xml, at=time.time() - 301))
    with pytest.raises(Unauthenticated, match="ReceiveId"):
        adapt(*ws.encrypted_post(xml, corp_id="ww_other_corp"))
    with pytest.raises(Unauthenticated, match="msg_signature"):
        adapt(*ws.encrypted_post(xml, token="another-token"))


def test_tampered_or_badly_padded_ciphertext_is_unauthenticated():
    xml = ws.change_xml(CHAT, "add_member", ["wmA"], join_scene=0)
    query, body = ws.encrypted_post(xml)
    encrypt = inbound.parse_xml(body).findtext("Encrypt")
    assert encrypt
    for ciphertext in (ws.tampered(encrypt), ws.bad_padding_ciphertext(xml), "not base64!", "QUJD"):
        with pytest.raises(Unauthenticated):
            adapt(*ws.signed_post(ciphertext))


@pytest.mark.parametrize(
    ("body", "loc", "msg"),
    [
        (b"<xml><Encrypt>abc</Encr", [], "not well-formed XML"),
        (b"{}", [], "not well-formed XML"),
        (b"<xml><ToUserName>x</ToUserName></xml>", ["Encrypt"], "Field required"),
        (b'<!DOCTYPE x [<!ENTITY a "b">]><xml><Encrypt>&a;</Encrypt></xml>', [], "DOCTYPE"),
    ],
)
def test_malformed_xml_is_invalid_naming_what(body, loc, msg):
    query = {"msg_signature": "x", "timestamp": str(int(time.time())), "nonce": "n"}
    with pytest.raises(InvalidPayload) as caught:
        adapt(query, body)
    [detail] = caught.value.details
    assert detail["loc"] == ["body", *loc] and msg in detail["msg"]


def test_a_decrypted_event_missing_its_chat_is_invalid():
    xml = ws.change_xml(CHAT, "add_member", ["wmA"], join_scene=0).replace(
        f"<ChatId><![CDATA[{CHAT}]]></ChatId>", ""
    )
    with pytest.raises(InvalidPayload) as caught:
        adapt(*ws.encrypted_post(xml))
    assert caught.value.details[0]["loc"] == ["body", "ChatId"]


def joined(method="invite", occurred=1700000000) -> MemberJoined:
    event = parse_event(
        {
            "id": "x:wmA",
            "source": "s",
            "type": "member.joined",
            "group_id": f"wecom:{CHAT}",
            "member_id": "wecom:wmA",
            "occurred_at": datetime.fromtimestamp(occurred, UTC).isoformat(),
            "received_at": datetime.now(UTC).isoformat(),
            "data": {"method": method},
        }
    )
    assert isinstance(event, MemberJoined)
    return event


def test_enriched_join_takes_inviter_join_way_state_and_name():
    entry = {
        "userid": "wmA",
        "type": 2,
        "join_time": 1700000000,
        "join_scene": 2,
        "invitor": {"userid": "zhangsan"},
        "state": "渠道A",
        "group_nickname": "",
        "name": "王语嫣",
    }
    data = enrich.enriched(joined(), entry).data
    assert data.invited_by == "wecom:zhangsan" and data.method == "link"
    assert data.channel == "渠道A" and data.display_name == "王语嫣"


def test_enrichment_of_a_later_rejoin_or_a_bad_entry_keeps_the_join():
    event = joined(occurred=1700000000)
    later = {"userid": "wmA", "join_time": 1700000000 + 3600, "state": "B", "join_scene": 3}
    assert enrich.enriched(event, later) == event
    too_long = {"userid": "wmA", "join_time": 1700000000, "state": "x" * 65}
    assert enrich.enriched(event, too_long) == event
    self_invited = {"userid": "wmA", "join_time": 1, "join_scene": 3, "invitor": {"userid": "wmA"}}
    data = enrich.enriched(event, self_invited).data
    assert data.invited_by is None and data.method == "qrcode"


def answer(body: dict, status: int = 200) -> httpx.Response:
    return httpx.Response(status, json=body)


@pytest.mark.parametrize(
    ("response", "outcome", "retry_after"),
    [
        (answer({"errcode": 0, "errmsg": "ok", "msgid": "m1"}), "delivered", None),
        (answer({"errcode": 45009, "errmsg": "api freq out of limit"}), "failed", 60.0),
        (answer({"errcode": 48002, "errmsg": "api forbidden"}), "forbidden", None),
        (answer({"errcode": 60011, "errmsg": "no privilege"}), "forbidden", None),
        (answer({"errcode": 40001, "errmsg": "invalid credential"}), "forbidden", None),
        (answer({"errcode": 40058, "errmsg": "invalid parameter"}), "failed", None),
        (answer({"errcode": -1, "errmsg": "system busy"}), "failed", None),
        (httpx.Response(502), "failed", None),
    ],
)
def test_errcodes_map_to_outcomes(response, outcome, retry_after):
    result = api.classify(response)
    assert result.outcome == outcome and result.retry_after == retry_after
    if outcome == "delivered":
        assert result.platform_message_id == "m1"
    if response.status_code == 502 or response.json().get("errcode") == -1:
        assert result.retryable


def test_source_keys_are_checked_at_start_up():
    assert not ws.source().has_outbound  # inbound only: app_id is the corp id callbacks carry
    assert ws.source(app_secret="s").has_outbound
    with pytest.raises(ValidationError, match="needs app_id"):
        ws.source(app_id=None)
    with pytest.raises(ValidationError, match="EncodingAESKey.*43 characters"):
        ws.source(encrypt_key="too-short")
    with pytest.raises(ValidationError, match="EncodingAESKey"):
        ws.source(encrypt_key=None)
