"""The moderation.actions.v1 record: typed, frozen, and the JSON the topic has always had."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest
from pydantic import ValidationError

from services.common.contracts.actions import ModerationAction

FIELDS = {
    "id": "case_0193a0b1c2d3e4f5a6b7c8d9",
    "case_id": "case_0193a0b1c2d3e4f5a6b7c8d9",
    "group_id": "slack:T01:C02",
    "member_id": "slack:U03",
    "event_id": "evt-1",
    "message_id": "msg-1",
    "action": "mute",
    "duration_seconds": 600,
    "rule_id": "rule_0193a0b1c2d3e4f5a6b7c8d9",
    "reason": "keywords: 加微信",
}


# The fields added with delivery, in the order the contract lists them.
ORDER = [
    "id",
    "case_id",
    "group_id",
    "source",
    "member_id",
    "event_id",
    "message_id",
    "action",
    "duration_seconds",
    "rule_id",
    "reason",
    "text",
    "mentions",
    "mention_names",
    "request_ref",
    "message_at",
    "created_at",
]


def test_json_keeps_field_order_and_an_isoformat_timestamp() -> None:
    created = datetime(2026, 11, 21, 8, 0, 0, 123456, tzinfo=UTC)
    record = ModerationAction(**FIELDS, created_at=created)
    expected = {
        **FIELDS,
        "source": None,
        "text": None,
        "mentions": [],
        "mention_names": {},
        "request_ref": None,
        "message_at": None,
        "created_at": "2026-11-21T08:00:00.123456+00:00",
    }
    assert orjson.loads(orjson.dumps(record.model_dump(mode="json"))) == expected
    assert list(record.model_dump(mode="json")) == ORDER


def test_records_published_before_the_delivery_fields_still_read() -> None:
    old = orjson.dumps({**FIELDS, "created_at": "2026-11-21T08:00:00+00:00"})
    record = ModerationAction.model_validate_json(old)
    assert record.source is None and record.text is None and record.mentions == []
    assert record.mention_names == {}
    assert record.request_ref is None and record.message_at is None


def test_notice_source_and_join_fields_round_trip() -> None:
    shanghai = timezone(timedelta(hours=8))
    record = ModerationAction(
        **{**FIELDS, "action": "approve_join", "duration_seconds": None},
        source="telegram-main",
        text="@小明 违反群规：广告（第 2 次）",
        mentions=["slack:U03"],
        mention_names={"slack:U03": "小明"},
        request_ref="req-7",
        message_at=datetime(2026, 11, 21, 16, 0, tzinfo=shanghai),
        created_at=datetime(2026, 11, 21, 8, 0, 1, tzinfo=UTC),
    )
    dumped = record.model_dump(mode="json")
    assert dumped["message_at"] == "2026-11-21T08:00:00+00:00"
    assert dumped["mention_names"] == {"slack:U03": "小明"}
    assert ModerationAction.model_validate_json(orjson.dumps(dumped)) == record
    assert ModerationAction(**{**FIELDS, "action": "decline_join"}, created_at=created()).action


def created() -> datetime:
    return datetime.now(UTC)


def test_other_offsets_are_written_in_utc_and_naive_times_refused() -> None:
    shanghai = timezone(timedelta(hours=8))
    record = ModerationAction(**FIELDS, created_at=datetime(2026, 1, 1, 16, 0, tzinfo=shanghai))
    assert record.model_dump(mode="json")["created_at"] == "2026-01-01T08:00:00+00:00"
    with pytest.raises(ValidationError):
        ModerationAction(**FIELDS, created_at=datetime(2026, 1, 1))


def test_unknown_actions_are_refused_and_records_are_frozen() -> None:
    with pytest.raises(ValidationError):
        ModerationAction(**{**FIELDS, "action": "shout"}, created_at=datetime.now(UTC))
    record = ModerationAction(**FIELDS, created_at=datetime.now(UTC))
    with pytest.raises(ValidationError):
        record.action = "ban"  # type: ignore[misc]
