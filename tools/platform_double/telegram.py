"""The Telegram Bot API subset delivery calls: `POST /bot{token}/{method}`."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tools.platform_double.state import DoubleState, Fault, Group, Message

PLATFORM = "telegram"
Handler = Callable[[DoubleState, Group, dict[str, Any]], Response]


def ok(result: Any) -> JSONResponse:
    """A successful Bot API answer."""
    return JSONResponse({"ok": True, "result": result})


def error(status: int, description: str, **parameters: Any) -> JSONResponse:
    """A Bot API error answer."""
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return JSONResponse(body, status_code=status)


def fault_answer(fault: Fault) -> Response:
    """Telegram's own way of saying each fault."""
    if fault.kind == "rate_limit":
        seconds = int(fault.retry_after)
        return error(429, f"Too Many Requests: retry after {seconds}", retry_after=seconds)
    if fault.kind == "forbidden" and fault.status == 403:  # the bot is no longer in the group
        return error(403, "Forbidden: bot was kicked from the group chat")
    if fault.kind == "forbidden":
        return error(400, "Bad Request: not enough rights to restrict/unrestrict chat member")
    return error(fault.status, "Internal Server Error")


def delete_message(state: DoubleState, group: Group, body: dict[str, Any]) -> Response:
    """deleteMessage: gone for good; a second delete finds nothing."""
    message = group.messages.get(str(body["message_id"]))
    if message is None or message.deleted:
        if state.config.strict or message is not None:
            return error(400, "Bad Request: message to delete not found")
        message = group.messages.setdefault(
            str(body["message_id"]), Message(str(body["message_id"]), None, "")
        )
    message.deleted = True
    return ok(True)


def restrict(state: DoubleState, group: Group, body: dict[str, Any]) -> Response:
    """restrictChatMember: all permissions false mutes (until_date), all true lifts it."""
    permissions = body["permissions"]
    if not isinstance(permissions, dict):
        return error(400, "Bad Request: can't parse permissions JSON object")
    user = str(body["user_id"])
    if permissions.get("can_send_messages") is False:
        until = float(body.get("until_date") or 0)
        forever = not 30 <= until - time.time() <= 366 * 86400
        group.muted_until[user] = None if forever else until
    elif all(permissions.values()):
        group.muted_until.pop(user, None)
    return ok(True)


def ban(state: DoubleState, group: Group, body: dict[str, Any]) -> Response:
    """banChatMember: out of the group and unable to come back."""
    user = str(body["user_id"])
    group.members.discard(user)
    group.banned.add(user)
    group.removed.append(user)
    return ok(True)


def unban(state: DoubleState, group: Group, body: dict[str, Any]) -> Response:
    """unbanChatMember: lifts a ban; without only_if_banned it also removes a member."""
    user = str(body["user_id"])
    if user in group.banned:
        group.banned.discard(user)
    elif not body.get("only_if_banned") and user in group.members:
        group.members.discard(user)
        group.removed.append(user)
    return ok(True)


def send_message(state: DoubleState, group: Group, body: dict[str, Any]) -> Response:
    """sendMessage: a post, a reply via reply_parameters, mentions as text_mention entities."""
    text = body["text"]
    if not isinstance(text, str) or not text.strip():
        return error(400, "Bad Request: message text is empty")
    reply = body.get("reply_parameters") or {}
    reply_to = str(reply["message_id"]) if reply.get("message_id") is not None else None
    target = group.messages.get(reply_to or "")
    gone = target is None or target.deleted
    if reply_to and gone and state.config.strict and not reply.get("allow_sending_without_reply"):
        return error(400, "Bad Request: message to be replied not found")
    mentions: list[str] = []
    length = len(text.encode("utf-16-le")) // 2
    for entity in body.get("entities") or []:
        if entity.get("offset", -1) < 0 or entity["offset"] + entity.get("length", 0) > length:
            return error(400, "Bad Request: can't parse entities: entity beyond the text")
        if entity.get("type") == "text_mention":
            mentions.append(str(entity["user"]["id"]))
    message = Message(
        str(state.next_id()), None, text, by_bot=True, reply_to=reply_to, mentions=mentions
    )
    group.messages[message.id] = message
    return ok({"message_id": int(message.id), "chat": {"id": int(group.chat)}, "text": text})


def join_decision(approve: bool) -> Handler:
    """approveChatJoinRequest / declineChatJoinRequest on a pending request."""

    def decide(state: DoubleState, group: Group, body: dict[str, Any]) -> Response:
        if not str(body["user_id"]).lstrip("-").isdigit():
            return error(400, "Bad Request: invalid user_id specified")
        user = str(body["user_id"])
        if group.join_requests.get(user) != "pending":
            return error(400, "Bad Request: HIDE_REQUESTER_MISSING")
        group.join_requests[user] = "approved" if approve else "declined"
        if approve:
            group.members.add(user)
        return ok(True)

    return decide


METHODS: dict[str, tuple[tuple[str, ...], Handler]] = {
    "deleteMessage": (("chat_id", "message_id"), delete_message),
    "restrictChatMember": (("chat_id", "user_id", "permissions"), restrict),
    "banChatMember": (("chat_id", "user_id"), ban),
    "unbanChatMember": (("chat_id", "user_id"), unban),
    "sendMessage": (("chat_id", "text"), send_message),
    "approveChatJoinRequest": (("chat_id", "user_id"), join_decision(True)),
    "declineChatJoinRequest": (("chat_id", "user_id"), join_decision(False)),
}


def routes(state: DoubleState) -> list[Route]:
    """The Bot API route of the double."""

    async def endpoint(request: Request) -> Response:
        token, method = request.path_params["token"], request.path_params["method"]
        try:
            body = await request.json()
        except ValueError:
            body = dict(await request.form())
        chat = str(body.get("chat_id")) if isinstance(body, dict) and "chat_id" in body else None

        def effect() -> Response:
            if token != state.config.telegram_token:
                return error(401, "Unauthorized")
            if method not in METHODS:
                return error(404, "Not Found")
            required, handler = METHODS[method]
            missing = [name for name in required if body.get(name) in (None, "")]
            if missing:
                return error(400, f"Bad Request: {missing[0]} is empty")
            with state.lock:
                return handler(state, state.group(PLATFORM, str(body["chat_id"])), body)

        return await state.serve(PLATFORM, method, chat, body, effect, fault_answer)

    return [Route("/bot{token}/{method}", endpoint, methods=["POST"])]
