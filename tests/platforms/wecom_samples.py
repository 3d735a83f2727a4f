"""WeCom callbacks as WeCom sends them, encrypted and signed by wechatpy (not by qunyun).

wechatpy's `WeChatCrypto` is an independent WXBizMsgCrypt implementation: every sample the
tests post is framed, encrypted and signed by it, so qunyun's reading is checked against
another implementation rather than against itself. `raw_encrypt` builds what wechatpy never
would (bad padding) with plain AES.
"""

from __future__ import annotations

import base64
import os
import struct
import time
from typing import Any

import xmltodict
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from wechatpy.enterprise.crypto import PrpCrypto, WeChatCrypto
from wechatpy.utils import WeChatSigner

from services.common.settings import Source

CORP_ID = "ww_test_corp"  # the double's corp id (DoubleConfig.wecom_corp_id)
TOKEN = "wecom-callback-token"
ENCODING_AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"  # 43 chars, WeCom's sample

# The URL check of WeCom's own documentation (回调配置, the WXBizMsgCrypt sample).
DOC_URL_CHECK = {
    "token": "QDG6eK",
    "key": "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
    "corp_id": "wx5823bf96d3bd56c7",
    "query": {
        "msg_signature": "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3",
        "timestamp": "1409659589",
        "nonce": "263014780",
        "echostr": "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8"
        "TgAE7OaBO+FZXvnaqQ==",
    },
    "echo": "1616140317555161061",
}


def source(source_id: str = "wecom-test", **fields: Any) -> Source:
    """A WeCom source on the sample token, key and corp id."""
    base = {"platform": "wecom", "secret": TOKEN, "encrypt_key": ENCODING_AES_KEY}
    return Source(id=source_id, **{**base, "app_id": CORP_ID, **fields})


def change_xml(
    chat: str,
    detail: str,
    members: list[str] | None,
    *,
    join_scene: int | None = None,
    quit_scene: int | None = None,
    created: int | None = None,
    version: str | None = None,
    items: bool = True,
    change_type: str = "update",
    event: str = "change_external_chat",
) -> str:
    """A 客户群变更事件 as documented (document/path/92130)."""
    created = created if created is not None else int(time.time())
    version = version or os.urandom(16).hex()
    fields = [
        f"<ToUserName><![CDATA[{CORP_ID}]]></ToUserName>",
        "<FromUserName><![CDATA[sys]]></FromUserName>",
        f"<CreateTime>{created}</CreateTime>",
        "<MsgType><![CDATA[event]]></MsgType>",
        f"<Event><![CDATA[{event}]]></Event>",
        f"<ChatId><![CDATA[{chat}]]></ChatId>",
        f"<ChangeType><![CDATA[{change_type}]]></ChangeType>",
        f"<UpdateDetail><![CDATA[{detail}]]></UpdateDetail>",
    ]
    if join_scene is not None:
        fields.append(f"<JoinScene>{join_scene}</JoinScene>")
    if quit_scene is not None:
        fields.append(f"<QuitScene>{quit_scene}</QuitScene>")
    if members is not None:
        fields.append(f"<MemChangeCnt>{len(members)}</MemChangeCnt>")
        if items:
            listed = "".join(f"<Item><![CDATA[{m}]]></Item>" for m in members)
        else:  # the format before MemChangeList had items
            listed = f"<![CDATA[{','.join(members)}]]>"
        fields.append(f"<MemChangeList>{listed}</MemChangeList>")
        fields.append(f"<LastMemVer>{os.urandom(16).hex()}</LastMemVer>")
        fields.append(f"<CurMemVer>{version}</CurMemVer>")
    return "<xml>" + "".join(fields) + "</xml>"


def signature(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    """wechatpy's msg_signature."""
    signer = WeChatSigner()
    signer.add_data(token, timestamp, nonce, encrypt)
    return str(signer.signature)


def envelope(encrypt: str, corp_id: str = CORP_ID) -> bytes:
    """The POST body: the ciphertext in `Encrypt`, as WeCom wraps it."""
    return (
        f"<xml><ToUserName><![CDATA[{corp_id}]]></ToUserName>"
        f"<Encrypt><![CDATA[{encrypt}]]></Encrypt>"
        "<AgentID><![CDATA[1000002]]></AgentID></xml>"
    ).encode()


def encrypted_post(
    xml: str,
    *,
    corp_id: str = CORP_ID,
    token: str = TOKEN,
    key: str = ENCODING_AES_KEY,
    at: float | None = None,
) -> tuple[dict[str, str], bytes]:
    """The query and body of a callback POST, encrypted and signed by wechatpy."""
    timestamp, nonce = str(int(at if at is not None else time.time())), os.urandom(5).hex()
    reply = xmltodict.parse(
        WeChatCrypto(token, key, corp_id).encrypt_message(xml, nonce, timestamp)
    )
    query = {"msg_signature": reply["xml"]["MsgSignature"], "timestamp": timestamp, "nonce": nonce}
    return query, envelope(reply["xml"]["Encrypt"], corp_id)


def url_check(
    echo: str, *, corp_id: str = CORP_ID, token: str = TOKEN, key: str = ENCODING_AES_KEY
) -> dict[str, str]:
    """The query of WeCom's GET URL check for `echo`, encrypted and signed by wechatpy."""
    aes = base64.b64decode(key + "=")
    echostr = PrpCrypto(aes).encrypt(echo, corp_id).decode()
    timestamp, nonce = str(int(time.time())), os.urandom(5).hex()
    sig = signature(token, timestamp, nonce, echostr)
    return {"msg_signature": sig, "timestamp": timestamp, "nonce": nonce, "echostr": echostr}


def raw_encrypt(plaintext: bytes, *, key: str = ENCODING_AES_KEY) -> str:
    """AES-256-CBC of `plaintext` as is (the caller frames and pads it), base64."""
    aes = base64.b64decode(key + "=")
    encryptor = Cipher(algorithms.AES(aes), modes.CBC(aes[:16])).encryptor()
    return base64.b64encode(encryptor.update(plaintext) + encryptor.finalize()).decode()


def framed(xml: str, corp_id: str = CORP_ID) -> bytes:
    """WeCom's plaintext framing: 16 random bytes, the length, the XML, the ReceiveId."""
    body = xml.encode()
    return os.urandom(16) + struct.pack(">I", len(body)) + body + corp_id.encode()


def signed_post(encrypt: str, *, token: str = TOKEN) -> tuple[dict[str, str], bytes]:
    """A POST of a given ciphertext, correctly signed (to reach the decryption)."""
    timestamp, nonce = str(int(time.time())), os.urandom(5).hex()
    query = {"msg_signature": signature(token, timestamp, nonce, encrypt)}
    return query | {"timestamp": timestamp, "nonce": nonce}, envelope(encrypt)


def bad_padding_ciphertext(xml: str) -> str:
    """Framed right, padded wrong: the last byte claims 0 bytes of padding."""
    plain = framed(xml)
    pad = 32 - len(plain) % 32
    return raw_encrypt(plain + bytes([pad] * (pad - 1)) + b"\x00")


def tampered(encrypt: str) -> str:
    """The ciphertext with one byte of its first block flipped (garbles the framing)."""
    raw = bytearray(base64.b64decode(encrypt))
    raw[20] ^= 0xFF
    return base64.b64encode(bytes(raw)).decode()
