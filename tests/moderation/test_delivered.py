"""End to end with the delivery service and the platform double: a rule's mute is carried
out in the fake Telegram group (with its notice posted, the member mentioned once, on the
`@<display name>` the notice names them by) through the source of the group's events,
and the case's `enforcement` becomes `delivered` (from delivery.receipts.v1); a delete of a
message past Telegram's 48-hour window ends `expired` with no call."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.moderation.app import create_app
from tests.conftest import auth, produce_events
from tests.delivery.conftest import (  # noqa: F401 - the delivery harness's fixtures
    chat_number,
    clean_double,
    delivery,
    delivery_config,
    double,
)
from tests.moderation.conftest import add_rule, message, wait_until


def test_a_mute_is_carried_out_at_the_double_and_the_case_shows_it_delivered(
    delivery,  # noqa: F811
    run_app,
    tokens,
    producer,
):
    admin = auth(tokens.admin)
    chat = f"-{chat_number()}"
    group = f"telegram:{chat}"
    with delivery() as h:
        settings = h.sharing_settings()
        with run_app(create_app(settings)) as client:
            add_rule(client, tokens.admin, group, name="广告", kind="keywords",
                     params={"keywords": ["加微信"]}, action="mute", mute_seconds=600)  # fmt: skip
            policy = {"notices": {"mute": "{member} 因 {reason} 被禁言 {duration}"}}
            assert client.put(f"/v1/groups/{group}/policy", headers=admin, json=policy).is_success
            at = datetime.now(UTC) - timedelta(seconds=5)
            ad = message(
                group, "telegram:42", "加微信", display_name="小明", message_id="4711", at=at
            )
            ad = ad.model_copy(update={"source": "tg"})
            produce_events(producer, settings.topic_events, [ad])

            def enforcement() -> dict | None:
                cases = client.get(f"/v1/groups/{group}/cases", headers=admin).json()["cases"]
                return cases[0]["enforcement"] if cases else None

            done = wait_until(enforcement, timeout=40)
    assert done and done["outcome"] == "delivered", done
    fake = h.group("telegram", chat)
    assert fake.muted("42")
    assert fake.messages["4711"].deleted  # the rule deleted the ad it judged (delete_message)
    [post] = fake.posts()
    # The action names the member's display name (`mention_names`): the `@小明` already in
    # the notice becomes the one text_mention entity, and nothing is appended.
    assert post.text == "@小明 因 广告 被禁言 10 分钟"
    assert post.mentions == ["42"]
    assert post.text.count("@") == 1 and "telegram:42" not in post.text


def test_a_delete_of_a_message_older_than_48_hours_is_expired_without_a_call(
    delivery,  # noqa: F811
    run_app,
    tokens,
    producer,
):
    admin = auth(tokens.admin)
    chat = f"-{chat_number()}"
    group = f"telegram:{chat}"
    with delivery() as h:
        settings = h.sharing_settings()
        with run_app(create_app(settings)) as client:
            add_rule(client, tokens.admin, group, name="广告", kind="keywords",
                     params={"keywords": ["加微信"]}, action="delete")  # fmt: skip
            # A message ingest saw two days ago, judged now (a late webhook, a backfill):
            # Telegram bots cannot delete it any more, so delivery makes no call.
            at = datetime.now(UTC) - timedelta(hours=49)
            ad = message(group, "telegram:42", "加微信", message_id="4712", at=at)
            produce_events(
                producer, settings.topic_events, [ad.model_copy(update={"source": "tg"})]
            )

            def enforcement() -> dict | None:
                cases = client.get(f"/v1/groups/{group}/cases", headers=admin).json()["cases"]
                return cases[0]["enforcement"] if cases else None

            done = wait_until(enforcement, timeout=40)
            [case] = client.get(f"/v1/groups/{group}/cases", headers=admin).json()["cases"]
    assert case["action"] == "delete" and case["message_id"] == "4712"
    assert done and done["outcome"] == "expired", done
    assert "48 h" in done["detail"]
    assert h.double.state.calls_of("telegram", chat=chat) == []
