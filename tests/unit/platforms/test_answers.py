"""Pure mapping: each platform's answers to delivery's outcomes, without a server."""

from __future__ import annotations

import httpx
import pytest

from services.platforms.feishu import outbound as fs
from services.platforms.onebot import outbound as ob
from services.platforms.slack import outbound as sl
from services.platforms.telegram import outbound as tg


def answer(status: int, body: object = None, **headers: str) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


def tg_error(status: int, description: str, **parameters: object) -> httpx.Response:
    body = {"ok": False, "error_code": status, "description": description}
    return answer(status, {**body, "parameters": parameters} if parameters else body)


@pytest.mark.parametrize(
    ("response", "outcome", "retryable"),
    [
        (answer(200, {"ok": True, "result": True}), "delivered", False),
        (tg_error(429, "Too Many Requests: retry after 5", retry_after=5), "failed", True),
        (
            tg_error(400, "Bad Request: not enough rights to restrict/unrestrict chat member"),
            "forbidden",
            False,
        ),
        (tg_error(400, "Bad Request: CHAT_ADMIN_REQUIRED"), "forbidden", False),
        (tg_error(403, "Forbidden: bot was kicked from the supergroup chat"), "forbidden", False),
        (tg_error(401, "Unauthorized"), "forbidden", False),
        (tg_error(400, "Bad Request: message to delete not found"), "delivered", False),
        (tg_error(400, "Bad Request: chat not found"), "failed", False),
        (answer(502, None), "failed", True),
    ],
)
def test_telegram(response, outcome, retryable):
    result = tg.classify(response)
    assert (result.outcome, result.retryable) == (outcome, retryable)


def test_telegram_rate_limit_hint_and_post_id():
    assert tg.classify(tg_error(429, "Too Many Requests", retry_after=12)).retry_after == 12
    posted = tg.classify(answer(200, {"ok": True, "result": {"message_id": 9}}))
    assert posted.platform_message_id == "9"


@pytest.mark.parametrize(
    ("method", "error", "outcome", "retryable"),
    [
        ("chat.postMessage", "not_in_channel", "forbidden", False),
        ("conversations.kick", "not_in_channel", "delivered", False),
        ("conversations.kick", "cant_kick_self", "forbidden", False),
        ("conversations.kick", "restricted_action", "forbidden", False),
        ("chat.delete", "cant_delete_message", "forbidden", False),
        ("chat.delete", "message_not_found", "delivered", False),
        ("chat.postMessage", "missing_scope", "forbidden", False),
        ("chat.postMessage", "invalid_auth", "forbidden", False),
        ("chat.postMessage", "not_authed", "forbidden", False),
        ("chat.postMessage", "channel_not_found", "failed", False),
        ("chat.postMessage", "internal_error", "failed", True),
    ],
)
def test_slack_errors(method, error, outcome, retryable):
    result = sl.classify(answer(200, {"ok": False, "error": error}), method)
    assert (result.outcome, result.retryable) == (outcome, retryable)


def test_slack_retry_after_and_ts():
    limited = sl.classify(
        answer(429, {"ok": False, "error": "ratelimited"}, **{"Retry-After": "30"}), "x"
    )
    assert limited.retry_after == 30 and limited.retryable
    assert sl.classify(answer(200, {"ok": True, "ts": "1.2"}), "x").platform_message_id == "1.2"


@pytest.mark.parametrize(
    ("response", "outcome", "retryable"),
    [
        (answer(200, {"code": 0, "msg": "success", "data": {}}), "delivered", False),
        (answer(400, {"code": 99991672, "msg": "Access denied"}), "forbidden", False),
        (answer(400, {"code": 230027, "msg": "Lack of necessary permissions"}), "forbidden", False),
        (answer(400, {"code": 230002, "msg": "Bot is not in the chat"}), "forbidden", False),
        (answer(400, {"code": 99992402, "msg": "field validation failed"}), "failed", False),
        (answer(500, {"code": 1500, "msg": "internal"}), "failed", True),
    ],
)
def test_feishu(response, outcome, retryable):
    result = fs.classify(response)
    assert (result.outcome, result.retryable) == (outcome, retryable)


def test_feishu_rate_limit_reads_the_reset_header():
    body = {"code": 99991400, "msg": "request trigger frequency limit"}
    for status in (200, 429):
        result = fs.classify(answer(status, body, **{"x-ogw-ratelimit-reset": "4"}))
        assert result.retry_after == 4 and result.retryable


@pytest.mark.parametrize(
    ("response", "outcome"),
    [
        (answer(200, {"status": "ok", "retcode": 0, "data": {"message_id": 5}}), "delivered"),
        (answer(200, {"status": "async", "retcode": 1, "data": None}), "delivered"),
        (answer(200, {"status": "failed", "retcode": 1403, "wording": ""}), "forbidden"),
        (answer(200, {"status": "failed", "retcode": 100, "wording": "权限不足"}), "forbidden"),
        (answer(200, {"status": "failed", "retcode": 100, "wording": "消息不存在"}), "failed"),
        (answer(401, None), "forbidden"),
        (answer(403, None), "forbidden"),
        (answer(404, None), "unsupported"),
        (answer(503, None), "failed"),
    ],
)
def test_onebot(response, outcome):
    assert ob.classify(response, "set_group_ban").outcome == outcome
