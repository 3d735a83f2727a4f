"""WeCom's callback proofs: the EncodingAESKey and msg_signature (the AES framing is wechatpy's).

https://developer.work.weixin.qq.com/document/path/90968 — the AES key is
base64(EncodingAESKey + "="), 32 bytes; `msg_signature` is the hex sha1 of the token,
timestamp, nonce and ciphertext, sorted and joined.
"""

from __future__ import annotations

import base64
import binascii
import hashlib


def aes_key(encoding_aes_key: str) -> bytes:
    """The 32-byte AES key of a 43-character EncodingAESKey (ValueError if it is not one)."""
    if len(encoding_aes_key) != 43:
        raise ValueError("the EncodingAESKey must be 43 characters")
    try:
        key = base64.b64decode(encoding_aes_key + "=", validate=True)
    except binascii.Error:
        raise ValueError("the EncodingAESKey is not base64 (A-Z, a-z, 0-9, +, /)") from None
    if len(key) != 32:
        raise ValueError("the EncodingAESKey does not decode to 32 bytes")
    return key


def callback_signature(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    """msg_signature: hex sha1 of the token, timestamp, nonce and ciphertext, sorted, joined."""
    return hashlib.sha1("".join(sorted([token, timestamp, nonce, encrypt])).encode()).hexdigest()
