"""The records campaigns publishes keep the JSON consumers read (contracts/notifications.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from services.common.contracts.notifications import (
    NOTIFICATIONS_TOPIC,
    REWARDS_TOPIC,
    CampaignNotification,
    RewardGranted,
)

AT = datetime(2026, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)


def test_topics():
    assert (NOTIFICATIONS_TOPIC, REWARDS_TOPIC) == (
        "campaigns.notifications.v1",
        "campaigns.rewards.v1",
    )


def test_notification_json():
    n = CampaignNotification(
        id="c1:started",
        group_id="slack:T1:C2",
        campaign_id="c1",
        kind="started",
        text="【开始】…",
        data={"campaign_kind": "checkin", "title": "t", "ends_at": AT.isoformat()},
        created_at=AT,
    )
    assert n.model_dump(mode="json") == {
        "id": "c1:started",
        "group_id": "slack:T1:C2",
        "source": None,
        "campaign_id": "c1",
        "kind": "started",
        "text": "【开始】…",
        "reply_to": None,
        "mentions": [],
        "mention_names": {},
        "data": {"campaign_kind": "checkin", "title": "t", "ends_at": AT.isoformat()},
        "created_at": "2026-05-01T12:00:00.123456+00:00",
    }
    wire = orjson.dumps(n.model_dump(mode="json"))
    assert CampaignNotification.model_validate(orjson.loads(wire)) == n


def test_notification_for_delivery_round_trips():
    n = CampaignNotification(
        id="c1:winners",
        group_id="telegram:-100",
        source="tg-main",
        campaign_id="c1",
        kind="winners",
        text="【开奖】t：@小明（周边）",
        reply_to="m1",
        mentions=["telegram:42"],
        mention_names={"telegram:42": "小明"},
        data={"mention_names": {"telegram:42": "小明"}},
        created_at=AT,
    )
    wire = n.model_dump(mode="json")
    assert (wire["source"], wire["reply_to"], wire["mentions"], wire["mention_names"]) == (
        "tg-main",
        "m1",
        ["telegram:42"],
        {"telegram:42": "小明"},
    )
    assert CampaignNotification.model_validate(orjson.loads(orjson.dumps(wire))) == n


def test_notifications_published_before_mention_names_still_read():
    old = {
        "id": "c1:winners",
        "group_id": "telegram:-100",
        "campaign_id": "c1",
        "kind": "winners",
        "text": "【开奖】t：@小明（周边）",
        "mentions": ["telegram:42"],
        "data": {"mention_names": {"telegram:42": "小明"}},
        "created_at": AT.isoformat(),
    }
    n = CampaignNotification.model_validate_json(orjson.dumps(old))
    assert n.mention_names == {} and n.mentions == ["telegram:42"]


def test_grant_json():
    g = RewardGranted(
        id="g1",
        group_id="g",
        campaign_id="c1",
        member_id="m",
        reason="streak:7",
        points=5,
        badge="周打卡",
        created_at=AT,
    )
    assert g.model_dump(mode="json") == {
        "id": "g1",
        "group_id": "g",
        "campaign_id": "c1",
        "member_id": "m",
        "reason": "streak:7",
        "points": 5,
        "badge": "周打卡",
        "created_at": "2026-05-01T12:00:00.123456+00:00",
    }
