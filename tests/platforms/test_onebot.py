"""OneBot v11 client against the double: every operation in a QQ group."""

from __future__ import annotations

import time

import pytest

from services.platforms import Mention, OperationRequest
from tools.platform_double import DoubleConfig, Fault

pytestmark = pytest.mark.anyio

GROUP_NO = "123456"
GROUP = f"qq:{GROUP_NO}"


def op(operation, **fields) -> OperationRequest:
    return OperationRequest(operation=operation, group_id=GROUP, record_id="rec-1", **fields)


async def test_delete_msg(double, make_client):
    seeded = double.state.seed_message("onebot", GROUP_NO, "10001", "广告")
    result = await make_client("onebot").carry_out(op("delete", message_id=seeded.id))
    assert result.outcome == "delivered"
    assert double.state.group("onebot", GROUP_NO).messages[seeded.id].deleted
    call = double.state.calls_of("onebot", "delete_msg")[0]
    assert call.body == {"message_id": int(seeded.id)}


async def test_mute_then_unmute_with_duration_zero(double, make_client):
    client = make_client("onebot")
    group = double.state.group("onebot", GROUP_NO)
    await client.carry_out(op("mute", member_id="qq:10001", duration_seconds=600))
    until = group.muted_until["10001"]
    assert until is not None and 590 < until - time.time() <= 600
    assert (await client.carry_out(op("unmute", member_id="qq:10001"))).outcome == "delivered"
    assert not group.muted("10001")
    assert double.state.calls_of("onebot", "set_group_ban")[-1].body["duration"] == 0


@pytest.mark.parametrize(("operation", "reject"), [("kick", False), ("ban", True)])
async def test_kick_and_ban(double, make_client, operation, reject):
    result = await make_client("onebot").carry_out(op(operation, member_id="qq:10001"))
    assert result.outcome == "delivered"
    call = double.state.calls_of("onebot", "set_group_kick")[0]
    assert call.body["reject_add_request"] is reject
    assert ("10001" in double.state.group("onebot", GROUP_NO).banned) is reject


async def test_unban_is_unsupported(double, make_client):
    result = await make_client("onebot").carry_out(op("unban", member_id="qq:10001"))
    assert result.outcome == "unsupported" and "reject_add_request" in result.detail


async def test_post_reply_with_at(double, make_client):
    seeded = double.state.seed_message("onebot", GROUP_NO, "10001", "hi")
    mentions = (Mention("qq:10001", "小红"),)
    post = op("post", text="@小红 请勿刷屏 [1]", reply_to=seeded.id, mentions=mentions)
    result = await make_client("onebot").carry_out(post)
    assert result.outcome == "delivered"
    [posted] = double.state.group("onebot", GROUP_NO).posts()
    assert posted.id == result.platform_message_id
    assert posted.reply_to == seeded.id and posted.mentions == ["10001"]
    assert posted.text == "@10001 请勿刷屏 [1]"
    message = double.state.calls_of("onebot", "send_group_msg")[0].body["message"]
    assert message == f"[CQ:reply,id={seeded.id}][CQ:at,qq=10001] 请勿刷屏 &#91;1&#93;"


async def test_join_requests_by_flag(double, make_client):
    group = double.state.group("onebot", GROUP_NO)
    group.join_requests.update({"7": "pending", "8": "pending"})
    double.state.flags.update({"f7": (GROUP_NO, "7"), "f8": (GROUP_NO, "8")})
    client = make_client("onebot")
    assert (await client.carry_out(op("approve_join", request_ref="f7"))).outcome == "delivered"
    assert (await client.carry_out(op("decline_join", request_ref="f8"))).outcome == "delivered"
    assert group.join_requests == {"7": "approved", "8": "declined"}


async def test_missing_or_wrong_access_token_is_forbidden(make_client):
    for token in (None, "wrong"):
        result = await make_client("onebot", access_token=token).carry_out(
            op("kick", member_id="qq:1")
        )
        assert result.outcome == "forbidden"


async def test_api_base_replaces_only_scheme_and_host(double, make_client):
    await make_client("onebot").carry_out(op("kick", member_id="qq:1"))
    assert double.state.calls_of("onebot", "set_group_kick")


async def test_approval_adds_the_member_once_and_the_call_is_napcats(double, make_client, http):
    flag = (
        await http.post(
            f"{double.base_url}/_double/groups/onebot/{GROUP_NO}/join_requests",
            json={"member": "20002", "flag": "1742714780404951"},
        )
    ).json()["flag"]
    client = make_client("onebot")
    first = await client.carry_out(op("approve_join", request_ref=flag))
    assert first.outcome == "delivered"
    group = double.state.group("onebot", GROUP_NO)
    assert "20002" in group.members and group.join_requests["20002"] == "approved"
    [call] = double.state.calls_of("onebot", "set_group_add_request")
    assert call.body == {"flag": flag, "sub_type": "add", "type": "add", "approve": True}
    again = await client.carry_out(op("decline_join", request_ref=flag))
    assert again.outcome == "failed" and "retcode 100" in again.detail
    assert group.join_requests["20002"] == "approved"


