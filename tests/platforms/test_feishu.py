"""Feishu/Lark client against the double: the token flow and every operation in a chat."""

from __future__ import annotations

import asyncio
import json

import pytest

from services.platforms import Mention, OperationRequest
from services.platforms.feishu.outbound import message_uuid
from tools.platform_double import DoubleConfig

pytestmark = pytest.mark.anyio

CHAT = "oc_abc"
GROUP = f"feishu:{CHAT}"


def op(operation, record_id="rec-1", **fields) -> OperationRequest:
    return OperationRequest(operation=operation, group_id=GROUP, record_id=record_id, **fields)


def token_calls(double) -> int:
    return len(double.state.calls_of("feishu", "tenant_access_token"))


async def test_delete_recalls_the_message(double, make_client):
    seeded = double.state.seed_message("feishu", CHAT, "ou_1", "ad", id="om_1")
    result = await make_client("feishu").carry_out(op("delete", message_id=seeded.id))
    assert result.outcome == "delivered"
    assert double.state.group("feishu", CHAT).messages["om_1"].deleted


@pytest.mark.parametrize("operation", ["kick", "ban"])
async def test_kick_and_ban_remove_the_member(double, make_client, operation):
    group = double.state.group("feishu", CHAT)
    group.members.add("ou_1")
    result = await make_client("feishu").carry_out(op(operation, member_id="feishu:ou_1"))
    assert result.outcome == "delivered"
    assert group.removed == ["ou_1"]
    call = double.state.calls_of("feishu", "im.chat.members.delete")[0]
    assert call.body == {"id_list": ["ou_1"]}
    if operation == "ban":
        assert "no ban" in result.detail


@pytest.mark.parametrize("operation", ["mute", "unmute", "unban", "approve_join", "decline_join"])
async def test_what_feishu_cannot_do_is_unsupported(double, make_client, operation):
    result = await make_client("feishu").carry_out(
        op(operation, member_id="feishu:ou_1", duration_seconds=60, request_ref="x")
    )
    assert result.outcome == "unsupported" and result.detail
    assert double.state.calls_of("feishu") == []


async def test_post_with_mentions_and_stable_uuid(double, make_client):
    client = make_client("feishu")
    post = op("post", text="欢迎 @Ann", mentions=(Mention("feishu:ou_1", "Ann"),))
    first = await client.carry_out(post)
    again = await client.carry_out(post)
    assert first.outcome == again.outcome == "delivered"
    assert first.platform_message_id == again.platform_message_id
    [posted] = double.state.group("feishu", CHAT).posts()
    assert posted.text == '欢迎 <at user_id="ou_1">Ann</at>'
    assert posted.mentions == ["ou_1"] and posted.uuid == message_uuid("rec-1")
    assert len(posted.uuid) <= 50
    body = double.state.calls_of("feishu", "im.message.create")[0].body
    assert json.loads(body["content"]) == {"text": posted.text}


async def test_reply_goes_to_the_reply_endpoint(double, make_client):
    double.state.seed_message("feishu", CHAT, "ou_1", "question", id="om_q")
    result = await make_client("feishu").carry_out(op("post", text="answer", reply_to="om_q"))
    assert result.outcome == "delivered"
    [posted] = double.state.group("feishu", CHAT).posts()
    assert posted.reply_to == "om_q"
    assert double.state.calls_of("feishu", "im.message.reply")


async def test_token_is_cached_then_refreshed_before_it_expires(double, make_client):
    double.state.config = DoubleConfig(strict=True, feishu_token_ttl=2.0)
    client = make_client("feishu")
    await client.carry_out(op("post", "r1", text="one"))
    await client.carry_out(op("post", "r2", text="two"))
    assert token_calls(double) == 1
    await asyncio.sleep(1.9)
    result = await client.carry_out(op("post", "r3", text="three"))
    assert result.outcome == "delivered"
    assert token_calls(double) == 2
    rejected = [c for c in double.state.calls_of("feishu") if c.status == 400]
    assert rejected == []


async def test_a_revoked_token_is_fetched_again_once(double, make_client):
    client = make_client("feishu")
    await client.carry_out(op("post", "r1", text="one"))
    double.state.reset()  # the double forgets every token it issued
    result = await client.carry_out(op("post", "r2", text="two"))
    assert result.outcome == "delivered"
    assert token_calls(double) == 1


async def test_wrong_app_secret_is_forbidden(make_client):
    result = await make_client("feishu", app_secret="nope").carry_out(op("post", text="x"))
    assert result.outcome == "forbidden" and "10014" in result.detail
