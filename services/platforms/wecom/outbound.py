"""WeCom customer groups: the one call delivery can make (a group-send task), and the rest.

https://developer.work.weixin.qq.com/document/path/92135 (创建企业群发) — `POST
/cgi-bin/externalcontact/add_msg_template` with `chat_type: "group"`, `chat_id_list` (the
group) and `sender` (the staff member who sends; the source's `sender`, else the group's
owner from `groupchat/get`, https://developer.work.weixin.qq.com/document/path/92122). It
creates a task: the sender confirms it in WeCom before the text reaches the group, and
WeCom lets each group receive a limited number of these (by default one a day). WeCom's
API has no call to delete a member's message, mute, remove or ban anyone in a customer
group: that is done by the owner's own 客户群防骚扰 rules, so those operations are
`unsupported`.
"""

from __future__ import annotations

from typing import Any

import httpx

from services.platforms.base import (
    DEFAULT_TIMEOUT,
    CallResult,
    HttpClient,
    OperationRequest,
    OutboundCredentials,
    delivered,
    failed,
    unsupported,
)
from services.platforms.wecom.api import WeComApi
from services.platforms.wecom.ids import chat_of

PLATFORM = "wecom"
SEND_PATH = "/cgi-bin/externalcontact/add_msg_template"
GROUP_PATH = "/cgi-bin/externalcontact/groupchat/get"
NO_ENFORCEMENT = (
    "WeCom has no API to {what} in a customer group: use the group's own anti-harassment "
    "rules (客户群防骚扰: 管理后台 → 客户联系 → 客户群 → 防骚扰, or the owner's 群管理)"
)
ENFORCEMENT = {
    "delete": "delete a member's message",
    "mute": "mute a member",
    "unmute": "unmute a member",
    "kick": "remove a member",
    "ban": "ban a member",
    "unban": "lift a ban",
}


def send_body(chat: str, sender: str, text: str) -> dict[str, Any]:
    """The add_msg_template body of a text post to one customer group."""
    return {
        "chat_type": "group",
        "chat_id_list": [chat],
        "sender": sender,
        "allow_select": False,
        "text": {"content": text},
    }


class WeComClient(HttpClient):
    """Carries out operations as one self-built app with 客户联系 permission."""

    platform = PLATFORM
    needs = ("app_id", "app_secret")

    def __init__(
        self,
        credentials: OutboundCredentials,
        http: httpx.AsyncClient,
        *,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    ) -> None:
        super().__init__(credentials, http, timeout=timeout)
        assert credentials.app_id and credentials.app_secret  # checked by `needs`
        self.api = WeComApi(
            corp_id=credentials.app_id,
            secret=credentials.app_secret,
            http=http,
            api_base=credentials.api_base,
            timeout=timeout,
        )

    async def carry_out(self, op: OperationRequest) -> CallResult:
        """Queue a post as a group-send task; say why anything else cannot be done."""
        if op.operation in ENFORCEMENT:
            return unsupported(NO_ENFORCEMENT.format(what=ENFORCEMENT[op.operation]))
        if op.operation != "post":
            return unsupported("WeCom customer groups have no join requests to approve or decline")
        chat = chat_of(op.group_id)
        sender = self.credentials.sender or await self.owner(chat)
        if isinstance(sender, CallResult):
            return sender
        answer = await self.api.call(SEND_PATH, send_body(chat, sender, op.text or ""))
        if isinstance(answer, CallResult):
            return answer
        if chat in (answer.get("fail_list") or []):
            return failed(f"WeCom cannot send to {chat} (fail_list): is {sender} its owner?")
        msgid = answer.get("msgid")
        return delivered(
            f"queued as group-send task {msgid}: {sender} confirms it in WeCom "
            "(客户联系 → 群发助手) before it reaches the group",
            message_id=str(msgid) if msgid else None,
        )

    async def owner(self, chat: str) -> str | CallResult:
        """The group owner's userid, from groupchat/get."""
        answer = await self.api.call(GROUP_PATH, {"chat_id": chat, "need_name": 0})
        if isinstance(answer, CallResult):
            return answer
        group = answer.get("group_chat")
        owner = group.get("owner") if isinstance(group, dict) else None
        if not isinstance(owner, str) or not owner:
            return failed(f"groupchat/get named no owner for {chat}: set the source's sender")
        return owner
