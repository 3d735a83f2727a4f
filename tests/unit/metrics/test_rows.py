"""What the apply script is given: fingerprints, rows per group, too-old events dropped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from services.common.contracts.events import parse_event
from services.metrics.apply import APPLY_LUA, fingerprint, rows_of_facts, script_row
from services.metrics.bitplan import RUN_LUA
from services.metrics.facts import facts_of
from services.metrics.keys import local_day

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 21, 12, tzinfo=UTC)


def event(n: int, kind: str, group: str, when: datetime):
    data = {"message_id": f"m{n}", "text": "hi"} if kind == "message.created" else {}
    if kind == "member.updated":
        data = {"display_name": "x"}
    return parse_event(
        {
            "id": f"e{n}",
            "source": "src",
            "type": kind,
            "group_id": group,
            "member_id": f"u{n % 3}",
            "occurred_at": when.isoformat(),
            "data": data,
        }
    )


def test_fingerprints_are_stable_signed_64_bit_with_a_16_bit_bucket_hash():
    digest, bucket = fingerprint("src", "e1")
    assert (digest, bucket) == fingerprint("src", "e1")
    assert fingerprint("src", "e2") != (digest, bucket)
    assert fingerprint("other", "e1") != (digest, bucket)
    assert -(2**63) <= int(digest) < 2**63 and 0 <= bucket < 2**16
    assert fingerprint("src", "\udcff")  # lone surrogates from JSON still hash
    row = script_row(kind="m", source="src", event_id="e1", member_id="u", ts_ms=5, day=9)
    assert row == ("m", digest, bucket, "u", "5", 9)


def test_rows_go_per_group_and_too_old_or_metric_less_events_are_counted_apart():
    old = NOW - timedelta(days=40)
    events = [
        event(1, "message.created", "g1", NOW),
        event(2, "member.joined", "g2", NOW),
        event(3, "member.left", "g1", NOW),
        event(4, "member.updated", "g1", NOW),
        event(5, "message.created", "g1", old),
    ]
    per_group, result = rows_of_facts(map(facts_of, events), tz=SHANGHAI, history_days=30, now=NOW)
    assert [row[0] for row in per_group["g1"].rows] == ["m", "l"]
    assert [row[0] for row in per_group["g2"].rows] == ["j"]
    day = local_day(NOW, SHANGHAI)
    ms = int(NOW.timestamp() * 1000)
    assert per_group["g1"].rows[0][3:] == ("u1", str(ms), day, "m1")
    assert per_group["g2"].rows[0][6:] == ("", "")  # no channel, no inviter
    assert per_group["g1"].names == {"u1": (ms, "x")}  # member.updated only renames
    assert result.too_old == 1
    assert dict(result.applied) == {"member.updated": 1}


def test_a_join_channel_comes_from_the_typed_event():
    body = event(2, "member.joined", "g2", NOW).model_dump(mode="json")
    joined = parse_event(body | {"data": {"channel": "渠道A", "invited_by": "u9"}})
    plain = parse_event(body | {"id": "e2b", "data": {"channel": ""}})
    per_group, _ = rows_of_facts(
        map(facts_of, [joined, plain]), tz=SHANGHAI, history_days=30, now=NOW
    )
    assert [row[6:] for row in per_group["g2"].rows] == [("渠道A", "u9"), ("", "")]


def test_the_scripts_read_their_constants_from_argv_not_from_patched_code():
    code = [line for line in APPLY_LUA.splitlines() if not line.lstrip().startswith("--")]
    for name in ("RECORD_BITS", "DEDUP_BUCKET_SIZE"):
        assert not any(name in line for line in code)
    assert "local NEVER_SPOKE_OFFSET = tonumber(ARGV[6])" in code
    assert "SCRATCH_TTL_SECONDS" not in RUN_LUA
