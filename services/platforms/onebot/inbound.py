"""OneBot v11 HTTP POST events (NapCat, Lagrange.OneBot, go-cqhttp): QQ group messages,
joins, leaves, card changes and join requests.

Formats: https://github.com/botuniverse/onebot-11 — communication/http-post.md (the POST,
`X-Signature`, `X-Self-ID`), event/message.md, event/notice.md, event/request.md,
event/meta.md, message/string.md (CQ codes and their escaping), message/array.md and
message/segment.md; `group_card` is go-cqhttp's extension, kept by NapCat and Lagrange.

There is no timestamp to bound a replay, so an event's id is stable per platform event:
a group message by its group and `message_id`, a notice or request by a digest of its body.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from services.common.settings import Source
from services.platforms.inbound import (
    Adapted,
    Loc,
    Unauthenticated,
    from_unix,
    invalid,
    optional,
    parse_object,
    require,
)
from services.platforms.onebot import ids
from services.platforms.signing import header, hmac_hex, same

# Text between CQ codes is escaped; `,` is escaped too inside a code's parameter values.
_CQ = re.compile(r"\[CQ:([^,\]]+)((?:,[^\]]*)?)\]")
_UNESCAPES = (("&#44;", ","), ("&#91;", "["), ("&#93;", "]"), ("&amp;", "&"))
_URL = re.compile(r"https?://\S+")
_FILE_KINDS = {"image": "image", "record": "voice", "video": "video", "file": "file"}
# When a message holds several kinds of content, the first of these present names it.
_KIND_ORDER = ("miniprogram", "card", "image", "video", "voice", "file", "sticker", "link", "other")
_MEMBER_NOTICES = {"group_increase", "group_decrease", "group_card"}
MAX_ANSWER = 1024  # the contract's bound on a join request's answer: a longer one is cut
Segment = tuple[str, dict[str, Any]]


def onebot_signature(secret: str, body: bytes) -> str:
    """Return the X-Signature value OneBot sends: `sha1=` hex HMAC-SHA1 of the raw body."""
    return "sha1=" + hmac_hex(secret, body, "sha1")


def verify_onebot(*, secret: str, headers: Mapping[str, str], body: bytes) -> None:
    """Check X-Signature (hex compared case-insensitively: Lagrange writes upper case)."""
    given = header(headers, "x-signature")
    scheme, sep, digest = given.partition("=")
    if not sep or scheme.strip().lower() != "sha1":
        raise Unauthenticated("X-Signature is not sha1=<hex>")
    if not same(hmac_hex(secret, body, "sha1"), digest.strip().lower()):
        raise Unauthenticated("signature does not match")


def _unescape(text: str) -> str:
    for escaped, plain in _UNESCAPES:
        text = text.replace(escaped, plain)
    return text


def cq_segments(message: str) -> list[Segment]:
    """A CQ-coded string → its segments, as the array format carries them."""
    segments: list[Segment] = []
    position = 0
    for match in _CQ.finditer(message):
        if match.start() > position:
            segments.append(("text", {"text": _unescape(message[position : match.start()])}))
        data: dict[str, Any] = {}
        for part in match.group(2).split(",")[1:]:
            name, sep, value = part.partition("=")
            if sep:
                data[name] = _unescape(value)
        segments.append((match.group(1), data))
        position = match.end()
    if position < len(message):
        segments.append(("text", {"text": _unescape(message[position:])}))
    return segments


def _array_segments(message: list[Any], loc: Loc) -> list[Segment]:
    segments: list[Segment] = []
    for index, segment in enumerate(message):
        if not isinstance(segment, dict) or not isinstance(segment.get("type"), str):
            raise invalid((*loc, index), "each segment must be an object with a type", "dict_type")
        data = segment.get("data")
        segments.append((segment["type"], data if isinstance(data, dict) else {}))
    return segments


def _card_kind(data: dict[str, Any]) -> tuple[str, str]:
    """A `json` segment → (`miniprogram` or `card`, the text QQ shows for it)."""
    content = data.get("data")
    if isinstance(content, str):
        try:
            content = orjson.loads(content)
        except orjson.JSONDecodeError:
            content = None
    content = content if isinstance(content, dict) else {}
    app = str(content.get("app") or "")
    meta = content.get("meta")
    detail = meta.get("detail_1") if isinstance(meta, dict) else None
    mini = "miniapp" in app or (isinstance(detail, dict) and "appid" in detail)
    prompt = content.get("prompt")
    return ("miniprogram" if mini else "card"), (prompt if isinstance(prompt, str) else "")


def _text(value: Any) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


@dataclass
class _Content:
    """What a message's segments carry, read in order."""

    texts: list[str] = field(default_factory=list)
    mentions: list[str] = field(default_factory=list)
    reply_to: str | None = None
    attachments: list[dict[str, Any]] = field(default_factory=list)
    kinds: set[str] = field(default_factory=set)

    def read(self, kind: str, data: dict[str, Any]) -> None:
        if kind == "text":
            self.texts.append(_text(data.get("text")))
        elif kind == "at":
            self._at(data)
        elif kind == "reply":
            if data.get("id") not in (None, ""):
                self.reply_to = _text(data["id"])
        elif kind in _FILE_KINDS:
            self._file(_FILE_KINDS[kind], data)
        elif kind == "json":
            card, prompt = _card_kind(data)
            self.kinds.add(card)
            self.texts.append(prompt)
        elif kind in ("xml", "contact"):
            self.kinds.add("card")
        elif kind == "share":
            self.kinds.add("link")
            self.texts.append(" ".join(_text(data.get(k)) for k in ("title", "url")).strip())
        elif kind == "mface":
            self.kinds.add("sticker")
        elif kind == "markdown":
            self.texts.append(_text(data.get("content")))
        elif kind != "face":  # a QQ emoji inline in the text; location, poke, forward…
            self.kinds.add("other")

    def _at(self, data: dict[str, Any]) -> None:
        qq, name = _text(data.get("qq")), _text(data.get("name"))
        if qq == "all":
            self.texts.append("@全体成员")
        elif _is_number(qq):
            self.mentions.append(ids.member_id(int(qq)))
            self.texts.append("@" + (name or qq))

    def _file(self, kind: str, data: dict[str, Any]) -> None:
        self.kinds.add(kind)
        file, url = _text(data.get("file")), _text(data.get("url"))
        attachment: dict[str, Any] = {"kind": kind, "url": None, "name": file or None}
        if file.startswith("base64://"):
            attachment |= {"data": file.removeprefix("base64://"), "name": None}
        elif file.startswith(("http://", "https://")) and not url:
            url = file
        if url.startswith(("http://", "https://")):
            attachment["url"] = url
        self.attachments.append(attachment)

    def kind(self, text: str) -> str:
        for kind in _KIND_ORDER:
            if kind in self.kinds:
                return kind
        return "link" if _URL.search(text) else "text"


