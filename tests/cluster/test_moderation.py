"""The moderation suite's Redis-heavy tests, on the cluster: the consumer's one pipeline per
poll (window.lua for flood and duplicate rules, join times, display names, rule-set
versions of every group of the batch), another replica's rule change announced through
Redis, and a batch handled twice after a crash (the flood window counts each event once)."""

from tests.moderation.conftest import migrated  # noqa: F401
from tests.moderation.test_flow import (  # noqa: F401
    test_handler_replay_after_a_crash_adds_nothing,
    test_stateful_rules_and_rule_changes_from_another_replica,
)
