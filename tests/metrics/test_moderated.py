"""Spam is not engagement: moderation's deletions and removals, in either arrival order.

Today (Asia/Shanghai) good speaks 3 times; spammer joins and sends s1..s5, then moderation
deletes s1, s2, s3 and s4 and bans the spammer; quiet sends q1 and q2, both deleted.
Counted: good 3, spammer 1 (s5), quiet 0 → messages 4, active members 2 (good, spammer).
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import pytest

from services.common.contracts.actions import ModerationAction
from services.common.redis_client import make_redis
from services.metrics.app import create_app
from services.metrics.apply import Applier
from tests.metrics.helpers import SHANGHAI, raw
from tests.support import auth


def traffic(group: str, now: datetime):
    def say(member, message_id, minutes_ago):
        return raw(
            "message.created",
            group,
            member,
            now - timedelta(minutes=minutes_ago),
            {"message_id": message_id, "display_name": member.upper()},
        )

    events = [raw("member.joined", group, "spammer", now - timedelta(minutes=30))]
    events += [say("good", f"g{i}", 20 + i) for i in range(3)]
    events += [say("spammer", f"s{i}", 10 + i) for i in range(1, 6)]
    events += [say("quiet", f"q{i}", 5 + i) for i in range(1, 3)]

    def act(n, action, member, message_id=None):
        return ModerationAction(
            id=f"act-{group}-{n}", case_id=f"case-{n}", group_id=group, member_id=member,
            event_id=None, message_id=message_id, action=action, duration_seconds=None,
            rule_id=None, reason="spam", created_at=now,
        )  # fmt: skip

    actions = [act(i, "delete", "spammer", f"s{i}") for i in range(1, 5)]
    actions += [act(10 + i, "delete", "quiet", f"q{i}") for i in range(1, 3)]
    actions.append(act(20, "ban", "spammer"))
    return events, actions


@pytest.fixture
def metrics(make_settings, run_app):
    settings = make_settings(qunyun_timezone="Asia/Shanghai")
    applier = Applier(make_redis(settings.redis_url), tz=SHANGHAI, history_days=400)
    with run_app(create_app(settings)) as client:
        yield client, applier


def state(client, tokens, group, today):
    h = auth(tokens.reader)
    day = today.isoformat()

    def get(path, **params):
        r = client.get(f"/v1/groups/{group}/{path}", params=params, headers=h)
        assert r.status_code == 200, r.text
        return r.json()

    return {
        "activity": get("activity", **{"from": day, "to": day})["days"],
        "active": get("active", date=day),
        "board": get("leaderboard", days=1)["members"],
        "spammer": get("members/spammer"),
        "quiet": get("members/quiet"),
        "rolling": get("rolling", window="24h")["messages"],
    }


@pytest.mark.parametrize("order", ["messages-first", "actions-first", "interleaved"])
def test_deleted_messages_stop_counting_in_any_order_and_under_replay(
    metrics, tokens, unique, order
):
    client, applier = metrics
    group = unique(f"spam:{order}")
    now = datetime.now(SHANGHAI).replace(second=0, microsecond=0)
    if now.hour == 0 and now.minute < 40:  # keep every message on today's local date
        now = now.replace(hour=0, minute=40)
    events, actions = traffic(group, now)
    if order == "messages-first":
        applier.apply([e for e, _ in events])
        applier.apply_actions(actions)
    elif order == "actions-first":
        applier.apply_actions(actions)
        applier.apply([e for e, _ in events])
    else:
        rng = random.Random(3)
        steps = [("e", x) for x in events] + [("a", x) for x in actions]
        rng.shuffle(steps)
        for kind, x in steps:
            if kind == "e":
                applier.apply([x[0]])
            else:
                applier.apply_actions([x])
    first = state(client, tokens, group, now.date())
    # Replays of both topics, in the other order, change nothing.
    applier.apply_actions(actions)
    applier.apply([e for e, _ in events])
    assert state(client, tokens, group, now.date()) == first

    (day,) = first["activity"]
    assert (day["messages"], day["active_members"], day["joins"]) == (4, 2, 1)
    assert (first["active"]["dau"], first["active"]["mau"]) == (2, 2)
    assert first["board"] == [{"member_id": "good", "display_name": "GOOD", "messages": 3}]
    assert (first["spammer"]["messages"], first["spammer"]["active_days"]) == (1, 1)
    assert (first["quiet"]["messages"], first["quiet"]["active_days"]) == (0, 0)
    assert first["rolling"] == 4


def test_an_unban_puts_the_member_back_on_the_leaderboard(metrics, tokens, unique):
    client, applier = metrics
    group = unique("spam:unban")
    now = datetime.now(SHANGHAI).replace(second=0, microsecond=0)
    if now.hour == 0 and now.minute < 40:
        now = now.replace(hour=0, minute=40)
    events, actions = traffic(group, now)
    applier.apply([e for e, _ in events])
    unban = actions[-1].model_copy(update={"id": "unban", "action": "unban"})
    applier.apply_actions([*actions, unban])
    board = client.get(f"/v1/groups/{group}/leaderboard?days=1", headers=auth(tokens.reader))
    assert [(m["member_id"], m["messages"]) for m in board.json()["members"]] == [
        ("good", 3),
        ("spammer", 1),
    ]