async def test_double_checks_add_requests_as_napcat_does(double, http):
    double.state.config = DoubleConfig(strict=True, onebot_flavour="napcat")
    double.state.flags["f1"] = (GROUP_NO, "1")
    double.state.group("onebot", GROUP_NO).join_requests["1"] = "pending"
    url = f"{double.onebot_url}/set_group_add_request"
    auth = {"Authorization": f"Bearer {double.state.config.onebot_token}"}
    for body in ({"flag": 1}, {"flag": "f1", "approve": 1}, {"flag": "f1", "sub_type": "kick"}):
        answer = (await http.post(url, json=body, headers=auth)).json()
        assert (answer["status"], answer["retcode"]) == ("failed", 400), body  # HTTP API
    declined = await http.post(url, json={"flag": "f1", "approve": "false"}, headers=auth)
    assert declined.json()["status"] == "ok"
    assert double.state.group("onebot", GROUP_NO).join_requests["1"] == "declined"
    assert "1" not in double.state.group("onebot", GROUP_NO).members


async def test_failed_retcodes_map_to_failed_or_forbidden(double, make_client):
    result = await make_client("onebot").carry_out(op("approve_join", request_ref="unknown"))
    assert result.outcome == "failed" and not result.retryable
    assert "set_group_add_request: retcode 100" in result.detail
    double.state.add_fault(Fault("onebot", "forbidden", method="set_group_ban"))
    muted = await make_client("onebot").carry_out(op("mute", member_id="qq:1", duration_seconds=60))
    assert muted.outcome == "forbidden" and "权限" in muted.detail


async def test_a_rate_limit_is_retried_after_the_hint_and_nothing_changes(double, make_client):
    double.state.add_fault(Fault("onebot", "rate_limit", method="set_group_ban", retry_after=7))
    result = await make_client("onebot").carry_out(
        op("mute", member_id="qq:10001", duration_seconds=60)
    )
    assert result.outcome == "failed" and result.retry_after == 7.0 and "429" in result.detail
    assert not double.state.group("onebot", GROUP_NO).muted("10001")


FLAVOURS = ["spec", "go-cqhttp", "lagrange", "napcat"]


@pytest.mark.parametrize("flavour", FLAVOURS)
async def test_an_action_the_implementation_lacks_is_unsupported(double, make_client, flavour):
    """HTTP 404 (the spec), retcode 404 (go-cqhttp, Lagrange), `不支持的Api` (NapCat)."""
    double.state.config = DoubleConfig(
        strict=True, onebot_flavour=flavour, onebot_missing=frozenset({"set_group_add_request"})
    )
    double.state.flags["f7"] = (GROUP_NO, "7")
    double.state.group("onebot", GROUP_NO).join_requests["7"] = "pending"
    result = await make_client("onebot").carry_out(op("approve_join", request_ref="f7"))
    assert result.outcome == "unsupported", (flavour, result)
    assert "no action set_group_add_request" in result.detail and not result.retryable
    assert double.state.group("onebot", GROUP_NO).join_requests["7"] == "pending"
    [call] = double.state.calls_of("onebot", "set_group_add_request")
    assert call.status == (404 if flavour == "spec" else 200)


@pytest.mark.parametrize("flavour", FLAVOURS)
async def test_token_refusals_are_forbidden_however_the_implementation_says_them(
    double, make_client, flavour
):
    double.state.config = DoubleConfig(strict=True, onebot_flavour=flavour)
    for token, spec_status in ((None, 401), ("wrong", 403)):
        result = await make_client("onebot", access_token=token).carry_out(
            op("kick", member_id="qq:1")
        )
        assert result.outcome == "forbidden", (flavour, token, result)
        status = double.state.calls_of("onebot", "set_group_kick")[-1].status
        assert status == (403 if flavour == "napcat" else spec_status)
    assert double.state.group("onebot", GROUP_NO).removed == []


@pytest.mark.parametrize(
    ("retcode", "words"), [(None, "机器人权限不足"), (1401, "retcode 1401"), (1403, "retcode 1403")]
)
async def test_rights_refusals_are_forbidden_and_change_nothing(
    double, make_client, retcode, words
):
    """go-cqhttp's retcode 100 `机器人权限不足`, and the spec's 1401/1403 a gateway relays."""
    double.state.add_fault(Fault("onebot", "forbidden", method="set_group_kick", retcode=retcode))
    result = await make_client("onebot").carry_out(op("ban", member_id="qq:10001"))
    assert result.outcome == "forbidden" and words in result.detail, result
    assert not result.retryable
    assert "10001" not in double.state.group("onebot", GROUP_NO).banned
