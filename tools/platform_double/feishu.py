"""The Feishu/Lark Open Platform subset delivery calls, with the tenant_access_token flow."""

from __future__ import annotations

import json
import re
import secrets
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tools.platform_double.state import DoubleState, Fault, Message

PLATFORM = "feishu"
AT = re.compile(r'<at user_id="([^"]+)">')
ID_TYPES = ("open_id", "user_id", "union_id", "app_id")


def answer(code: int = 0, msg: str = "success", status: int = 200, **data: Any) -> JSONResponse:
    """An Open Platform answer: `{"code", "msg", "data"}`."""
    return JSONResponse({"code": code, "msg": msg, "data": data}, status_code=status)


def fault_answer(fault: Fault) -> Response:
    """Feishu's own way of saying each fault."""
    if fault.kind == "rate_limit":
        response = answer(99991400, "request trigger frequency limit", status=429)
        response.headers["x-ogw-ratelimit-limit"] = "50"
        response.headers["x-ogw-ratelimit-reset"] = str(int(fault.retry_after))
        return response
    if fault.kind == "forbidden":
        return answer(
            99991672, "Access denied. One of the following scopes is required: [im:message]", 400
        )
    return answer(1500, "internal error", status=fault.status)


def token_answer(token: str, expire: float) -> JSONResponse:
    """The token endpoint's answer (flat, no `data`)."""
    body = {"code": 0, "msg": "ok", "tenant_access_token": token, "expire": expire}
    return JSONResponse(body)


class Tokens:
    """Issued tenant_access_tokens and when each expires."""

    def __init__(self, state: DoubleState) -> None:
        self.state = state

    def issue(self, body: dict[str, Any]) -> Response:
        """Like Feishu: the same token while it has long to live, a new one near its end."""
        config = self.state.config
        if not body.get("app_id") or not body.get("app_secret"):
            return answer(10003, "invalid param", 400)
        if (body["app_id"], body["app_secret"]) != (config.feishu_app_id, config.feishu_app_secret):
            return answer(10014, "app secret invalid", 400)
        now = time.time()
        keep = min(1800.0, config.feishu_token_ttl / 2)
        for token, until in self.state.tokens.items():
            if until - now >= keep:
                return token_answer(token, int(until - now))
        token = "t-" + secrets.token_hex(16)
        self.state.tokens[token] = now + config.feishu_token_ttl
        return token_answer(token, config.feishu_token_ttl)

    def check(self, request: Request) -> Response | None:
        """An error answer unless the request carries a live tenant token."""
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer "):
            return answer(99991661, "Missing access token for authorization", 400)
        until = self.state.tokens.get(auth.removeprefix("Bearer "))
        if until is None or until <= time.time():
            return answer(99991663, "Invalid access token for authorization", 400)
        return None


def post_message(
    state: DoubleState, chat: str, body: dict[str, Any], reply_to: str | None
) -> Response:
    """Create (or, for a known `uuid`, return again) a text message."""
    for name in ("msg_type", "content"):
        if not body.get(name):
            return answer(99992402, f"field validation failed: {name} is required", 400)
    try:
        content = json.loads(body["content"])
    except (TypeError, ValueError):
        return answer(230001, "invalid content: not a JSON string", 400)
    group = state.group(PLATFORM, chat)
    uuid = body.get("uuid")
    if uuid and len(uuid) > 50:
        return answer(99992402, "field validation failed: uuid longer than 50", 400)
    for message in group.messages.values():
        if uuid and message.uuid == uuid:
            return answer(message_id=message.id, chat_id=chat)
    text = content.get("text", "") if isinstance(content, dict) else ""
    message = Message(
        f"om_{state.next_id()}",
        None,
        text,
        by_bot=True,
        reply_to=reply_to,
        mentions=AT.findall(text),
        uuid=uuid,
    )
    group.messages[message.id] = message
    return answer(message_id=message.id, chat_id=chat, msg_type=body["msg_type"])


class OpenApi:
    """The Open Platform endpoints of the double."""

    def __init__(self, state: DoubleState) -> None:
        self.state = state
        self.tokens = Tokens(state)

    async def serve(
        self, request: Request, method: str, chat: str | None, body: Any, effect: Any
    ) -> Response:
        def guarded() -> Response:
            with self.state.lock:
                return self.tokens.check(request) or effect()

        return await self.state.serve(PLATFORM, method, chat, body, guarded, fault_answer)

    async def token(self, request: Request) -> Response:
        body = await request.json()
        return await self.state.serve(
            PLATFORM,
            "tenant_access_token",
            None,
            {"app_id": body.get("app_id")},
            lambda: self.tokens.issue(body),
            fault_answer,
        )

    async def delete_message(self, request: Request) -> Response:
        message_id = request.path_params["message_id"]
        found = self.state.find_message(PLATFORM, message_id)

        def effect() -> Response:
            if found is None or found[1].deleted:
                if self.state.config.strict or found is not None:
                    return answer(230011, "The message was withdrawn or does not exist.", 400)
                self.state.group(PLATFORM, "?").messages[message_id] = Message(
                    message_id, None, "", deleted=True
                )
                return answer()
            found[1].deleted = True
            return answer()

        chat = found[0].chat if found else None
        body = {"message_id": message_id}
        return await self.serve(request, "im.message.delete", chat, body, effect)

    async def remove_members(self, request: Request) -> Response:
        chat = request.path_params["chat_id"]
        body = await request.json()
        id_type = request.query_params.get("member_id_type")

        def effect() -> Response:
            ids = body.get("id_list")
            if id_type not in ID_TYPES or not isinstance(ids, list) or not ids:
                return answer(99992402, "field validation failed", 400)
            group = self.state.group(PLATFORM, chat)
            invalid = [i for i in ids if self.state.config.strict and i not in group.members]
            for member in ids:
                if member not in invalid:
                    group.members.discard(member)
                    group.removed.append(member)
            return answer(invalid_id_list=invalid)

        return await self.serve(request, "im.chat.members.delete", chat, body, effect)

    async def create_message(self, request: Request) -> Response:
        body = await request.json()
        id_type = request.query_params.get("receive_id_type")
        chat = body.get("receive_id")

        def effect() -> Response:
            if id_type != "chat_id" or not chat:
                return answer(99992402, "field validation failed: receive_id", 400)
            return post_message(self.state, chat, body, None)

        return await self.serve(request, "im.message.create", chat, body, effect)

    async def reply(self, request: Request) -> Response:
        message_id = request.path_params["message_id"]
        body = await request.json()
        found = self.state.find_message(PLATFORM, message_id)

        def effect() -> Response:
            if found is None and not self.state.config.strict:
                return post_message(self.state, "?", body, message_id)
            if found is None or found[1].deleted:
                return answer(230011, "The message was withdrawn or does not exist.", 400)
            return post_message(self.state, found[0].chat, body, message_id)

        chat = found[0].chat if found else None
        return await self.serve(request, "im.message.reply", chat, body, effect)


def routes(state: DoubleState) -> list[Route]:
    """The Open Platform routes of the double."""
    api = OpenApi(state)
    messages = "/open-apis/im/v1/messages"
    return [
        Route("/open-apis/auth/v3/tenant_access_token/internal", api.token, methods=["POST"]),
        Route(messages + "/{message_id}", api.delete_message, methods=["DELETE"]),
        Route("/open-apis/im/v1/chats/{chat_id}/members", api.remove_members, methods=["DELETE"]),
        Route(messages, api.create_message, methods=["POST"]),
        Route(messages + "/{message_id}/reply", api.reply, methods=["POST"]),
    ]
