"""Feishu/Lark event subscription v2: challenges, group messages and member changes.

Formats: https://open.feishu.cn/document/server-docs/event-subscription-guide/overview,
https://open.feishu.cn/document/server-docs/im-v1/message/events/receive,
https://open.feishu.cn/document/server-docs/group/chat-member/event/added (deleted, withdrawn),
encryption and signature: https://open.feishu.cn/document/server-docs/event-subscription-guide/event-subscription-configure-/encrypt-key-encryption-configuration-case
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Mapping
from typing import Any

import orjson
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from services.common.settings import Source
from services.platforms.feishu import ids
from services.platforms.inbound import (
    Adapted,
    Unauthenticated,
    from_unix,
    invalid,
    optional,
    parse_object,
    require,
)
from services.platforms.signing import check_fresh, header, same

_MESSAGE_KINDS = {
    "text": "text",
    "post": "text",
    "image": "image",
    "file": "file",
    "folder": "file",
    "audio": "voice",
    "media": "video",
    "sticker": "sticker",
    "interactive": "card",
    "share_chat": "card",
    "share_user": "card",
}
_MEMBER_EVENTS = {
    "im.chat.member.user.added_v1",
    "im.chat.member.user.deleted_v1",
    "im.chat.member.user.withdrawn_v1",
}
_URL = re.compile(r"https?://\S+")


def feishu_signature(encrypt_key: str, timestamp: str, nonce: str, body: bytes) -> str:
    """Return the X-Lark-Signature value: hex sha256(timestamp + nonce + encrypt key + body)."""
    return hashlib.sha256((timestamp + nonce + encrypt_key).encode() + body).hexdigest()


def verify_feishu_signature(
    *, encrypt_key: str, headers: Mapping[str, str], body: bytes, now: float
) -> None:
    """Check X-Lark-Signature over X-Lark-Request-Timestamp, -Nonce and the raw body."""
    timestamp = header(headers, "x-lark-request-timestamp")
    nonce = header(headers, "x-lark-request-nonce")
    given = header(headers, "x-lark-signature")
    check_fresh(timestamp, now=now)
    if not same(feishu_signature(encrypt_key, timestamp, nonce, body), given):
        raise Unauthenticated("signature does not match")


def verify_feishu_token(*, secret: str, token: object) -> None:
    """Check the verification token carried inside a Feishu payload."""
    if not isinstance(token, str) or not same(secret, token):
        raise Unauthenticated("verification token does not match")


def _feishu_key(encrypt_key: str) -> bytes:
    return hashlib.sha256(encrypt_key.encode()).digest()


def decrypt_feishu(encrypt_key: str, encrypted: str) -> bytes:
    """Decrypt a Feishu `encrypt` field: base64(iv + AES-256-CBC(sha256(key), PKCS7))."""
    try:
        raw = base64.b64decode(encrypted, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise Unauthenticated("encrypt is not base64") from exc
    if len(raw) < 32 or len(raw) % 16:
        raise Unauthenticated("encrypt has the wrong length")
    decryptor = Cipher(algorithms.AES(_feishu_key(encrypt_key)), modes.CBC(raw[:16])).decryptor()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        plain = decryptor.update(raw[16:]) + decryptor.finalize()
        return unpadder.update(plain) + unpadder.finalize()
    except ValueError as exc:
        raise Unauthenticated("cannot decrypt with this source's encrypt key") from exc


def encrypt_feishu(encrypt_key: str, plain: bytes, iv: bytes) -> str:
    """Encrypt as Feishu does (the inverse of decrypt_feishu; used by tests and tools)."""
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plain) + padder.finalize()
    encryptor = Cipher(algorithms.AES(_feishu_key(encrypt_key)), modes.CBC(iv)).encryptor()
    return base64.b64encode(iv + encryptor.update(padded) + encryptor.finalize()).decode()


def _millis(payload: dict[str, Any], *path: str) -> str:
    value = require(payload, *path)
    try:
        return from_unix(int(value) / 1000, path)
    except ValueError:
        raise invalid(path, "must be milliseconds since the epoch") from None


def _post_text(content: dict[str, Any]) -> tuple[str, bool]:
    """Flatten rich-text (post) content into plain text; tell whether it holds a link."""
    body = content
    if "content" not in body:  # the localised form {"zh_cn": {"title", "content"}}
        body = next((v for v in content.values() if isinstance(v, dict)), {})
    lines = [body["title"]] if isinstance(body.get("title"), str) and body["title"] else []
    has_link = False
    for paragraph in body.get("content") or []:
        parts = []
        for node in paragraph if isinstance(paragraph, list) else []:
            if not isinstance(node, dict):
                continue
            if node.get("tag") == "a":
                has_link = True
                parts.append(str(node.get("text") or node.get("href") or ""))
            elif node.get("tag") == "at":
                parts.append("@" + str(node.get("user_name") or node.get("user_id") or ""))
            elif isinstance(node.get("text"), str):
                parts.append(node["text"])
        lines.append("".join(parts))
    return "\n".join(lines), has_link


def _message(payload: dict[str, Any], event_id: str, adapted: Adapted) -> None:
    loc = ("event", "message")
    if optional(payload, *loc, "chat_type") != "group":
        adapted.ignored = 1
        return
    if optional(payload, "event", "sender", "sender_type") not in (None, "user"):
        adapted.ignored = 1
        return
    chat_id = require(payload, *loc, "chat_id")
    message_id = require(payload, *loc, "message_id")
    open_id = require(payload, "event", "sender", "sender_id", "open_id")
    message_type = require(payload, *loc, "message_type")
    try:
        content = orjson.loads(require(payload, *loc, "content"))
    except orjson.JSONDecodeError:
        raise invalid((*loc, "content"), "content must be a JSON string") from None
    content = content if isinstance(content, dict) else {}
    mentions_raw = optional(payload, *loc, "mentions")
    mentions = (
        [m for m in mentions_raw if isinstance(m, dict)] if isinstance(mentions_raw, list) else []
    )
    kind = _MESSAGE_KINDS.get(message_type, "other")
    text = ""
    if message_type == "text":
        raw_text = content.get("text")
        text = raw_text if isinstance(raw_text, str) else ""
        for mention in mentions:
            if isinstance(mention.get("key"), str) and isinstance(mention.get("name"), str):
                text = text.replace(mention["key"], "@" + mention["name"])
        kind = "link" if _URL.search(text) else "text"
    elif message_type == "post":
        text, has_link = _post_text(content)
        kind = "link" if has_link or _URL.search(text) else "text"
    attachments = []
    if kind in ("image", "file", "voice", "video"):
        key = content.get("image_key") or content.get("file_key")
        attachments = [{"kind": kind, "name": content.get("file_name") or key}]
    mention_ids = [
        ids.member_id(m["id"]["open_id"])
        for m in mentions
        if isinstance(optional(m, "id", "open_id"), str)
    ]
    parent = optional(payload, *loc, "parent_id")
    adapted.add(
        {
            "id": event_id,
            "type": "message.created",
            "group_id": ids.group_id(chat_id),
            "member_id": ids.member_id(open_id),
            "occurred_at": _millis(payload, *loc, "create_time"),
            "data": {
                "message_id": message_id,
                "text": text,
                "kind": kind,
                "mentions": list(dict.fromkeys(mention_ids)),
                "reply_to": parent if isinstance(parent, str) and parent else None,
                "attachments": attachments,
            },
        }
    )


def _members(payload: dict[str, Any], event_id: str, event_type: str, adapted: Adapted) -> None:
    chat_id = require(payload, "event", "chat_id")
    operator = optional(payload, "event", "operator_id", "open_id")
    occurred = _millis(payload, "header", "create_time")
    users = require(payload, "event", "users", kind=list)
    for index, _ in enumerate(users):
        user_loc = ("event", "users", index)
        open_id = require(payload, *user_loc, "user_id", "open_id")
        by_other = isinstance(operator, str) and operator != open_id
        base = {
            "id": f"{event_id}:{open_id}",
            "group_id": ids.group_id(chat_id),
            "member_id": ids.member_id(open_id),
            "occurred_at": occurred,
        }
        if event_type == "im.chat.member.user.added_v1":
            name = optional(payload, *user_loc, "name")
            data = {
                "display_name": name if isinstance(name, str) else None,
                "invited_by": ids.member_id(operator) if by_other else None,
                "method": "invite" if by_other else "other",
            }
            adapted.add({**base, "type": "member.joined", "data": data})
        else:
            data = {
                "reason": "removed" if by_other else "left",
                "by": ids.member_id(operator) if by_other else None,
            }
            adapted.add({**base, "type": "member.left", "data": data})


def adapt(*, source: Source, headers: Mapping[str, str], body: bytes, now: float) -> Adapted:
    """Decrypt and check the signature when the source encrypts, check the token, map the event."""
    signed = bool(source.encrypt_key) and "x-lark-signature" in headers
    if signed:
        # Over the raw body, before parsing: an unauthenticated body never reaches the parser.
        assert source.encrypt_key is not None
        verify_feishu_signature(encrypt_key=source.encrypt_key, headers=headers, body=body, now=now)
    payload = parse_object(body)
    if source.encrypt_key:
        if not isinstance(payload.get("encrypt"), str):
            raise Unauthenticated("this source expects encrypted events")
        payload = parse_object(decrypt_feishu(source.encrypt_key, payload["encrypt"]))
        # Feishu does not sign the URL check; decrypting with the key and the token prove it.
        if not signed and payload.get("type") != "url_verification":
            raise Unauthenticated("missing x-lark-signature header")
    elif timestamp := headers.get("x-lark-request-timestamp"):
        check_fresh(timestamp, now=now)
    if payload.get("type") == "url_verification":
        verify_feishu_token(secret=source.secret, token=payload.get("token"))
        return Adapted(challenge={"challenge": require(payload, "challenge")})
    if payload.get("schema") != "2.0":
        verify_feishu_token(secret=source.secret, token=payload.get("token"))
        return Adapted(ignored=1)  # v1 callbacks are not subscribed to
    verify_feishu_token(secret=source.secret, token=optional(payload, "header", "token"))
    event_id = require(payload, "header", "event_id")
    event_type = require(payload, "header", "event_type")
    adapted = Adapted()
    if event_type == "im.message.receive_v1":
        _message(payload, event_id, adapted)
    elif event_type in _MEMBER_EVENTS:
        _members(payload, event_id, event_type, adapted)
    else:
        adapted.ignored = 1
    return adapted
