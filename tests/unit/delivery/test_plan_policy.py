"""Pure delivery arithmetic: record → steps, call result → decision, pacing defaults and keys."""

from __future__ import annotations

import pytest

from services.common.settings import QunyunConfig, Settings, Source
from services.delivery.pacing import Rates, group_keys, rates_for, source_keys
from services.delivery.plan import plan
from services.delivery.policy import backoff, decide
from services.delivery.records import InvalidRecord, decode
from services.delivery.routing import Route, route_for
from services.platforms import CallResult

ACTION = {"id": "a1", "group_id": "telegram:-1", "member_id": "telegram:2", "message_id": "9"}


@pytest.mark.parametrize(
    "name", ["delete", "mute", "unmute", "kick", "ban", "unban", "approve_join", "decline_join"]
)
def test_platform_actions_map_to_the_same_operation(name):
    result = plan({**ACTION, "action": name}, "telegram")
    assert result.operation == name
    assert [s.operation for s in result.steps] == [name]
    assert result.steps[0].record_id == "a1"


def test_action_text_is_a_second_request_with_its_own_key():
    result = plan({**ACTION, "action": "mute", "text": "t", "mentions": ["telegram:2"]}, "telegram")
    mute, post = result.steps
    assert (mute.operation, post.operation) == ("mute", "post")
    assert post.record_id == "a1:text" and post.reply_to == "9"
    assert [m.member_id for m in post.mentions] == ["telegram:2"]


def test_replies_to_a_judged_message_only_where_it_may_be_gone():
    slack = plan({**ACTION, "action": "warn", "text": "t"}, "slack")
    assert [s.operation for s in slack.steps] == ["post"] and slack.steps[0].reply_to is None
    assert slack.steps[0].record_id == "a1"


@pytest.mark.parametrize("name", ["flag", "warn"])
def test_flag_and_warn_without_text_call_nothing(name):
    assert plan({**ACTION, "action": name}, "telegram").steps == ()


def test_notifications_are_posts_with_reply_and_mentions():
    record = {"id": "n1", "group_id": "qq:1", "text": "hi", "reply_to": "5", "mentions": ["qq:3"]}
    [post] = plan(record, "onebot").steps
    assert (post.operation, post.reply_to, post.mentions[0].member_id) == ("post", "5", "qq:3")


def test_final_outcomes_and_forbidden_are_never_retried():
    for outcome in ("delivered", "unsupported", "forbidden", "expired"):
        decision = decide(
            CallResult(outcome), platform="slack", operation="kick", failures=0, max_attempts=5
        )  # type: ignore[arg-type]
        assert decision.final and decision.outcome == outcome


def test_server_errors_back_off_then_fail():
    error = CallResult("failed", "HTTP 502", retryable=True, unknown=True)
    first = decide(error, platform="slack", operation="kick", failures=0, max_attempts=3)
    assert not first.final and first.delay == backoff(1) and first.counts_failure
    last = decide(error, platform="slack", operation="kick", failures=2, max_attempts=3)
    assert last.final and last.outcome == "failed" and "3 failed attempts" in last.detail


def test_rate_limits_pause_the_group_for_chat_posts_else_the_source():
    limited = CallResult("failed", "429", retryable=True, retry_after=7)
    post = decide(limited, platform="telegram", operation="post", failures=9, max_attempts=3)
    assert (post.final, post.delay, post.pause, post.counts_failure) == (False, 7, "group", False)
    kick = decide(limited, platform="feishu", operation="kick", failures=0, max_attempts=3)
    assert kick.pause == "source"


def test_backoff_grows_and_is_capped():
    assert [backoff(n) for n in (1, 2, 3)] == [0.5, 1.0, 2.0]
    assert backoff(30) == 60.0


def test_pacing_defaults_and_overrides():
    tg = Source(id="t", platform="telegram", secret="s")
    assert rates_for(tg) == Rates(30.0, 20.0)
    fast = Source(id="q", platform="onebot", secret="s", rate_per_second=5)
    assert rates_for(fast) == Rates(5.0, None)


def test_keys_carry_hash_tags():
    assert source_keys("tg")[0].count("{src:tg}") == 1
    bucket, pause = group_keys("tg", "telegram:-1")
    assert "{telegram:-1}" in bucket and "{telegram:-1}" in pause


def test_routes_and_their_absence():
    config = QunyunConfig(
        sources=[
            Source(id="ok", platform="telegram", secret="s", bot_token="1:x"),
            Source(id="bare", platform="slack", secret="s"),
        ]
    )
    assert isinstance(route_for(config, "ok"), Route)
    assert "missing bot_token" in str(route_for(config, "bare"))
    assert "unknown source" in str(route_for(config, "nope"))
    assert "names no source" in str(route_for(config, None))


def test_incomplete_outbound_credentials_are_refused_naming_the_key():
    with pytest.raises(ValueError, match="'fs' .*lacks app_secret"):
        Source(id="fs", platform="feishu", secret="s", app_id="cli")


def test_undecodable_records_raise():
    settings = Settings()
    with pytest.raises(InvalidRecord):
        decode(settings.topic_moderation_actions, b"{not json", settings)
    with pytest.raises(InvalidRecord):
        decode(settings.topic_campaign_notifications, b'{"id": "x"}', settings)