def _is_number(text: str) -> bool:
    """ASCII digits only (`str.isdigit` also takes `²`, which `int` refuses)."""
    return text.isascii() and text.isdigit()


def _qq(obj: dict[str, Any], *path: str) -> int:
    """A QQ or group number (NapCat may send it as a digit string)."""
    value = require(obj, *path, kind=(int, str))
    if isinstance(value, str):
        if not _is_number(value):
            raise invalid(path, "must be a QQ number", "int_parsing")
        return int(value)
    return value


def _occurred(event: dict[str, Any]) -> str:
    return from_unix(require(event, "time", kind=(int, float)), ("time",))


def _digest(event: dict[str, Any]) -> str:
    """A stable id for a notice or request: the same body always gives the same id."""
    canonical = orjson.dumps(event, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()[:32]


def _message(event: dict[str, Any], self_id: int | None, adapted: Adapted) -> None:
    if event.get("message_type") != "group" or event.get("sub_type") == "notice":
        adapted.ignored += 1  # private chats, and QQ's own notices in a group
        return
    group, user = _qq(event, "group_id"), _qq(event, "user_id")
    if user == self_id:
        adapted.ignored += 1  # what the bot itself said
        return
    message_id = require(event, "message_id", kind=(int, str))
    message = event.get("message")
    if isinstance(message, list):
        segments = _array_segments(message, ("message",))
    elif isinstance(message, str):
        segments = cq_segments(message)
    else:
        segments = cq_segments(require(event, "raw_message"))
    content = _Content()
    for kind, data in segments:
        content.read(kind, data)
    text = "".join(content.texts)
    name = optional(event, "sender", "card") or optional(event, "sender", "nickname")
    adapted.add(
        {
            "id": f"message:{group}:{message_id}",
            "type": "message.created",
            "group_id": ids.group_id(group),
            "member_id": ids.member_id(user),
            "occurred_at": _occurred(event),
            "data": {
                "message_id": str(message_id),
                "text": text,
                "kind": content.kind(text),
                "mentions": list(dict.fromkeys(content.mentions)),
                "reply_to": content.reply_to,
                "display_name": name if isinstance(name, str) and name else None,
                "attachments": content.attachments,
            },
        }
    )


def _notice(event: dict[str, Any], adapted: Adapted) -> None:
    notice = event.get("notice_type")
    if not isinstance(notice, str) or notice not in _MEMBER_NOTICES:
        adapted.ignored += 1  # recalls, uploads, pokes, admin changes…: no member activity
        return
    group, user = _qq(event, "group_id"), _qq(event, "user_id")
    base = {
        "id": f"notice:{_digest(event)}",
        "group_id": ids.group_id(group),
        "member_id": ids.member_id(user),
        "occurred_at": _occurred(event),
    }
    sub_type = event.get("sub_type")
    if notice == "group_card":
        card = optional(event, "card_new")
        data = {"display_name": card if isinstance(card, str) and card else None}
        adapted.add({**base, "type": "member.updated", "data": data})
        return
    operator = _qq(event, "operator_id") if optional(event, "operator_id") else None
    by_other = operator is not None and operator != user
    if notice == "group_increase":
        invited = sub_type == "invite" and by_other
        data = {
            "display_name": None,
            "invited_by": ids.member_id(operator) if invited and operator else None,
            "method": "invite" if sub_type == "invite" else "approval",
        }
        adapted.add({**base, "type": "member.joined", "data": data})
        return
    removed = sub_type in ("kick", "kick_me") or (sub_type != "leave" and by_other)
    data = {
        "reason": "removed" if removed else "left",
        "by": ids.member_id(operator) if removed and operator else None,
    }
    adapted.add({**base, "type": "member.left", "data": data})


def _request(event: dict[str, Any], adapted: Adapted) -> None:
    if event.get("request_type") != "group" or event.get("sub_type") != "add":
        adapted.ignored += 1  # friend requests, invitations of the bot into a group
        return
    group, user = _qq(event, "group_id"), _qq(event, "user_id")
    comment = optional(event, "comment")
    adapted.add(
        {
            "id": f"request:{_digest(event)}",
            "type": "member.join_requested",
            "group_id": ids.group_id(group),
            "member_id": ids.member_id(user),
            "occurred_at": _occurred(event),
            "data": {
                "display_name": None,
                "answer": comment[:MAX_ANSWER] if isinstance(comment, str) else "",
                "request_ref": require(event, "flag"),
                "channel": None,
            },
        }
    )


def adapt(*, source: Source, headers: Mapping[str, str], body: bytes, now: float) -> Adapted:
    """Check X-Signature and X-Self-ID and map one OneBot event."""
    verify_onebot(secret=source.secret, headers=headers, body=body)
    self_header = header(headers, "x-self-id").strip()
    event = parse_object(body)
    self_id = optional(event, "self_id")
    if self_id is not None and str(self_id) != self_header:
        raise Unauthenticated("X-Self-ID does not match the body's self_id")
    post_type = require(event, "post_type")
    adapted = Adapted()
    if post_type == "message":
        _message(event, int(self_header) if _is_number(self_header) else None, adapted)
    elif post_type == "notice":
        _notice(event, adapted)
    elif post_type == "request":
        _request(event, adapted)
    else:
        # meta_event (heartbeat, lifecycle), message_sent (the bot's own), anything newer.
        adapted.ignored = 1
    return adapted
