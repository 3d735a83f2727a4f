"""WeCom (企业微信) customer-group callbacks: the URL check and encrypted change_external_chat.

Formats: https://developer.work.weixin.qq.com/document/path/90968 (回调配置: URL check,
msg_signature, the AES framing), https://developer.work.weixin.qq.com/document/path/92130
(客户群变更事件). WeCom signs the query string, not a header: `msg_signature =
sha1(sorted([token, timestamp, nonce, encrypt]) joined)`. The payload is AES-256-CBC with
the key base64(EncodingAESKey + "="), IV its first 16 bytes, PKCS#7 to 32 bytes; the
plaintext is 16 random bytes, a 4-byte big-endian length, the XML and the ReceiveId (the
corp id). The framing is wechatpy's (`wechatpy.enterprise.crypto.PrpCrypto`), not ours.

`change_external_chat` with `UpdateDetail` `add_member`/`del_member` names the members in
`MemChangeList` (`<Item>` elements; older callbacks one comma-separated text). A callback
without it names nobody: it is acknowledged and counted as ignored, like every other change
(群名、群公告、群主变更, creation, dismissal). Joins are enriched afterwards with the
inviter and the join way's `state` (`enrich.py`), when the source has `app_secret`.
"""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any

from wechatpy.enterprise.crypto import PrpCrypto
from wechatpy.enterprise.exceptions import InvalidCorpIdException

from services.common.settings import Source
from services.platforms.inbound import Adapted, Unauthenticated, from_unix, invalid
from services.platforms.signing import check_fresh, same
from services.platforms.wecom import ids
from services.platforms.wecom.crypto import aes_key, callback_signature

SIGNED_PARAMS = ("msg_signature", "timestamp", "nonce")
MEMBER_CHANGES = ("add_member", "del_member")
# JoinScene: 0 invited by a member (directly or by link), 3 scanned the group's QR code.
JOIN_METHODS = {0: "invite", 3: "qrcode"}
# QuitScene: 0 left, 1 removed by the owner or an admin.
LEAVE_REASONS = {0: "left", 1: "removed"}


def _signed(query: Mapping[str, str], *, now: float) -> tuple[str, str, str]:
    """The query's msg_signature, timestamp and nonce, present and fresh."""
    values = []
    for name in SIGNED_PARAMS:
        value = query.get(name)
        if not value:
            raise Unauthenticated(f"missing {name} query parameter")
        values.append(value)
    check_fresh(values[1], now=now)
    return values[0], values[1], values[2]


def _decrypt(source: Source, *, encrypt: str, signature: str, timestamp: str, nonce: str) -> str:
    """Check msg_signature over the ciphertext, decrypt it and check the ReceiveId."""
    if not same(callback_signature(source.secret, timestamp, nonce, encrypt), signature):
        raise Unauthenticated("msg_signature does not match")
    assert source.encrypt_key is not None and source.app_id is not None  # settings checked
    try:
        return str(PrpCrypto(aes_key(source.encrypt_key)).decrypt(encrypt, source.app_id))
    except InvalidCorpIdException:
        raise Unauthenticated("the ReceiveId is not this source's app_id (corp id)") from None
    except Exception as exc:  # noqa: BLE001 — bad base64, length, padding or UTF-8
        # A signed but undecryptable payload: the key is wrong or the bytes were changed.
        raise Unauthenticated(f"the payload does not decrypt ({type(exc).__name__})") from None


def verify_url(*, source: Source, query: Mapping[str, str], now: float) -> str:
    """The decrypted echostr of WeCom's URL check (GET), or Unauthenticated."""
    signature, timestamp, nonce = _signed(query, now=now)
    echostr = query.get("echostr")
    if not echostr:
        raise Unauthenticated("missing echostr query parameter")
    # A '+' sent unescaped reads as a space; base64 never holds one.
    echostr = echostr.replace(" ", "+")
    return _decrypt(source, encrypt=echostr, signature=signature, timestamp=timestamp, nonce=nonce)


