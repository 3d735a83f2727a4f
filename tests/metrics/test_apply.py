"""The apply script on the session Redis: dedup, ordering, expiry and rolling windows."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.common.redis_client import make_redis
from services.metrics import queries
from services.metrics.apply import Applier
from services.metrics.keys import GroupKeys, day_number, today
from tests.metrics.helpers import SHANGHAI, event, local


@pytest.fixture
def client(redis_url, redis_cluster):
    redis = make_redis(redis_url, cluster=redis_cluster)
    yield redis
    redis.close()


@pytest.fixture
def applier(client):
    return Applier(client, tz=SHANGHAI, history_days=400)


def group_keys(client, group: str) -> list[bytes]:
    return list(client.scan_iter(match=GroupKeys(group).prefix + "*", count=1000))


def test_duplicates_in_one_batch_and_across_batches_apply_once(client, applier, unique):
    group = unique("metrics:dups")
    now = datetime.now(UTC)
    msg = event("message.created", group, "m1", now)
    join = event("member.joined", group, "m1", now - timedelta(hours=1))
    first = applier.apply([join, msg, msg, join])
    assert first.applied["message.created"] == 1 and first.applied["member.joined"] == 1
    assert first.duplicates == 2
    again = applier.apply([msg, join])
    assert again.duplicates == 2 and sum(again.applied.values()) == 0
    member = queries.read_member(client, group_id=group, member_id="m1")
    assert member is not None and member.messages == 1 and member.active_days == 1
    # Same id from another source is another event.
    other = msg.model_copy(update={"source": "another-source"})
    assert applier.apply([other]).applied["message.created"] == 1


def test_earlier_join_arriving_late_moves_the_member_to_its_cohort(client, applier, unique):
    group = unique("metrics:cohort")
    day = datetime.now(SHANGHAI).date() - timedelta(days=10)
    late = event("member.joined", group, "m1", local(day + timedelta(days=3), "12:00"))
    early = event("member.joined", group, "m1", local(day, "12:00"))
    applier.apply([late])
    applier.apply([early])
    keys = GroupKeys(group)
    assert client.bitcount(keys.cohort(day_number(day))) == 1
    assert client.bitcount(keys.cohort(day_number(day) + 3)) == 0
    member = queries.read_member(client, group_id=group, member_id="m1")
    assert member is not None and member.joined_at == local(day, "12:00")


def test_leave_before_a_later_join_keeps_the_member_present(client, applier, unique):
    group = unique("metrics:rejoin")
    day = datetime.now(SHANGHAI).date() - timedelta(days=5)
    rejoin = event("member.joined", group, "m1", local(day, "18:00"))
    leave = event("member.left", group, "m1", local(day, "09:00"))
    applier.apply([rejoin, leave])
    member = queries.read_member(client, group_id=group, member_id="m1")
    assert member is not None and member.left_at is None


def test_every_key_expires_and_events_older_than_history_are_ignored(client, unique):
    group = unique("metrics:ttl")
    applier = Applier(client, tz=ZoneInfo("UTC"), history_days=31)
    now = datetime.now(UTC)
    events = [
        event("member.joined", group, "m1", now - timedelta(days=2)),
        event("message.created", group, "m1", now),
        event("member.left", group, "m2", now),
    ]
    too_old = event("message.created", group, "m1", now - timedelta(days=31))
    result = applier.apply([*events, too_old])
    assert result.too_old == 1 and sum(result.applied.values()) == 3
    keys = group_keys(client, group)
    assert keys
    horizon = (31 + 2) * 86400
    for key in keys:
        ttl = client.ttl(key)
        assert 0 < ttl <= horizon, (key, ttl)
    assert client.hget(GroupKeys(group).day(today(ZoneInfo("UTC")) - 31), "m") is None


def test_rolling_windows_count_minutes_and_members(client, applier, unique):
    group = unique("metrics:rolling")
    now = datetime.now(UTC)
    applier.apply(
        [
            event("message.created", group, "x", now - timedelta(seconds=60)),
            event("message.created", group, "y", now - timedelta(seconds=90)),
            event("message.created", group, "z", now - timedelta(minutes=30)),
            event("message.created", group, "x", now - timedelta(hours=3)),
            event("message.created", group, "w", now - timedelta(hours=30)),
        ]
    )
    now_ms = int(time.time() * 1000)

    def window(w):
        r = queries.read_rolling(client, group_id=group, window=w, now_ms=now_ms)
        return r.messages, r.active_members

    assert window("5m") == (2, 2)
    assert window("1h") == (3, 3)
    assert window("24h") == (4, 3)


def test_dedup_sets_grow_levels_and_still_find_every_event(client, applier, unique):
    group = unique("metrics:levels")
    at = datetime.now(UTC) - timedelta(days=1)
    events = [event("message.created", group, f"m{n % 50}", at) for n in range(1500)]
    first = applier.apply(events)
    assert first.applied["message.created"] == 1500 and first.duplicates == 0
    keys = GroupKeys(group)
    day = day_number(at.astimezone(SHANGHAI).date())
    assert int(client.hget(keys.day(day), "dl")) >= 1  # level 0 is one set of 512
    assert client.scard(f"{keys.prefix}dd:{day}:0:0") == 512
    dedup = list(client.scan_iter(match=keys.prefix + "dd:*", count=1000))
    sizes = [client.scard(k) for k in dedup]
    assert sum(sizes) == 1500 and max(sizes) <= 512
    assert {client.object("encoding", k) for k in dedup} == {b"intset"}  # 8 bytes an event
    again = applier.apply(list(reversed(events)))
    assert again.duplicates == 1500 and sum(again.applied.values()) == 0
    assert int(client.hget(keys.day(day), "m")) == 1500


def test_dormant_pages_cover_every_member_once_even_with_tied_times(client, applier, unique):
    group = unique("metrics:pages")
    joined = datetime.now(UTC).replace(microsecond=0) - timedelta(days=20)
    spoke = joined + timedelta(days=1)
    # m00..m11 join at the same instant (dense ids 1..12); m06..m11 speak at the same instant.
    members = [f"m{n:02d}" for n in range(12)]
    applier.apply([event("member.joined", group, m, joined) for m in members])
    applier.apply([event("message.created", group, m, spoke) for m in members[6:]])
    applier.apply([event("member.left", group, "m03", spoke)])
    seen, cursor = [], None
    while True:
        page = queries.read_dormant(
            client, group_id=group, silent_since_ms=int(time.time() * 1000), limit=2, cursor=cursor
        )
        seen += [m.member_id for m in page.members]
        if page.next_cursor is None:
            break
        cursor = queries.decode_cursor(page.next_cursor)
    # Never-spoke first; ties keep Redis' order of the dense ids as strings ("10" < "7").
    assert seen == ["m00", "m01", "m02", "m04", "m05", "m09", "m10", "m11", "m06", "m07", "m08"]
    nobody = queries.read_dormant(
        client, group_id=group, silent_since_ms=int(spoke.timestamp() * 1000), limit=50, cursor=None
    )
    assert [m.member_id for m in nobody.members] == ["m00", "m01", "m02", "m04", "m05"]
