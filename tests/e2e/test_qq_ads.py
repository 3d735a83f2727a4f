"""End to end for a QQ group: NapCat's signed POSTs → ingest → moderation → delivery → the
double's OneBot API. An ad caught by a keyword rule whose action is mute is recalled
(`delete_msg`: a rule deletes the message it judges) and its author muted (`set_group_ban`
with the rule's duration), and the case shows the enforcement delivered
(delivery.receipts.v1 back to moderation).

Every service runs on the session broker, Redis and database; the double stands in for the
OneBot implementation. The webhook source `qq` (tests/delivery/conftest.py) is both the
one ingest verifies and the one delivery calls the double through.
"""

from __future__ import annotations

import time

import orjson

from services.ingest.app import create_app as create_ingest
from services.moderation.app import create_app as create_moderation
from services.platforms.onebot.inbound import onebot_signature
from tests.conftest import auth
from tests.delivery.conftest import (  # noqa: F401 - the delivery harness's fixtures
    chat_number,
    clean_double,
    delivery,
    delivery_config,
    double,
    sources,
)
from tests.ingest.helpers import load
from tests.moderation.conftest import add_rule, wait_until

SELF_ID = 10001000


def napcat_post(client, payload: dict, secret: str):
    """POST an event as NapCat does: signed body, X-Self-ID."""
    body = orjson.dumps(payload)
    headers = {
        "Content-Type": "application/json",
        "X-Signature": onebot_signature(secret, body),
        "X-Self-ID": str(SELF_ID),
    }
    return client.post("/v1/webhooks/qq", content=body, headers=headers)


def group_message(group: int, user: int, message_id: int, text: str) -> dict:
    """NapCat's array-format group message (tests/ingest/payloads) with this test's ids."""
    return load("onebot_group_message_array") | {
        "group_id": group,
        "user_id": user,
        "message_id": message_id,
        "time": int(time.time()) - 2,
        "sender": {"user_id": user, "nickname": f"u{user}", "card": "", "role": "member"},
        "message": [{"type": "text", "data": {"text": text}}],
        "raw_message": text,
    }


def test_a_qq_ad_is_recalled_and_its_author_muted_at_the_double(
    delivery,  # noqa: F811
    double,  # noqa: F811
    delivery_config,  # noqa: F811
    run_app,
    tokens,
):
    admin = auth(tokens.admin)
    n = chat_number()
    group, ad_id = f"qq:{n}", n + 1
    [qq] = [s for s in sources(double) if s.id == "qq"]
    fake = double.state
    fake.seed_message("onebot", str(n), "20001", "高价代购 加微信", id=str(ad_id))  # as QQ has it
    with delivery() as h:
        settings = h.sharing_settings(qunyun_config=str(delivery_config))
        with (
            run_app(create_moderation(settings)) as moderation,
            run_app(create_ingest(settings)) as ingest,
        ):
            add_rule(moderation, tokens.admin, group, name="广告", kind="keywords",
                     params={"keywords": ["加微信"]}, action="mute", mute_seconds=600)  # fmt: skip
            ad = group_message(n, 20001, ad_id, "高价代购 加微信")
            answer = napcat_post(ingest, ad, qq.secret)
            assert answer.status_code == 204, answer.text  # in Kafka; no quick operation

            def enforced() -> dict | None:
                cases = moderation.get(f"/v1/groups/{group}/cases", headers=admin).json()["cases"]
                done = cases and (cases[0]["enforcement"] or {}).get("outcome") == "delivered"
                calls = {c.method for c in fake.calls_of("onebot")}
                return cases[0] if done and {"delete_msg", "set_group_ban"} <= calls else None

            case = wait_until(enforced, timeout=60)
    assert case, calls_seen(fake)
    assert (case["action"], case["message_id"]) == ("mute", str(ad_id))
    qq_group = fake.group("onebot", str(n))
    assert qq_group.messages[str(ad_id)].deleted
    assert qq_group.muted("20001")
    [delete] = [c for c in fake.calls_of("onebot", "delete_msg") if c.body["message_id"] == ad_id]
    [ban] = fake.calls_of("onebot", "set_group_ban", chat=str(n))
    assert ban.body == {"group_id": n, "user_id": 20001, "duration": 600}
    assert delete.at <= ban.at  # the ad goes first, then its author is muted


def calls_seen(fake) -> str:
    """What the double saw, for a failure message."""
    return str([(c.method, c.body, c.status) for c in fake.calls_of("onebot")])