def parse_xml(body: bytes | str, what: str = "body") -> ET.Element:
    """The root element of a WeCom XML document (no DTD, no entities), or InvalidPayload."""
    raw = body.encode() if isinstance(body, str) else body
    if b"<!DOCTYPE" in raw or b"<!ENTITY" in raw:
        raise invalid((), f"{what}: a DOCTYPE or entity is not allowed", "xml_invalid")
    try:
        return ET.fromstring(raw)
    except ET.ParseError as exc:
        raise invalid((), f"{what} is not well-formed XML: {exc}", "xml_invalid") from None


def _text(root: ET.Element, name: str) -> str | None:
    element = root.find(name)
    return None if element is None or element.text is None else element.text.strip()


def _required(root: ET.Element, name: str) -> str:
    value = _text(root, name)
    if not value:
        raise invalid((name,), "Field required", "missing")
    return value


def _integer(root: ET.Element, name: str, *, required: bool = False) -> int | None:
    value = _required(root, name) if required else _text(root, name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise invalid((name,), "must be an integer", "int_parsing") from None


def changed_members(root: ET.Element) -> list[str]:
    """The userids in MemChangeList: `<Item>` elements, or one comma-separated text."""
    element = root.find("MemChangeList")
    if element is None:
        return []
    items = [(item.text or "").strip() for item in element.findall("Item")]
    if not items and element.text:
        items = [part.strip() for part in element.text.split(",")]
    return list(dict.fromkeys(item for item in items if item))


def _change_digest(root: ET.Element) -> str:
    """A stable digest of one membership change: WeCom's retries carry the same fields."""
    parts = [_text(root, n) or "" for n in ("ChatId", "UpdateDetail", "CreateTime")]
    parts += [_text(root, n) or "" for n in ("LastMemVer", "CurMemVer")]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:24]


def map_event(root: ET.Element) -> Adapted:
    """Map a decrypted event to canonical member events (ignored unless a member change)."""
    adapted = Adapted()
    event = _text(root, "Event")
    change = _text(root, "ChangeType")
    detail = _text(root, "UpdateDetail")
    if (event, change) != ("change_external_chat", "update") or detail not in MEMBER_CHANGES:
        adapted.ignored = 1
        return adapted
    chat = _required(root, "ChatId")
    created = _integer(root, "CreateTime", required=True)
    assert created is not None
    occurred_at = from_unix(created, ("CreateTime",))
    members = changed_members(root)
    if not members:
        adapted.ignored = 1  # no MemChangeList: WeCom named nobody
        return adapted
    digest = _change_digest(root)
    for index, userid in enumerate(members):
        raw: dict[str, Any] = {
            "id": f"{digest}:{userid}",
            "group_id": ids.group_id(chat),
            "member_id": ids.member_id(userid),
            "occurred_at": occurred_at,
        }
        if detail == "add_member":
            scene = _integer(root, "JoinScene")
            data = {"method": JOIN_METHODS.get(scene, "other") if scene is not None else "other"}
            adapted.add({**raw, "type": "member.joined", "data": data}, ("MemChangeList", index))
        else:
            scene = _integer(root, "QuitScene")
            data = {"reason": LEAVE_REASONS.get(scene, "left") if scene is not None else "left"}
            adapted.add({**raw, "type": "member.left", "data": data}, ("MemChangeList", index))
    return adapted


def adapt(*, source: Source, query: Mapping[str, str], body: bytes, now: float) -> Adapted:
    """Check msg_signature and freshness, decrypt the `Encrypt` element, map the event."""
    signature, timestamp, nonce = _signed(query, now=now)
    envelope = parse_xml(body)
    encrypt = _required(envelope, "Encrypt")
    plaintext = _decrypt(
        source, encrypt=encrypt, signature=signature, timestamp=timestamp, nonce=nonce
    )
    return map_event(parse_xml(plaintext, "the decrypted event"))
