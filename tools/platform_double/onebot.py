"""The OneBot v11 HTTP API subset delivery calls: `POST /{action}` with a Bearer access token.

What the implementation refuses is answered as the configured one's HTTP server answers
it (`DoubleConfig.onebot_flavour`):

- `spec` (OneBot v11 communication/http.md): no token HTTP 401, a wrong one 403, an
  action it lacks (`onebot_missing`, or one the double does not know) HTTP 404.
- `go-cqhttp` (server/http.go): 401 / 403; a missing action HTTP 200 `failed`, retcode
  404, `API_NOT_FOUND` / `API不存在`.
- `lagrange` (Lagrange.OneBot HttpService): 401 / 403; a missing action HTTP 200
  `failed`, retcode 404, no message.
- `napcat` (src/onebot/network/http-server.ts): any token refusal HTTP 403
  `{"message": "token verify failed!"}`; a missing action HTTP 200 `failed`, retcode
  200, `不支持的Api <action>`; parameters it refuses retcode 400 (1400, its WebSocket
  API's code, for the other flavours).

A `forbidden` fault is the bot lacking the group's admin rights, answered as go-cqhttp
does (retcode 100, `机器人权限不足`), or with the fault's `retcode`: 1401/1403 are the
spec's WebSocket forms of 401/403 (communication/ws.md), which a gateway relaying an
implementation's WebSocket API answers over HTTP.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tools.platform_double.state import DoubleState, Fault, Message, OneBotFlavour

PLATFORM = "onebot"
CQ = re.compile(r"\[CQ:(\w+)((?:,[^\]]*)?)\]")
Handler = Callable[[DoubleState, dict[str, Any]], Response]


def ok(data: Any = None) -> JSONResponse:
    """A successful action answer."""
    return JSONResponse({"status": "ok", "retcode": 0, "data": data, "message": "", "wording": ""})


def failed(retcode: int, wording: str) -> JSONResponse:
    """A failed action answer (HTTP 200, as NapCat and go-cqhttp answer)."""
    body = {"status": "failed", "retcode": retcode, "data": None, "message": wording}
    return JSONResponse({**body, "wording": wording})


def fault_answer(fault: Fault) -> Response:
    """Each fault as a OneBot implementation shows it (429 is the double's own, not OneBot's)."""
    if fault.kind == "rate_limit":
        return Response(status_code=429, headers={"Retry-After": str(int(fault.retry_after))})
    if fault.kind == "forbidden" and fault.retcode is not None:
        body = {"status": "failed", "retcode": fault.retcode, "data": None, "echo": None}
        return JSONResponse(body)
    if fault.kind == "forbidden":
        return JSONResponse(
            {
                "data": None,
                "retcode": 100,
                "msg": "NOT_MANAGEABLE",
                "wording": "机器人权限不足",
                "message": "机器人权限不足",
                "status": "failed",
            }
        )
    return Response(status_code=fault.status)


def bad_params(state: DoubleState, words: str) -> JSONResponse:
    """Parameters the action refuses: NapCat's HTTP API answers retcode 400 (its WebSocket
    API, like the spec's, 1400); the other flavours answer 1400."""
    return failed(400 if state.config.onebot_flavour == "napcat" else 1400, words)


def refused_token(flavour: OneBotFlavour, token: str | None) -> Response:
    """A missing or wrong access token, as the implementation answers it."""
    if flavour == "napcat":
        return Response('{"message":"token verify failed!"}', status_code=403)
    return Response(status_code=401 if not token else 403)


def no_such_action(flavour: OneBotFlavour, action: str) -> Response:
    """An action the implementation lacks, as its HTTP server answers it."""
    if flavour == "go-cqhttp":
        return JSONResponse(
            {
                "data": None,
                "retcode": 404,
                "msg": "API_NOT_FOUND",
                "wording": "API不存在",
                "message": "API不存在",
                "status": "failed",
            }
        )
    if flavour == "lagrange":
        return JSONResponse({"status": "failed", "retcode": 404, "data": None, "echo": None})
    if flavour == "napcat":
        words = f"不支持的Api {action}"
        body = {"status": "failed", "retcode": 200, "data": None, "message": words}
        return JSONResponse({**body, "wording": words, "echo": None})
    return Response(status_code=404)


def parse_message(message: Any) -> tuple[str, str | None, list[str]]:
    """A CQ-coded string (or segment array) → plain text, reply id, mentioned QQ numbers."""
    if isinstance(message, list):
        parts = [s.get("data", {}).get("text", "") for s in message if s.get("type") == "text"]
        ats = [str(s["data"]["qq"]) for s in message if s.get("type") == "at"]
        replies = [str(s["data"]["id"]) for s in message if s.get("type") == "reply"]
        return "".join(parts), (replies[0] if replies else None), ats
    text, reply, ats = str(message), None, []
    for kind, params in CQ.findall(text):
        values = dict(p.split("=", 1) for p in params.strip(",").split(",") if "=" in p)
        if kind == "reply":
            reply = values.get("id")
        elif kind == "at":
            ats.append(values.get("qq", ""))
    plain = CQ.sub(lambda m: "@" + m.group(2).split("qq=")[-1] if m.group(1) == "at" else "", text)
    plain = plain.replace("&#91;", "[").replace("&#93;", "]").replace("&amp;", "&")
    return plain, reply, ats


