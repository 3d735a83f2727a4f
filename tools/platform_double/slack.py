"""The Slack Web API subset delivery calls: `POST /api/{method}` with a Bearer token."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tools.platform_double.state import DoubleState, Fault, Group, Message

PLATFORM = "slack"
MENTION = re.compile(r"<@([A-Z0-9]+)>")
Handler = Callable[[DoubleState, Group, dict[str, Any], str], Response]


def ok(**fields: Any) -> JSONResponse:
    """A successful Web API answer."""
    return JSONResponse({"ok": True, **fields})


def error(code: str, status: int = 200, **fields: Any) -> JSONResponse:
    """A Web API error: HTTP 200 with `ok: false` unless said otherwise."""
    return JSONResponse({"ok": False, "error": code, **fields}, status_code=status)


def fault_answer(fault: Fault) -> Response:
    """Slack's own way of saying each fault."""
    if fault.kind == "rate_limit":
        response = error("ratelimited", status=429)
        response.headers["Retry-After"] = str(int(fault.retry_after))
        return response
    if fault.kind == "forbidden":
        return error("missing_scope", needed="channels:manage", provided="chat:write")
    return error("internal_error", status=fault.status)


def new_ts(state: DoubleState) -> str:
    """A message timestamp, unique in the double."""
    return f"{int(time.time())}.{state.next_id():06d}"


def chat_delete(state: DoubleState, group: Group, body: dict[str, Any], token: str) -> Response:
    """chat.delete: a bot token deletes only the bot's own messages."""
    message = group.messages.get(body["ts"])
    if message is None or message.deleted:
        if state.config.strict or message is not None:
            return error("message_not_found")
        message = group.messages.setdefault(body["ts"], Message(body["ts"], None, ""))
    if token != state.config.slack_user_token and not message.by_bot:
        return error("cant_delete_message")
    message.deleted = True
    return ok(channel=group.chat, ts=body["ts"])


def kick(state: DoubleState, group: Group, body: dict[str, Any], token: str) -> Response:
    """conversations.kick: out of the channel."""
    user = body["user"]
    if user == state.config.slack_bot_user:
        return error("cant_kick_self")
    if user not in group.members and state.config.strict:
        return error("not_in_channel")
    group.members.discard(user)
    group.removed.append(user)
    return ok()


def post(state: DoubleState, group: Group, body: dict[str, Any], token: str) -> Response:
    """chat.postMessage: a post, threaded under thread_ts when given."""
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        return error("no_text")
    thread = body.get("thread_ts")
    if thread and state.config.strict and thread not in group.messages:
        return error("thread_not_found")
    message = Message(
        new_ts(state), None, text, by_bot=True, reply_to=thread, mentions=MENTION.findall(text)
    )
    group.messages[message.id] = message
    return ok(channel=group.chat, ts=message.id, message={"text": text, "ts": message.id})


METHODS: dict[str, tuple[tuple[str, ...], Handler]] = {
    "chat.delete": (("channel", "ts"), chat_delete),
    "conversations.kick": (("channel", "user"), kick),
    "chat.postMessage": (("channel",), post),
}


def routes(state: DoubleState) -> list[Route]:
    """The Web API route of the double."""

    async def endpoint(request: Request) -> Response:
        method = request.path_params["method"]
        json_body = request.headers.get("content-type", "").startswith("application/json")
        body = await request.json() if json_body else dict(await request.form())
        chat = body.get("channel") if isinstance(body, dict) else None
        auth = request.headers.get("authorization", "")
        token = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else ""
        token = token or (str(body.get("token", "")) if not json_body else "")

        def effect() -> Response:
            if method not in METHODS:
                return error("unknown_method", status=404)
            if not token:
                return error("not_authed")
            if token not in (state.config.slack_bot_token, state.config.slack_user_token):
                return error("invalid_auth")
            required, handler = METHODS[method]
            missing = [name for name in required if not body.get(name)]
            if missing:
                return error(
                    "channel_not_found" if missing[0] == "channel" else "invalid_arguments"
                )
            with state.lock:
                return handler(state, state.group(PLATFORM, str(body["channel"])), body, token)

        return await state.serve(PLATFORM, method, chat, body, effect, fault_answer)

    return [Route("/api/{method}", endpoint, methods=["POST"])]
