"""What the double received from the real clients, checked against the platforms' own schemas.

Telegram's community Bot API spec and Slack's OpenAPI spec, reduced to the methods qunyun
calls (tools/platform_double/specs/), say which parameters each method takes, which are
required and of what type. Every operation of the Telegram and Slack clients is carried
out against the double, and every request it saw must fit; wrong requests must not.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from services.platforms import OPERATIONS, Mention, Operation, OperationRequest
from tools.platform_double import DoubleHandle, DoubleState
from tools.platform_double import slack as slack_double
from tools.platform_double import telegram as telegram_double
from tools.platform_double.specs import contract, violations
from tools.platform_double.specs.extract import METHODS

pytestmark = pytest.mark.anyio

TG_CHAT = "-100777"
SLACK_CHANNEL = "C77"
Scenario = Callable[[DoubleState], OperationRequest]


def tg(operation: Operation, **fields) -> OperationRequest:
    return OperationRequest(
        operation=operation,
        group_id=f"telegram:{TG_CHAT}",
        record_id=f"conformance-{operation}",
        **fields,
    )


def slack(operation: Operation, **fields) -> OperationRequest:
    return OperationRequest(
        operation=operation,
        group_id=f"slack:T77:{SLACK_CHANNEL}",
        record_id=f"conformance-{operation}",
        **fields,
    )


def tg_delete(state: DoubleState) -> OperationRequest:
    seeded = state.seed_message("telegram", TG_CHAT, "42", "buy now")
    return tg("delete", message_id=seeded.id)


def tg_post(state: DoubleState) -> OperationRequest:
    seeded = state.seed_message("telegram", TG_CHAT, "42", "hello")
    mentions = (Mention("telegram:42", "小明"), Mention("telegram:43"))
    return tg("post", text="欢迎 @小明 入群 🎉", reply_to=seeded.id, mentions=mentions)


def tg_join(operation: Operation, user: str) -> Scenario:
    def scenario(state: DoubleState) -> OperationRequest:
        state.group("telegram", TG_CHAT).join_requests[user] = "pending"
        return tg(operation, request_ref=f"{TG_CHAT}:{user}")

    return scenario


def slack_delete(state: DoubleState) -> OperationRequest:
    seeded = state.seed_message("slack", SLACK_CHANNEL, "U03", "spam", id="1700000000.000100")
    return slack("delete", message_id=seeded.id)


def slack_member(operation: Operation) -> Scenario:
    def scenario(state: DoubleState) -> OperationRequest:
        state.group("slack", SLACK_CHANNEL).members.add("U03")
        return slack(operation, member_id="slack:T77:U03")

    return scenario


def slack_post(state: DoubleState) -> OperationRequest:
    seeded = state.seed_message("slack", SLACK_CHANNEL, "U03", "hi", id="1700000000.000200")
    mentions = (Mention("slack:T77:U03", "Ann"),)
    return slack("post", text="thanks @Ann <3", reply_to=seeded.id, mentions=mentions)


# Every operation, some twice with other optional parameters (the documented gaps make no call).
SCENARIOS: dict[str, list[tuple[str, Scenario]]] = {
    "telegram": [
        ("delete", tg_delete),
        ("mute", lambda s: tg("mute", member_id="telegram:42", duration_seconds=600)),
        ("mute", lambda s: tg("mute", member_id="telegram:42")),
        ("unmute", lambda s: tg("unmute", member_id="telegram:42")),
        ("kick", lambda s: tg("kick", member_id="telegram:44")),
        ("ban", lambda s: tg("ban", member_id="telegram:45")),
        ("unban", lambda s: tg("unban", member_id="telegram:45")),
        ("post", tg_post),
        ("post", lambda s: tg("post", text="the lecture starts at 8")),
        ("approve_join", tg_join("approve_join", "7")),
        ("decline_join", tg_join("decline_join", "8")),
    ],
    "slack": [
        ("delete", slack_delete),
        ("mute", lambda s: slack("mute", member_id="slack:T77:U03")),
        ("unmute", lambda s: slack("unmute", member_id="slack:T77:U03")),
        ("kick", slack_member("kick")),
        ("ban", slack_member("ban")),
        ("unban", lambda s: slack("unban", member_id="slack:T77:U03")),
        ("post", slack_post),
        ("post", lambda s: slack("post", text="the lecture starts at 8")),
        ("approve_join", lambda s: slack("approve_join", request_ref="U03")),
        ("decline_join", lambda s: slack("decline_join", request_ref="U03")),
    ],
}


def test_the_contracts_cover_what_the_double_serves_and_name_their_upstream():
    served = {"telegram": set(telegram_double.METHODS), "slack": set(slack_double.METHODS)}
    for platform, methods in METHODS.items():
        spec = contract(platform)
        assert set(spec["methods"]) == set(methods) == served[platform]
        upstream = spec["x-upstream"]
        assert len(upstream["commit"]) == 40 and len(upstream["sha256"]) == 64
        assert upstream["repo"] and upstream["licence"].startswith("MIT")


@pytest.mark.parametrize("platform", sorted(SCENARIOS))
async def test_every_request_of_every_operation_fits_the_platforms_schema(
    double: DoubleHandle, make_client, platform: str
):
    scenarios = SCENARIOS[platform]
    assert {operation for operation, _ in scenarios} == set(OPERATIONS)
    client = make_client(platform)
    for operation, scenario in scenarios:
        result = await client.carry_out(scenario(double.state))
        assert result.outcome in ("delivered", "unsupported"), (operation, result)
    calls = double.state.calls_of(platform)
    assert {c.method for c in calls} == set(METHODS[platform])  # every method exercised
    for call in calls:
        assert call.status == 200, (call.method, call.body)
        assert violations(platform, call.method, call.body) == [], call.body


WRONG_TELEGRAM = [
    ("banChatMember", {"chat_idd": -100777, "user_id": 42}, "chat_idd"),
    ("banChatMember", {"chat_id": -100777, "user_id": "42"}, "banChatMember user_id:"),
    (
        "restrictChatMember",
        {"chat_id": -100777, "user_id": 42, "permissions": {"can_send_message": False}},
        "permissions",
    ),
    (
        "sendMessage",
        {
            "chat_id": -100777,
            "text": "hi @x",
            "entities": [
                {
                    "type": "text_mention",
                    "offset": 3,
                    "length": 2,
                    "user": {"id": 42, "is_bot": False},
                }
            ],
        },
        "entities/0/user",
    ),
    ("sendMessage", {"chat_id": -100777, "text": "hi", "reply_parameters": {}}, "message_id"),
    ("kickChatMember", {"chat_id": -100777, "user_id": 42}, "not a method"),
]

WRONG_SLACK = [
    ("chat.postMessage", {"chanel": "C77", "text": "hi"}, "chanel"),
    ("chat.postMessage", {"channel": "C77", "text": "hi", "thread_ts": 1.5}, "thread_ts"),
    ("chat.delete", {"channel": "C77", "ts": "yesterday"}, "chat.delete ts:"),
    ("conversations.kick", {"channel": "C77", "user": ["U03"]}, "conversations.kick user:"),
]


async def test_wrong_requests_at_the_double_are_caught(
    double: DoubleHandle, http: httpx.AsyncClient
):
    config = double.state.config
    for method, body, _ in WRONG_TELEGRAM:
        url = f"{double.base_url}/bot{config.telegram_token}/{method}"
        await http.post(url, json=body)
    for method, body, _ in WRONG_SLACK:
        headers = {"Authorization": f"Bearer {config.slack_bot_token}"}
        await http.post(f"{double.base_url}/api/{method}", json=body, headers=headers)
    for platform, cases in (("telegram", WRONG_TELEGRAM), ("slack", WRONG_SLACK)):
        calls = double.state.calls_of(platform)
        assert [c.method for c in calls] == [method for method, _, _ in cases]
        for call, (_, _, named) in zip(calls, cases, strict=True):
            found = violations(platform, call.method, call.body)
            assert found and any(named in problem for problem in found), (call.body, found)
