"""WeCom joins enriched from `groupchat/get`: who invited the member, how, through which way.

The callback says only who joined and roughly how (JoinScene 0 or 3). `groupchat/get`
(https://developer.work.weixin.qq.com/document/path/92122) lists each member with
`join_scene` (1 direct invite, 2 invite link, 3 QR code), `invitor.userid` (staff who
invited), `state` (the join way's 渠道 parameter, configured on 加入群聊 join ways) and
`join_time`. Ingest awaits this between mapping and producing, bounded as a whole (the
token, then one call per group): when WeCom is slow or refuses, the joins land as the
callback told them.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import certifi
import httpx
from pydantic import ValidationError

from services.common.contracts.events import Event, MemberJoined, MemberJoinedData
from services.common.settings import Source
from services.platforms.base import CallResult
from services.platforms.wecom import ids
from services.platforms.wecom.api import WeComApi
from services.platforms.wecom.outbound import GROUP_PATH

log = logging.getLogger(__name__)

ENRICH_WITHIN = 2.0
JOIN_SCENES = {1: "invite", 2: "link", 3: "qrcode"}
# A member whose current membership began this long after the callback re-joined since:
# `groupchat/get` describes that later join, not this one.
REJOIN_SLACK_SECONDS = 60


@lru_cache(maxsize=1)
def _tls() -> ssl.SSLContext:
    """One TLS context for every enrichment (loading the CA bundle costs milliseconds)."""
    return ssl.create_default_context(cafile=certifi.where())


def enriched(event: MemberJoined, member: dict[str, Any]) -> MemberJoined:
    """The join with the inviter, method, channel and name `groupchat/get` gives."""
    joined_at = member.get("join_time")
    if isinstance(joined_at, int) and joined_at > event.occurred_at.timestamp() + (
        REJOIN_SLACK_SECONDS
    ):
        return event
    data = event.data.model_dump()
    userid = ids.user_of(event.member_id)
    invitor = member.get("invitor")
    inviter = invitor.get("userid") if isinstance(invitor, dict) else None
    if isinstance(inviter, str) and inviter and inviter != userid:
        data["invited_by"] = ids.member_id(inviter)
    data["method"] = JOIN_SCENES.get(member.get("join_scene"), data["method"])  # type: ignore[arg-type]
    state = member.get("state")
    if isinstance(state, str) and state:
        data["channel"] = state
    name = member.get("group_nickname") or member.get("name")
    if isinstance(name, str) and name:
        data["display_name"] = name[:256]
    try:
        return event.model_copy(update={"data": MemberJoinedData.model_validate(data)})
    except ValidationError:
        log.info("wecom: groupchat/get gave an unusable member entry; join kept as sent")
        return event


async def _members(api: WeComApi, chat: str) -> dict[str, dict[str, Any]]:
    """The group's members by userid (empty when WeCom refuses)."""
    answer = await api.call(GROUP_PATH, {"chat_id": chat, "need_name": 1})
    if isinstance(answer, CallResult):
        log.warning("wecom: groupchat/get for a join failed: %s", answer.detail)
        return {}
    group = answer.get("group_chat")
    listed = group.get("member_list") if isinstance(group, dict) else None
    members = listed if isinstance(listed, list) else []
    return {
        m["userid"]: m for m in members if isinstance(m, dict) and isinstance(m.get("userid"), str)
    }


async def enrich_joins(
    events: Sequence[Event], *, source: Source, within: float = ENRICH_WITHIN
) -> list[Event]:
    """The events, each join enriched from `groupchat/get` when that answers within `within` s."""
    joins = [e for e in events if isinstance(e, MemberJoined)]
    if not joins or not source.app_secret or not source.app_id:
        return list(events)
    chats = sorted({ids.chat_of(e.group_id) for e in joins})
    limits = httpx.Timeout(within, connect=min(within, 1.0))
    try:
        async with asyncio.timeout(within), httpx.AsyncClient(verify=_tls()) as http:
            api = WeComApi(
                corp_id=source.app_id,
                secret=source.app_secret,
                http=http,
                api_base=source.api_base,
                timeout=limits,
            )
            found = await asyncio.gather(*(_members(api, chat) for chat in chats))
    except TimeoutError:
        log.warning("wecom: groupchat/get took over %.1f s; joins land without it", within)
        return list(events)
    by_chat = dict(zip(chats, found, strict=True))
    out: list[Event] = []
    for event in events:
        if isinstance(event, MemberJoined):
            member = by_chat[ids.chat_of(event.group_id)].get(ids.user_of(event.member_id))
            out.append(enriched(event, member) if member else event)
        else:
            out.append(event)
    return out
