"""Each group's compiled Rulebook, cached per process and rebuilt when its rules change.

Every write bumps the group's version number in Redis; consumers compare the
versions of the groups in their batch once per poll and rebuild stale rulebooks, so a
change made through any replica reaches every consumer within a poll. A cached
rulebook is also rebuilt after MAX_AGE_SECONDS in case a bump was lost (Redis down).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable

import redis
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from services.moderation.models import PolicyPublic, Rule
from services.moderation.rulebook import Rulebook
from services.moderation.rulesets import get_policy
from services.moderation.specs import PolicySpec, RuleSpec, Step
from services.moderation.tracking import version_key

log = logging.getLogger(__name__)

MAX_AGE_SECONDS = 30.0
MAX_CACHED_GROUPS = 10_000


def policy_spec(policy: PolicyPublic) -> PolicySpec:
    """Return the rulebook's view of a policy."""
    return PolicySpec(
        strike_window_days=policy.strike_window_days,
        ladder=tuple(Step(s.strikes, s.action, s.mute_seconds) for s in policy.ladder),
        exempt_members=frozenset(policy.exempt_members),
        notices=policy.notices.model_dump(),
        reports=policy.reports,
    )


def rule_spec(rule: Rule) -> RuleSpec:
    """Return the rulebook's view of a stored rule."""
    return RuleSpec.of(
        id=rule.id,
        name=rule.name,
        kind=rule.kind,
        params=rule.params,
        action=rule.action,
        mute_seconds=rule.mute_seconds,
        mode=rule.mode,
        delete_message=rule.delete_message,
    )


def load_rulebooks(*, session: Session, group_ids: Iterable[str]) -> dict[str, Rulebook]:
    """Compile the enabled rules and the policy of each group."""
    groups = sorted(set(group_ids))
    rules: dict[str, list[RuleSpec]] = {g: [] for g in groups}
    query = (
        select(Rule)
        .where(col(Rule.group_id).in_(groups), col(Rule.enabled).is_(True))
        .order_by(col(Rule.id))
    )
    for rule in session.exec(query):
        try:
            rules[rule.group_id].append(rule_spec(rule))
        except ValueError:
            # One unreadable stored rule must not stop the group's other rules.
            log.exception("rule %s of a group cannot be compiled; skipped", rule.id)
    return {
        g: Rulebook(rules[g], policy_spec(get_policy(session=session, group_id=g))) for g in groups
    }


def announce_change(*, client: redis.Redis, group_id: str) -> None:
    """Bump the group's rule-set version so every consumer rebuilds its rulebook."""
    try:
        client.incr(version_key(group_id))
    except redis.RedisError:
        log.warning(
            "could not bump the rule version of a group; consumers refresh within %ss",
            MAX_AGE_SECONDS,
        )


class RulebookCache:
    """Compiled rulebooks per group, rebuilt when the group's version in Redis moved."""

    def __init__(self, *, db: Engine, client: redis.Redis, max_age: float = MAX_AGE_SECONDS):
        self._db = db
        self._redis = client
        self._max_age = max_age
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, tuple[bytes | None, float, Rulebook]] = OrderedDict()

    def rulebooks_for(self, group_ids: Iterable[str]) -> dict[str, Rulebook]:
        """Return the current rulebook of each group (one Redis round trip, DB only when stale)."""
        groups = sorted(set(group_ids))
        pipe = self._redis.pipeline(transaction=False)
        for group in groups:
            pipe.get(version_key(group))
        versions = dict(zip(groups, pipe.execute(), strict=True))
        now = time.monotonic()
        found: dict[str, Rulebook] = {}
        with self._lock:
            for group in groups:
                cached = self._cache.get(group)
                if cached and cached[0] == versions[group] and now - cached[1] < self._max_age:
                    found[group] = cached[2]
        stale = [g for g in groups if g not in found]
        if stale:
            with Session(self._db) as session:
                built = load_rulebooks(session=session, group_ids=stale)
            with self._lock:
                for group, rulebook in built.items():
                    self._cache[group] = (versions[group], now, rulebook)
                    self._cache.move_to_end(group)
                while len(self._cache) > MAX_CACHED_GROUPS:
                    self._cache.popitem(last=False)
            found.update(built)
        return found

    def invalidate(self, group_id: str) -> None:
        """Forget the group's rulebook (a write in this process)."""
        with self._lock:
            self._cache.pop(group_id, None)
