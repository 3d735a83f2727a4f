"""Telegram Bot API client against the double: every operation, as the group would show it."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from services.platforms import InvalidTarget, Mention, OperationRequest

pytestmark = pytest.mark.anyio

CHAT = "-100123"
GROUP = f"telegram:{CHAT}"


def op(operation, **fields) -> OperationRequest:
    return OperationRequest(operation=operation, group_id=GROUP, record_id="rec-1", **fields)


async def test_delete_removes_the_message(double, make_client):
    seeded = double.state.seed_message("telegram", CHAT, "42", "buy now")
    result = await make_client("telegram").carry_out(op("delete", message_id=seeded.id))
    assert result.outcome == "delivered"
    assert double.state.group("telegram", CHAT).messages[seeded.id].deleted


async def test_delete_of_an_old_message_is_expired_without_a_call(double, make_client):
    old = datetime.now(UTC) - timedelta(hours=49)
    result = await make_client("telegram").carry_out(op("delete", message_id="7", message_at=old))
    assert result.outcome == "expired"
    assert double.state.calls_of("telegram") == []


async def test_delete_again_is_delivered_as_already_done(double, make_client):
    seeded = double.state.seed_message("telegram", CHAT, "42", "spam")
    client = make_client("telegram")
    await client.carry_out(op("delete", message_id=seeded.id))
    again = await client.carry_out(op("delete", message_id=seeded.id))
    assert again.outcome == "delivered" and "already" in again.detail


async def test_mute_until_then_unmute(double, make_client):
    client = make_client("telegram")
    muted = await client.carry_out(op("mute", member_id="telegram:42", duration_seconds=600))
    group = double.state.group("telegram", CHAT)
    assert muted.outcome == "delivered"
    until = group.muted_until["42"]
    assert until is not None and 590 < until - time.time() <= 600
    assert (await client.carry_out(op("unmute", member_id="telegram:42"))).outcome == "delivered"
    assert not group.muted("42")
    restrict = double.state.calls_of("telegram", "restrictChatMember")[-1].body
    assert all(restrict["permissions"].values())


async def test_kick_bans_then_unbans_so_the_member_can_return(double, make_client):
    group = double.state.group("telegram", CHAT)
    group.members.add("42")
    result = await make_client("telegram").carry_out(op("kick", member_id="telegram:42"))
    assert result.outcome == "delivered"
    assert "42" in group.removed and "42" not in group.banned
    methods = [c.method for c in double.state.calls_of("telegram")]
    assert methods == ["banChatMember", "unbanChatMember"]
    assert double.state.calls_of("telegram", "unbanChatMember")[0].body["only_if_banned"] is True


async def test_ban_and_unban(double, make_client):
    client = make_client("telegram")
    group = double.state.group("telegram", CHAT)
    assert (await client.carry_out(op("ban", member_id="telegram:42"))).outcome == "delivered"
    assert "42" in group.banned
    assert (await client.carry_out(op("unban", member_id="telegram:42"))).outcome == "delivered"
    assert "42" not in group.banned


async def test_post_replies_with_text_mentions(double, make_client):
    seeded = double.state.seed_message("telegram", CHAT, "42", "hello")
    post = op(
        "post",
        text="欢迎 @小明 入群",
        reply_to=seeded.id,
        mentions=(Mention("telegram:42", "小明"),),
    )
    result = await make_client("telegram").carry_out(post)
    assert result.outcome == "delivered" and result.platform_message_id
    [posted] = double.state.group("telegram", CHAT).posts()
    assert posted.id == result.platform_message_id
    assert posted.reply_to == seeded.id and posted.mentions == ["42"]
    body = double.state.calls_of("telegram", "sendMessage")[0].body
    assert body["reply_parameters"]["allow_sending_without_reply"] is True
    assert body["entities"][0] == {
        "type": "text_mention",
        "offset": 3,
        "length": 3,
        "user": {"id": 42, "is_bot": False, "first_name": "小明"},
    }


async def test_reply_to_a_deleted_message_still_posts(double, make_client):
    seeded = double.state.seed_message("telegram", CHAT, "42", "ad")
    client = make_client("telegram")
    await client.carry_out(op("delete", message_id=seeded.id))
    result = await client.carry_out(op("post", text="removed an ad", reply_to=seeded.id))
    assert result.outcome == "delivered"


async def test_join_requests_approved_and_declined(double, make_client):
    group = double.state.group("telegram", CHAT)
    group.join_requests.update({"7": "pending", "8": "pending"})
    client = make_client("telegram")
    approve = op("approve_join", request_ref=f"{CHAT}:7")
    decline = op("decline_join", request_ref=f"{CHAT}:8")
    assert (await client.carry_out(approve)).outcome == "delivered"
    assert (await client.carry_out(decline)).outcome == "delivered"
    assert group.join_requests == {"7": "approved", "8": "declined"}
    assert "7" in group.members


async def test_wrong_token_is_forbidden(make_client):
    result = await make_client("telegram", bot_token="1:WRONG").carry_out(
        op("ban", member_id="telegram:42")
    )
    assert result.outcome == "forbidden" and not result.retryable


async def test_a_decided_join_request_is_gone_and_a_bad_user_is_refused(double, make_client):
    group = double.state.group("telegram", CHAT)
    group.join_requests["7"] = "pending"
    client = make_client("telegram")
    approve = op("approve_join", request_ref=f"{CHAT}:7")
    assert (await client.carry_out(approve)).outcome == "delivered"
    call = double.state.calls_of("telegram", "approveChatJoinRequest")[0]
    assert call.body == {"chat_id": int(CHAT), "user_id": 7}
    again = await client.carry_out(op("decline_join", request_ref=f"{CHAT}:7"))
    assert again.outcome == "delivered" and "HIDE_REQUESTER_MISSING" in again.detail
    assert group.join_requests["7"] == "approved" and "7" in group.members
    with pytest.raises(InvalidTarget):
        await client.carry_out(op("approve_join", request_ref="7"))
