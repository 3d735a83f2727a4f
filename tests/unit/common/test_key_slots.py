"""Key layouts on a Redis Cluster: every key of one multi-key operation hashes to one slot.

The operations: metrics' scripts (lua/apply, overview, run, inviters build every key from
the group's prefix, routed by one of its keys) and the channel mask a query writes;
delivery's pace.lua (a bucket and its pause key); ingest's claim.lua and release.lua (a
source's dedup keys). Moderation's window script takes one key, but its keys share the
group's slot too. The slot is redis-py's own `key_slot` (CRC16 of the hash tag, mod 16384).
"""

from __future__ import annotations

import pytest
from redis.crc import key_slot

from services.common.redis_client import hash_tag
from services.delivery.pacing import group_keys, source_keys
from services.ingest.dedup import dedup_key
from services.metrics.keys import GROUP_INDEX, GroupKeys
from services.moderation.tracking import key as moderation_key
from services.moderation.tracking import version_key

# Platform-shaped ids, and ones that would break a naive `{id}` tag: an empty tag (`}` first),
# a tag cut short (`}` inside), a nested brace, the escape character itself.
GROUP_IDS = [
    "telegram:-1001234567890",
    "slack:T0123:C0456",
    "feishu:oc_5ad11d72b830411d72b836c20",
    "wecom:wrOgQhDgAAcwMTB7YmDkbeBsgT_KAAAA",
    "群:运营-上海",
    "}starts-with-a-brace",
    "a}b{c",
    "{whole}",
    "{}",
    "100%{x}",
]
SOURCES = ["generic-test", "tg", "slack.main_2"]


def slots(keys: list[str]) -> set[int]:
    return {key_slot(k.encode()) for k in keys}


def test_a_hash_tag_is_the_whole_value_whatever_it_holds():
    for value in GROUP_IDS:
        tag = hash_tag(value)
        assert tag.count("{") == 1 and tag.count("}") == 1 and len(tag) > 2, tag
        assert len(slots([f"a:{tag}", f"b:{tag}:c", f"{tag}:d{{e}}"])) == 1
    # Different values are different tags (the escape is reversible), so different slots are
    # possible: a group is not pinned to the slot of some other group.
    tags = {hash_tag(v) for v in GROUP_IDS}
    assert len(tags) == len(GROUP_IDS)
    assert len({key_slot(t.encode()) for t in tags}) > 1


@pytest.mark.parametrize("group_id", GROUP_IDS)
def test_every_metrics_key_of_a_group_is_in_its_scripts_slot(group_id):
    keys = GroupKeys(group_id)
    named = [
        keys.ids, keys.names, keys.seq, keys.members, keys.recent, keys.quiet, keys.joins,
        keys.channels, keys.display, keys.deleted, keys.removed,
        *[f(20_000) for f in (keys.day, keys.active, keys.counts, keys.cohort, keys.first_seen,
                              keys.channel_counts, keys.inviter_counts, keys.minutes)],
        keys.temp("channel:1f3a"), keys.temp("overview"),
    ]  # fmt: skip
    # The scripts get the prefix as an argument and build the rest as prefix .. suffix.
    built = [keys.prefix + suffix for suffix in ("d:20000", "tmp:inviters", "x}{y", "}", "{")]
    assert slots(named + built) == {key_slot(keys.ids.encode())}
    assert key_slot(keys.names.encode()) == key_slot(keys.ids.encode())  # inviters' KEYS[1]


def test_the_group_index_is_the_one_metrics_key_outside_a_group():
    # It is only ever written and read on its own (a pipeline command of its own slot).
    assert "{" not in GROUP_INDEX


@pytest.mark.parametrize("group_id", GROUP_IDS)
def test_a_pacing_call_keeps_its_bucket_and_pause_in_one_slot(group_id):
    for source in SOURCES:
        assert len(slots(list(group_keys(source, group_id)))) == 1
        assert len(slots(list(source_keys(source)))) == 1
    # Every source of the group paces in the group's slot (one node holds a group's limits).
    assert len(slots([group_keys(source, group_id)[0] for source in SOURCES])) == 1


def test_a_source_dedup_round_stays_in_one_slot():
    for source in SOURCES:
        event_ids = ["e-1", "{e-2}", "}", "消息-3", "a" * 200]
        assert len(slots([dedup_key(source, event_id) for event_id in event_ids])) == 1


@pytest.mark.parametrize("group_id", GROUP_IDS)
def test_moderation_keys_of_a_group_share_its_slot(group_id):
    keys = [
        version_key(group_id),
        moderation_key(group_id, "joined"),
        moderation_key(group_id, "names"),
        moderation_key(group_id, "flood", "rule-1", "member}{"),
        moderation_key(group_id, "dup", "rule-2", "member", "0a1b2c"),
    ]
    assert len(slots(keys)) == 1
