"""The WeCom (企业微信) API subset qunyun calls: gettoken, groupchat/get, add_msg_template.

Checked as WeCom checks them: the corp id and secret, a live `access_token` on every call
(41001 missing, 40014 unknown, 42001 expired), the body's required fields. Each fake
customer group has an owner and member entries (`join_scene`, `invitor`, `state`,
`join_time`) that tests seed with `seed_group` or `POST /_double/wecom/groups/{chat}`.
A group-send task shows as a bot post in the group (the owner's confirmation is implied).
A group owner (groupchat/get) or sender (add_msg_template) outside the app's visible range
(`DoubleConfig.wecom_visible`, 可见范围) gets errcode 60011, as WeCom answers it.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tools.platform_double.state import DoubleState, Fault, Message

PLATFORM = "wecom"


def answer(errcode: int = 0, errmsg: str = "ok", **fields: Any) -> JSONResponse:
    """A WeCom answer: HTTP 200 with `{"errcode", "errmsg", …}`."""
    return JSONResponse({"errcode": errcode, "errmsg": errmsg, **fields})


def no_privilege() -> JSONResponse:
    """60011: the staff member is outside the app's visible range (WeCom's own errmsg)."""
    return answer(
        60011,
        "no privilege to access/modify contact/party/agent , hint: [double], "
        "more info at https://open.work.weixin.qq.com/devtool/query?e=60011",
    )


def fault_answer(fault: Fault) -> Response:
    """WeCom's own way of saying each fault."""
    if fault.kind == "rate_limit":
        return answer(45009, "api freq out of limit")
    if fault.kind == "forbidden":
        return answer(48002, "api forbidden")
    if fault.kind == "error":
        return (
            answer(-1, "system busy") if fault.status == 200 else Response(status_code=fault.status)
        )
    return Response(status_code=fault.status)


def seed_group(
    state: DoubleState, chat: str, *, owner: str, members: list[dict[str, Any]] | None = None
) -> None:
    """A customer group with its owner and member entries (`userid` plus groupchat/get fields)."""
    with state.lock:
        group = state.group(PLATFORM, chat)
        group.owner = owner
        now = int(time.time())
        for entry in [{"userid": owner, "type": 1, "join_scene": 1}, *(members or [])]:
            userid = str(entry["userid"])
            kind = 1 if not userid.startswith(("wm", "wo")) else 2
            group.details[userid] = {"type": kind, "join_time": now, **entry}
            group.members.add(userid)


