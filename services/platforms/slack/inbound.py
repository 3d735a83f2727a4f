"""Slack Events API: url_verification and event_callback (messages, channel joins and leaves).

Formats: https://api.slack.com/apis/events-api, https://api.slack.com/events/message,
https://api.slack.com/events/member_joined_channel, https://api.slack.com/events/member_left_channel,
signing: https://api.slack.com/authentication/verifying-requests-from-slack
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from services.common.settings import Source
from services.platforms.inbound import (
    Adapted,
    Unauthenticated,
    from_unix,
    invalid,
    optional,
    parse_object,
    require,
)
from services.platforms.signing import check_fresh, header, hmac_hex, same
from services.platforms.slack import ids

# Subtypes that are a member posting something; edits, deletions, joins (covered by
# member_joined_channel) and bot posts are not member activity.
_POSTING_SUBTYPES = {None, "file_share", "thread_broadcast", "me_message"}
_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
_LINK = re.compile(r"<(https?://[^>|]+)(?:\|[^>]*)?>")


def slack_signature(secret: str, timestamp: str, body: bytes) -> str:
    """Return the X-Slack-Signature value Slack sends for a body."""
    return "v0=" + hmac_hex(secret, b"v0:" + timestamp.encode() + b":" + body)


def verify_slack(*, secret: str, headers: Mapping[str, str], body: bytes, now: float) -> None:
    """Check X-Slack-Signature (v0) over X-Slack-Request-Timestamp and the raw body."""
    timestamp = header(headers, "x-slack-request-timestamp")
    given = header(headers, "x-slack-signature")
    check_fresh(timestamp, now=now)
    if not same(slack_signature(secret, timestamp, body), given):
        raise Unauthenticated("signature does not match")


def _file_kind(mimetype: object) -> str:
    major = mimetype.split("/", 1)[0] if isinstance(mimetype, str) else ""
    return {"image": "image", "video": "video", "audio": "voice"}.get(major, "file")


def _seconds(payload: dict[str, Any], *path: str) -> float:
    value = require(payload, *path)
    try:
        return float(value)
    except ValueError:
        raise invalid(path, "must be a Slack timestamp like 1355517523.000005") from None


def _message(team: str, payload: dict[str, Any], event_id: str) -> dict[str, Any]:
    event = payload["event"]
    channel = require(payload, "event", "channel")
    user = require(payload, "event", "user")
    ts = require(payload, "event", "ts")
    sent = _seconds(payload, "event", "ts")
    text = event.get("text") if isinstance(event.get("text"), str) else ""
    files = event.get("files") if isinstance(event.get("files"), list) else []
    files = [f for f in files if isinstance(f, dict)]
    attachments = [
        {
            "kind": _file_kind(f.get("mimetype")),
            "url": f.get("url_private") or f.get("permalink"),
            "name": f.get("name") or f.get("title"),
        }
        for f in files
    ]
    kind = "link" if _LINK.search(text) else "text"
    if attachments:
        kind = attachments[0]["kind"]
    thread_ts = event.get("thread_ts") if isinstance(event.get("thread_ts"), str) else None
    return {
        "id": event_id,
        "type": "message.created",
        "group_id": ids.group_id(team, channel),
        "member_id": ids.member_id(team, user),
        "occurred_at": from_unix(sent, ("event", "ts")),
        "data": {
            "message_id": ts,
            "text": text,
            "kind": kind,
            "mentions": [ids.member_id(team, u) for u in dict.fromkeys(_MENTION.findall(text))],
            "reply_to": thread_ts if thread_ts and thread_ts != ts else None,
            "attachments": attachments,
        },
    }


def adapt(*, source: Source, headers: Mapping[str, str], body: bytes, now: float) -> Adapted:
    """Verify the v0 signature, answer the challenge, map the callback's inner event."""
    verify_slack(secret=source.secret, headers=headers, body=body, now=now)
    payload = parse_object(body)
    kind = require(payload, "type")
    if kind == "url_verification":
        return Adapted(challenge={"challenge": require(payload, "challenge")})
    adapted = Adapted()
    if kind != "event_callback":
        adapted.ignored = 1
        return adapted
    team = require(payload, "team_id")
    event_id = require(payload, "event_id")
    event = require(payload, "event", kind=dict)
    event_type = require(payload, "event", "type")
    if event_type == "message":
        posting = (
            event.get("subtype") in _POSTING_SUBTYPES
            and not event.get("bot_id")
            and event.get("channel_type") != "im"
        )
        if not posting:
            adapted.ignored = 1
            return adapted
        adapted.add(_message(team, payload, event_id))
    elif event_type in ("member_joined_channel", "member_left_channel"):
        channel = require(payload, "event", "channel")
        user = require(payload, "event", "user")
        event_time = optional(payload, "event_time")
        occurred = from_unix(
            event_time if isinstance(event_time, int | float) else now, ("event_time",)
        )
        base = {
            "id": event_id,
            "group_id": ids.group_id(team, channel),
            "member_id": ids.member_id(team, user),
            "occurred_at": occurred,
        }
        if event_type == "member_joined_channel":
            inviter = event.get("inviter")
            data = {
                "invited_by": ids.member_id(team, inviter) if inviter else None,
                "method": "invite" if inviter else "other",
            }
            adapted.add({**base, "type": "member.joined", "data": data})
        else:
            adapted.add({**base, "type": "member.left", "data": {"reason": "left"}})
    else:
        adapted.ignored = 1
    return adapted
