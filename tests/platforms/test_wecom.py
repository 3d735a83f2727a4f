"""WeCom client and join enrichment against the double: the token, group posts, refusals."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from services.common.contracts.events import parse_event
from services.platforms import OperationRequest
from services.platforms.wecom import api
from services.platforms.wecom.enrich import enrich_joins
from tests.platforms import wecom_samples as ws
from tools.platform_double import DoubleConfig, Fault
from tools.platform_double.wecom import seed_group

pytestmark = pytest.mark.anyio

CHAT = "wrOgQhDgAAcwMTB7YmDkbeBsgT_AAAA"
GROUP = f"wecom:{CHAT}"


def op(operation, record_id="rec-1", **fields) -> OperationRequest:
    return OperationRequest(operation=operation, group_id=GROUP, record_id=record_id, **fields)


@pytest.fixture(autouse=True)
def no_cached_tokens() -> Iterator[None]:
    """The double forgets its tokens between tests; so does the process-wide cache."""
    api._TOKENS.clear()
    yield
    api._TOKENS.clear()


def token_calls(double) -> int:
    return len(double.state.calls_of("wecom", "gettoken"))


async def test_post_goes_to_the_owner_as_a_group_send_task(double, make_client):
    seed_group(double.state, CHAT, owner="zhangsan")
    result = await make_client("wecom").carry_out(op("post", text="今晚八点直播"))
    assert result.outcome == "delivered", result.detail
    assert "zhangsan confirms it" in result.detail
    [lookup] = double.state.calls_of("wecom", "groupchat/get")
    assert lookup.body == {"chat_id": CHAT, "need_name": 0}
    [send] = double.state.calls_of("wecom", "add_msg_template")
    assert send.body == {
        "chat_type": "group",
        "chat_id_list": [CHAT],
        "sender": "zhangsan",
        "allow_select": False,
        "text": {"content": "今晚八点直播"},
    }
    [posted] = double.state.group("wecom", CHAT).posts()
    assert posted.id == result.platform_message_id and posted.text == "今晚八点直播"


async def test_the_sources_sender_sends_without_a_lookup(double, make_client):
    seed_group(double.state, CHAT, owner="lisi")
    result = await make_client("wecom", sender="lisi").carry_out(op("post", text="hi"))
    assert result.outcome == "delivered"
    assert double.state.calls_of("wecom", "groupchat/get") == []
    assert double.state.calls_of("wecom", "add_msg_template")[0].body["sender"] == "lisi"


async def test_a_sender_who_does_not_own_the_group_fails(double, make_client):
    seed_group(double.state, CHAT, owner="zhangsan")
    result = await make_client("wecom", sender="lisi").carry_out(op("post", text="hi"))
    assert result.outcome == "failed" and "fail_list" in result.detail
    assert double.state.group("wecom", CHAT).posts() == []


@pytest.mark.parametrize("operation", ["delete", "mute", "unmute", "kick", "ban", "unban"])
async def test_enforcement_is_unsupported_pointing_to_wecoms_own_rules(
    double, make_client, operation
):
    request = op(operation, member_id="wecom:wmA", message_id="m1", duration_seconds=60)
    result = await make_client("wecom").carry_out(request)
    assert result.outcome == "unsupported" and "客户群防骚扰" in result.detail
    assert double.state.calls_of("wecom") == []


@pytest.mark.parametrize("operation", ["approve_join", "decline_join"])
async def test_join_decisions_are_unsupported_without_a_call(double, make_client, operation):
    result = await make_client("wecom").carry_out(op(operation, request_ref="flag-1"))
    assert result.outcome == "unsupported" and "no join requests" in result.detail
    assert double.state.calls_of("wecom") == []


async def test_token_is_cached_and_fetched_again_when_wecom_forgets_it(double, make_client):
    seed_group(double.state, CHAT, owner="zhangsan")
    wecom = make_client("wecom", sender="zhangsan")
    await wecom.carry_out(op("post", "r1", text="one"))
    await wecom.carry_out(op("post", "r2", text="two"))
    assert token_calls(double) == 1
    double.state.wecom_tokens.clear()  # WeCom invalidated it: 40014, fetched again once
    result = await wecom.carry_out(op("post", "r3", text="three"))
    assert result.outcome == "delivered"
    assert token_calls(double) == 2
    sends = double.state.calls_of("wecom", "add_msg_template")
    assert len(sends) == 4  # r1, r2, r3 refused (40014), r3 again


async def test_a_token_is_replaced_before_it_expires(double, make_client):
    double.state.config = DoubleConfig(strict=True, wecom_token_ttl=0.5)
    seed_group(double.state, CHAT, owner="zhangsan")
    wecom = make_client("wecom", sender="zhangsan")
    assert (await wecom.carry_out(op("post", "r1", text="one"))).outcome == "delivered"
    await asyncio.sleep(0.5)
    assert (await wecom.carry_out(op("post", "r2", text="two"))).outcome == "delivered"
    assert token_calls(double) == 2
    assert len(double.state.calls_of("wecom", "add_msg_template")) == 2  # none refused


async def test_wrong_secret_is_forbidden_and_rate_limits_wait(double, make_client):
    wrong = make_client("wecom", app_secret="nope")
    result = await wrong.carry_out(op("post", text="x"))
    assert result.outcome == "forbidden" and "40001" in result.detail
    seed_group(double.state, CHAT, owner="zhangsan")
    double.state.add_fault(ws_fault("rate_limit"))
    limited = await make_client("wecom", sender="zhangsan").carry_out(op("post", text="x"))
    assert limited.outcome == "failed" and limited.retry_after == 60.0 and "45009" in limited.detail
    double.state.add_fault(ws_fault("forbidden"))
    refused = await make_client("wecom", sender="zhangsan").carry_out(op("post", text="x"))
    assert refused.outcome == "forbidden" and "48002" in refused.detail


def ws_fault(kind: str) -> Fault:
    return Fault(platform="wecom", kind=kind, method="add_msg_template")


def join_events(*members: str):
    """member.joined events as ingest maps them from a callback (no enrichment yet)."""
    return [
        parse_event(
            {
                "id": f"d:{m}",
                "source": "wecom-test",
                "type": "member.joined",
                "group_id": GROUP,
                "member_id": f"wecom:{m}",
                "occurred_at": "2030-01-01T00:00:00+00:00",
                "received_at": "2030-01-01T00:00:00+00:00",
                "data": {"method": "invite"},
            }
        )
        for m in members
    ]


async def test_joins_are_enriched_from_groupchat_get(double):
    seed_group(
        double.state,
        CHAT,
        owner="zhangsan",
        members=[
            {"userid": "wmA", "join_scene": 3, "state": "渠道A", "name": "王语嫣"},
            {"userid": "wmB", "join_scene": 1, "invitor": {"userid": "zhangsan"}},
        ],
    )
    source = ws.source(app_secret=double.state.config.wecom_secret, api_base=double.base_url)
    a, b, c = await enrich_joins(join_events("wmA", "wmB", "wmGone"), source=source)
    assert (a.data.channel, a.data.method, a.data.display_name) == ("渠道A", "qrcode", "王语嫣")
    assert (b.data.invited_by, b.data.method, b.data.channel) == ("wecom:zhangsan", "invite", None)
    assert c.data.channel is None and c.data.invited_by is None  # not in the group any more
    [call] = double.state.calls_of("wecom", "groupchat/get")
    assert call.body == {"chat_id": CHAT, "need_name": 1}


async def test_a_slow_or_refusing_wecom_leaves_the_joins_as_they_came(double):
    seed_group(double.state, CHAT, owner="zhangsan", members=[{"userid": "wmA", "state": "A"}])
    source = ws.source(app_secret=double.state.config.wecom_secret, api_base=double.base_url)
    events = join_events("wmA")
    double.state.add_fault(Fault(platform="wecom", kind="timeout", sleep=0.8, apply=False))
    assert await enrich_joins(events, source=source, within=0.3) == events
    double.state.add_fault(Fault(platform="wecom", kind="forbidden", method="groupchat/get"))
    assert await enrich_joins(events, source=source) == events
    no_secret = ws.source(api_base=double.base_url)
    assert await enrich_joins(events, source=no_secret) == events


async def test_a_sender_outside_the_apps_visible_range_is_forbidden(double, make_client):
    """WeCom's 60011 (no privilege): the app may not act for staff outside its 可见范围."""
    double.state.config = DoubleConfig(strict=True, wecom_visible=frozenset({"zhangsan"}))
    seed_group(double.state, CHAT, owner="zhangsan")
    result = await make_client("wecom", sender="lisi").carry_out(op("post", text="hi"))
    assert result.outcome == "forbidden" and "60011" in result.detail, result
    assert "visible range" in result.detail and not result.retryable
    assert double.state.group("wecom", CHAT).posts() == []


async def test_an_owner_outside_the_visible_range_is_forbidden_before_any_send(double, make_client):
    double.state.config = DoubleConfig(strict=True, wecom_visible=frozenset({"zhangsan"}))
    seed_group(double.state, CHAT, owner="wangwu")
    result = await make_client("wecom").carry_out(op("post", text="hi"))
    assert result.outcome == "forbidden" and "60011" in result.detail, result
    assert double.state.calls_of("wecom", "groupchat/get")
    assert double.state.calls_of("wecom", "add_msg_template") == []