class Api:
    """The WeCom endpoints of the double."""

    def __init__(self, state: DoubleState) -> None:
        self.state = state

    def issue(self, corpid: str | None, secret: str | None) -> Response:
        """Like WeCom: the same token until it expires, then a new one."""
        config = self.state.config
        if corpid != config.wecom_corp_id:
            return answer(40013, "invalid corpid")
        if secret != config.wecom_secret:
            return answer(40001, "invalid credential")
        now = time.time()
        for token, until in self.state.wecom_tokens.items():
            if until > now:
                return answer(access_token=token, expires_in=int(until - now))
        token = secrets.token_urlsafe(32)
        self.state.wecom_tokens[token] = now + config.wecom_token_ttl
        return answer(access_token=token, expires_in=config.wecom_token_ttl)

    def visible(self, userid: str) -> bool:
        """Whether the app may act for this staff member (its visible range)."""
        allowed = self.state.config.wecom_visible
        return allowed is None or userid in allowed

    def token_error(self, request: Request) -> Response | None:
        """An error answer unless the query carries a live access_token."""
        token = request.query_params.get("access_token")
        if not token:
            return answer(41001, "access_token missing")
        until = self.state.wecom_tokens.get(token)
        if until is None:
            return answer(40014, "invalid access_token")
        if until <= time.time():
            return answer(42001, "access_token expired")
        return None

    async def serve(
        self, request: Request, method: str, chat: str | None, body: Any, effect: Callable
    ) -> Response:
        def guarded() -> Response:
            with self.state.lock:
                error: Response | None = self.token_error(request)
                return error or effect()

        return await self.state.serve(PLATFORM, method, chat, body, guarded, fault_answer)

    async def gettoken(self, request: Request) -> Response:
        q = request.query_params
        return await self.state.serve(
            PLATFORM,
            "gettoken",
            None,
            {"corpid": q.get("corpid")},
            lambda: self.issue(q.get("corpid"), q.get("corpsecret")),
            fault_answer,
        )

    async def group_chat(self, request: Request) -> Response:
        body = await json_object(request)
        chat = body.get("chat_id") if isinstance(body, dict) else None

        def effect() -> Response:
            if not isinstance(chat, str) or not chat:
                return answer(40058, "invalid parameter: chat_id")
            known = (PLATFORM, chat) in self.state.groups
            if not known and self.state.config.strict:
                return answer(40050, "chatid not found")
            group = self.state.group(PLATFORM, chat)
            if not self.visible(group.owner or "owner"):
                return no_privilege()
            need_name = body.get("need_name") == 1
            members = []
            for userid in sorted(group.members):
                entry = dict(group.details.get(userid) or {"userid": userid, "type": 2})
                if not need_name:
                    entry.pop("name", None)
                members.append(entry)
            info = {
                "chat_id": chat,
                "name": f"客户群 {chat}",
                "owner": group.owner or "owner",
                "create_time": int(time.time()) - 86400,
                "member_list": members,
                "admin_list": [],
                "member_version": f"v{len(group.members)}",
            }
            return answer(group_chat=info)

        return await self.serve(request, "groupchat/get", chat, body, effect)

    async def add_msg_template(self, request: Request) -> Response:
        body = await json_object(request)
        chats = body.get("chat_id_list") if isinstance(body, dict) else None
        chat = chats[0] if isinstance(chats, list) and len(chats) == 1 else None

        def effect() -> Response:
            if body.get("chat_type") != "group":
                return answer(40058, "invalid parameter: chat_type must be group for groups")
            sender = body.get("sender")
            if not isinstance(sender, str) or not sender:
                return answer(40003, "invalid userid: sender is required for chat_type group")
            if not self.visible(sender):
                return no_privilege()
            text = body.get("text") if isinstance(body.get("text"), dict) else {}
            content = text.get("content") if text else None
            if not content and not body.get("attachments"):
                return answer(41028, "text.content or attachments required")
            targets = chats if isinstance(chats, list) else []
            failing = []
            msgid = f"msg{secrets.token_hex(8)}"
            for target in targets:
                known = (PLATFORM, str(target)) in self.state.groups
                group = self.state.group(PLATFORM, str(target))
                owned = group.owner in (None, sender) and (known or not self.state.config.strict)
                if not owned:
                    failing.append(target)
                    continue
                group.messages[msgid] = Message(msgid, sender, str(content or ""), by_bot=True)
            return answer(fail_list=failing, msgid=msgid)

        return await self.serve(request, "add_msg_template", chat, body, effect)

    async def seed(self, request: Request) -> Response:
        body = await json_object(request)
        if not isinstance(body.get("owner"), str):
            return JSONResponse({"error": "owner (a staff userid) is required"}, status_code=422)
        members = body.get("members") if isinstance(body.get("members"), list) else []
        seed_group(self.state, request.path_params["chat"], owner=body["owner"], members=members)
        return Response(status_code=204)


async def json_object(request: Request) -> dict[str, Any]:
    """The request's JSON object (empty when the body is none)."""
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def routes(state: DoubleState) -> list[Route]:
    """The WeCom routes of the double, and its seeding route."""
    api = Api(state)
    base = "/cgi-bin"
    return [
        Route(base + "/gettoken", api.gettoken, methods=["GET"]),
        Route(base + "/externalcontact/groupchat/get", api.group_chat, methods=["POST"]),
        Route(base + "/externalcontact/add_msg_template", api.add_msg_template, methods=["POST"]),
        Route("/_double/wecom/groups/{chat}", api.seed, methods=["POST"]),
    ]
