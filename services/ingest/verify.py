"""Each platform's way of proving a webhook came from it: signatures, tokens and timestamps."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

MAX_SKEW_SECONDS = 300


class Unauthenticated(Exception):
    """The request does not prove it came from the source (answered 401)."""


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if not value:
        raise Unauthenticated(f"missing {name} header")
    return value


def check_fresh(timestamp: str, *, now: float) -> None:
    """Reject a unix-seconds timestamp more than MAX_SKEW_SECONDS away from now."""
    try:
        sent = int(timestamp)
    except ValueError as exc:
        raise Unauthenticated("timestamp is not unix seconds") from exc
    if abs(now - sent) > MAX_SKEW_SECONDS:
        raise Unauthenticated("timestamp is outside the 300 s window")


def _same(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.encode(), given.encode())


def _hmac_hex(secret: str, message: bytes) -> str:
    # hmac.digest is OpenSSL's one-shot HMAC: no Python HMAC object per request.
    return hmac.digest(secret.encode(), message, "sha256").hex()


def generic_signature(secret: str, timestamp: str, body: bytes) -> str:
    """Return the X-Qunyun-Signature value for a body sent at a timestamp."""
    return "v1=" + _hmac_hex(secret, timestamp.encode() + b"." + body)


def verify_generic(*, secret: str, headers: Mapping[str, str], body: bytes, now: float) -> None:
    """Check X-Qunyun-Timestamp and X-Qunyun-Signature (v1, several allowed for key rotation)."""
    timestamp = _header(headers, "x-qunyun-timestamp")
    given = _header(headers, "x-qunyun-signature")
    check_fresh(timestamp, now=now)
    expected = generic_signature(secret, timestamp, body)
    if not any(_same(expected, part.strip()) for part in given.split(",")):
        raise Unauthenticated("signature does not match")


def slack_signature(secret: str, timestamp: str, body: bytes) -> str:
    """Return the X-Slack-Signature value Slack sends for a body."""
    return "v0=" + _hmac_hex(secret, b"v0:" + timestamp.encode() + b":" + body)


def verify_slack(*, secret: str, headers: Mapping[str, str], body: bytes, now: float) -> None:
    """Check X-Slack-Signature (v0) over X-Slack-Request-Timestamp and the raw body."""
    timestamp = _header(headers, "x-slack-request-timestamp")
    given = _header(headers, "x-slack-signature")
    check_fresh(timestamp, now=now)
    if not _same(slack_signature(secret, timestamp, body), given):
        raise Unauthenticated("signature does not match")


def verify_telegram(*, secret: str, headers: Mapping[str, str]) -> None:
    """Check X-Telegram-Bot-Api-Secret-Token (Telegram sends no timestamp or signature)."""
    if not _same(secret, _header(headers, "x-telegram-bot-api-secret-token")):
        raise Unauthenticated("secret token does not match")


def feishu_signature(encrypt_key: str, timestamp: str, nonce: str, body: bytes) -> str:
    """Return the X-Lark-Signature value: hex sha256(timestamp + nonce + encrypt key + body)."""
    return hashlib.sha256((timestamp + nonce + encrypt_key).encode() + body).hexdigest()


def verify_feishu_signature(
    *, encrypt_key: str, headers: Mapping[str, str], body: bytes, now: float
) -> None:
    """Check X-Lark-Signature over X-Lark-Request-Timestamp, -Nonce and the raw body."""
    timestamp = _header(headers, "x-lark-request-timestamp")
    nonce = _header(headers, "x-lark-request-nonce")
    given = _header(headers, "x-lark-signature")
    check_fresh(timestamp, now=now)
    if not _same(feishu_signature(encrypt_key, timestamp, nonce, body), given):
        raise Unauthenticated("signature does not match")


def verify_feishu_token(*, secret: str, token: object) -> None:
    """Check the verification token carried inside a Feishu payload."""
    if not isinstance(token, str) or not _same(secret, token):
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
