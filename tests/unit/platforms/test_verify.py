"""Signatures, tokens and timestamps: the platforms' documented examples and every refusal."""

import os

import pytest

from services.platforms.feishu.inbound import (
    decrypt_feishu,
    encrypt_feishu,
    feishu_signature,
    verify_feishu_signature,
    verify_feishu_token,
)
from services.platforms.generic.inbound import generic_signature, verify_generic
from services.platforms.inbound import Unauthenticated
from services.platforms.signing import MAX_SKEW_SECONDS, check_fresh
from services.platforms.slack.inbound import slack_signature, verify_slack
from services.platforms.telegram.inbound import verify_telegram

NOW = 1_800_000_000
TS = str(NOW)


def test_slack_documented_signature_example():
    # https://api.slack.com/authentication/verifying-requests-from-slack
    body = (
        b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow"
        b"&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner"
        b"&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com"
        b"%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
        b"&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
    )
    assert (
        slack_signature("8f742231b10e8888abcd99yyyzzz85a5", "1531420618", body)
        == "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
    )


def test_feishu_documented_decryption_example():
    # https://open.feishu.cn/document/server-docs/event-subscription-guide/event-subscription-configure-/encrypt-key-encryption-configuration-case
    assert (
        decrypt_feishu("test key", "P37w+VZImNgPEO1RBhJ6RtKl7n6zymIbEG1pReEzghk=") == b"hello world"
    )
    with pytest.raises(Unauthenticated):
        decrypt_feishu("other key", "P37w+VZImNgPEO1RBhJ6RtKl7n6zymIbEG1pReEzghk=")
    with pytest.raises(Unauthenticated):
        decrypt_feishu("test key", "not base64!")
    with pytest.raises(Unauthenticated, match="length"):
        decrypt_feishu("test key", "AAAA")


def test_feishu_encryption_round_trips():
    plain = b'{"challenge": "x"}' * 5
    assert decrypt_feishu("k", encrypt_feishu("k", plain, os.urandom(16))) == plain


@pytest.mark.parametrize(
    ("timestamp", "fresh"),
    [(TS, True), (str(NOW - MAX_SKEW_SECONDS), True), (str(NOW + MAX_SKEW_SECONDS + 1), False)],
)
def test_timestamps_outside_the_window_are_refused(timestamp, fresh):
    if fresh:
        check_fresh(timestamp, now=NOW)
    else:
        with pytest.raises(Unauthenticated, match="window"):
            check_fresh(timestamp, now=NOW)
    with pytest.raises(Unauthenticated, match="unix seconds"):
        check_fresh("yesterday", now=NOW)


def test_generic_signature_accepts_any_of_several_for_key_rotation():
    body = b'{"id": "1"}'
    good = generic_signature("s", TS, body)
    headers = {"x-qunyun-timestamp": TS, "x-qunyun-signature": f"v1=old, {good}"}
    verify_generic(secret="s", headers=headers, body=body, now=NOW)
    with pytest.raises(Unauthenticated, match="does not match"):
        verify_generic(secret="s", headers=headers, body=body + b" ", now=NOW)
    with pytest.raises(Unauthenticated, match="x-qunyun-signature"):
        verify_generic(secret="s", headers={"x-qunyun-timestamp": TS}, body=body, now=NOW)


def test_slack_signature_covers_timestamp_and_body():
    body = b"{}"
    headers = {"x-slack-request-timestamp": TS, "x-slack-signature": slack_signature("s", TS, body)}
    verify_slack(secret="s", headers=headers, body=body, now=NOW)
    with pytest.raises(Unauthenticated):
        verify_slack(secret="other", headers=headers, body=body, now=NOW)
    with pytest.raises(Unauthenticated, match="window"):
        verify_slack(secret="s", headers=headers, body=body, now=NOW + 1000)


def test_telegram_secret_token():
    verify_telegram(secret="t", headers={"x-telegram-bot-api-secret-token": "t"})
    for headers in ({"x-telegram-bot-api-secret-token": "u"}, {}):
        with pytest.raises(Unauthenticated):
            verify_telegram(secret="t", headers=headers)


def test_feishu_signature_and_token():
    body = b'{"encrypt": "x"}'
    signed = {
        "x-lark-request-timestamp": TS,
        "x-lark-request-nonce": "n1",
        "x-lark-signature": feishu_signature("k", TS, "n1", body),
    }
    verify_feishu_signature(encrypt_key="k", headers=signed, body=body, now=NOW)
    with pytest.raises(Unauthenticated):
        verify_feishu_signature(
            encrypt_key="k", headers={**signed, "x-lark-request-nonce": "n2"}, body=body, now=NOW
        )
    verify_feishu_token(secret="tok", token="tok")
    for token in ("other", None, 42):
        with pytest.raises(Unauthenticated, match="verification token"):
            verify_feishu_token(secret="tok", token=token)
