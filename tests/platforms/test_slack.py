"""Slack Web API client against the double: every operation, or Slack's documented gap."""

from __future__ import annotations

import pytest

from services.platforms import Mention, OperationRequest

pytestmark = pytest.mark.anyio

CHANNEL = "C02"
GROUP = f"slack:T01:{CHANNEL}"


def op(operation, **fields) -> OperationRequest:
    return OperationRequest(operation=operation, group_id=GROUP, record_id="rec-1", **fields)


async def test_delete_uses_the_user_token(double, make_client):
    seeded = double.state.seed_message("slack", CHANNEL, "U03", "spam", id="1700000000.000100")
    result = await make_client("slack").carry_out(op("delete", message_id=seeded.id))
    assert result.outcome == "delivered"
    assert double.state.group("slack", CHANNEL).messages[seeded.id].deleted


async def test_delete_without_user_token_is_unsupported(double, make_client):
    result = await make_client("slack", user_token=None).carry_out(
        op("delete", message_id="1700000000.000100")
    )
    assert result.outcome == "unsupported" and "user_token" in result.detail
    assert double.state.calls_of("slack") == []


async def test_bot_token_cannot_delete_a_members_message(double, make_client):
    seeded = double.state.seed_message("slack", CHANNEL, "U03", "spam", id="1700000000.000200")
    bot = double.state.config.slack_bot_token
    result = await make_client("slack", user_token=bot).carry_out(
        op("delete", message_id=seeded.id)
    )
    assert result.outcome == "forbidden" and "cant_delete_message" in result.detail


@pytest.mark.parametrize("operation", ["kick", "ban"])
async def test_kick_and_ban_remove_from_the_channel(double, make_client, operation):
    group = double.state.group("slack", CHANNEL)
    group.members.add("U03")
    result = await make_client("slack").carry_out(op(operation, member_id="slack:T01:U03"))
    assert result.outcome == "delivered"
    assert group.removed == ["U03"]
    if operation == "ban":
        assert "Slack has no ban" in result.detail


@pytest.mark.parametrize("operation", ["mute", "unmute", "unban", "approve_join", "decline_join"])
async def test_what_slack_cannot_do_is_unsupported(double, make_client, operation):
    result = await make_client("slack").carry_out(
        op(operation, member_id="slack:T01:U03", request_ref="x", duration_seconds=60)
    )
    assert result.outcome == "unsupported" and result.detail
    assert double.state.calls_of("slack") == []


async def test_post_in_thread_with_mentions(double, make_client):
    parent = double.state.seed_message("slack", CHANNEL, "U03", "hi", id="1700000000.000300")
    mentions = (Mention("slack:T01:U03", "Ann"),)
    post = op("post", text="@Ann welcome <3", reply_to=parent.id, mentions=mentions)
    result = await make_client("slack").carry_out(post)
    assert result.outcome == "delivered"
    [posted] = double.state.group("slack", CHANNEL).posts()
    assert posted.id == result.platform_message_id
    assert posted.text == "<@U03> welcome &lt;3"
    assert posted.reply_to == parent.id and posted.mentions == ["U03"]


async def test_kicking_the_bot_itself_is_forbidden(make_client):
    result = await make_client("slack").carry_out(op("kick", member_id="slack:T01:UBOT"))
    assert result.outcome == "forbidden" and "cant_kick_self" in result.detail


async def test_a_bad_token_is_forbidden(make_client):
    result = await make_client("slack", bot_token="xoxb-wrong").carry_out(op("post", text="hi"))
    assert result.outcome == "forbidden" and "invalid_auth" in result.detail