def delete_msg(state: DoubleState, body: dict[str, Any]) -> Response:
    """delete_msg: recall a group message."""
    message_id = str(body["message_id"])
    found = state.find_message(PLATFORM, message_id)
    if found is None or found[1].deleted:
        if state.config.strict or found is not None:
            return failed(100, "消息不存在 (message not found)")
        group = state.group(PLATFORM, "?")
        group.messages[message_id] = Message(message_id, None, "", deleted=True)
        return ok()
    found[1].deleted = True
    return ok()


def set_group_ban(state: DoubleState, body: dict[str, Any]) -> Response:
    """set_group_ban: mute for `duration` seconds (default 30 min); 0 lifts it."""
    group = state.group(PLATFORM, str(body["group_id"]))
    user, duration = str(body["user_id"]), int(body.get("duration", 1800))
    if duration <= 0:
        group.muted_until.pop(user, None)
    else:
        group.muted_until[user] = time.time() + duration
    return ok()


def set_group_kick(state: DoubleState, body: dict[str, Any]) -> Response:
    """set_group_kick: out of the group; reject_add_request refuses their later requests."""
    group = state.group(PLATFORM, str(body["group_id"]))
    user = str(body["user_id"])
    group.members.discard(user)
    group.removed.append(user)
    if body.get("reject_add_request"):
        group.banned.add(user)
    return ok()


def send_group_msg(state: DoubleState, body: dict[str, Any]) -> Response:
    """send_group_msg: a post; CQ codes give the reply and the mentions."""
    text, reply, ats = parse_message(body["message"])
    if not text.strip() and not ats:
        return failed(100, "消息为空 (empty message)")
    group = state.group(PLATFORM, str(body["group_id"]))
    message = Message(str(state.next_id()), None, text, by_bot=True, reply_to=reply, mentions=ats)
    group.messages[message.id] = message
    return ok({"message_id": int(message.id)})


def set_group_add_request(state: DoubleState, body: dict[str, Any]) -> Response:
    """set_group_add_request: approve or decline the request behind a flag.

    As NapCat checks it: `flag` a string, `approve` a boolean or string (anything but
    false approves, absent too), `sub_type` (or go-cqhttp's `type`) `add` or `invite`.
    """
    flag, approve = body["flag"], body.get("approve", True)
    if not isinstance(flag, str) or not isinstance(approve, bool | str):
        return bad_params(state, "参数错误: flag must be a string, approve a boolean")
    sub_type = body.get("sub_type", body.get("type", "add"))
    if sub_type not in ("add", "invite"):
        return bad_params(state, f"参数错误: sub_type {sub_type!r} is neither add nor invite")
    target = state.flags.get(flag)
    if target is None:
        return failed(100, "flag 无效 (unknown request)")
    group = state.group(PLATFORM, target[0])
    if group.join_requests.get(target[1]) != "pending":
        return failed(100, "请求已处理 (request already handled)")
    approve = str(approve).lower() != "false"
    group.join_requests[target[1]] = "approved" if approve else "declined"
    if approve:
        group.members.add(target[1])
    return ok()


ACTIONS: dict[str, tuple[tuple[str, ...], Handler]] = {
    "delete_msg": (("message_id",), delete_msg),
    "set_group_ban": (("group_id", "user_id"), set_group_ban),
    "set_group_kick": (("group_id", "user_id"), set_group_kick),
    "send_group_msg": (("group_id", "message"), send_group_msg),
    "set_group_add_request": (("flag",), set_group_add_request),
}


def routes(state: DoubleState) -> list[Route]:
    """The OneBot action route of the double (mounted at `/onebot`)."""

    async def endpoint(request: Request) -> Response:
        action = request.path_params["action"]
        body = await request.json() if await request.body() else {}
        chat = str(body["group_id"]) if "group_id" in body else None
        auth = request.headers.get("authorization", "")
        token = auth.removeprefix("Bearer ") if auth else request.query_params.get("access_token")

        def effect() -> Response:
            config = state.config
            if token != config.onebot_token:
                return refused_token(config.onebot_flavour, token)
            if action not in ACTIONS or action in config.onebot_missing:
                return no_such_action(config.onebot_flavour, action)
            required, handler = ACTIONS[action]
            missing = [name for name in required if body.get(name) in (None, "")]
            if missing:
                return bad_params(state, f"missing parameter {missing[0]}")
            with state.lock:
                return handler(state, body)

        return await state.serve(PLATFORM, action, chat, body, effect, fault_answer)

    return [Route("/onebot/{action}", endpoint, methods=["POST"])]
