"""A group's rules and policy: stored in the database, compiled into cached RuleEngines.

Every write bumps the group's version number in Redis; consumers compare the
versions of the groups in their batch once per poll and rebuild stale engines, so a
change made through any replica reaches every consumer within a poll. A cached
engine is also rebuilt after MAX_AGE_SECONDS in case a bump was lost (Redis down).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import redis
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from services.moderation.engine import PolicySpec, RuleEngine, RuleSpec, Step
from services.moderation.models import (
    DEFAULT_MUTE_SECONDS,
    Policy,
    PolicyPublic,
    PolicyUpdate,
    Rule,
    RuleCreate,
    RuleUpdate,
)
from services.moderation.params import validate_params
from services.moderation.tracking import version_key

log = logging.getLogger(__name__)

MAX_AGE_SECONDS = 30.0
MAX_CACHED_GROUPS = 10_000


def list_rules(
    *, session: Session, group_id: str, limit: int, cursor: str | None
) -> tuple[list[Rule], str | None]:
    """Return a page of the group's rules in creation order and the next cursor."""
    query = select(Rule).where(Rule.group_id == group_id)
    if cursor:
        query = query.where(col(Rule.id) > cursor)
    rules = list(session.exec(query.order_by(col(Rule.id)).limit(limit + 1)).all())
    more = len(rules) > limit
    return rules[:limit], rules[limit - 1].id if more else None


def get_rule(*, session: Session, group_id: str, rule_id: str) -> Rule | None:
    """Return the group's rule with this id, or None."""
    rule = session.get(Rule, rule_id)
    return rule if rule is not None and rule.group_id == group_id else None


def _default_mute(action: str, mute_seconds: int | None) -> int | None:
    return DEFAULT_MUTE_SECONDS if action == "mute" and mute_seconds is None else mute_seconds


def create_rule(*, session: Session, group_id: str, rule_in: RuleCreate) -> Rule:
    """Store a new rule; raise InvalidParams when its params do not fit its kind."""
    params = validate_params(rule_in.kind, rule_in.params)
    rule = Rule.model_validate(
        rule_in,
        update={
            "group_id": group_id,
            "params": params,
            "mute_seconds": _default_mute(rule_in.action, rule_in.mute_seconds),
        },
    )
    session.add(rule)
    session.commit()
    session.refresh(rule)
    return rule


def update_rule(*, session: Session, rule: Rule, rule_in: RuleUpdate) -> Rule:
    """Apply the given fields; raise InvalidParams when the params no longer fit the kind."""
    changes: dict[str, Any] = rule_in.model_dump(exclude_unset=True)
    for name in ("name", "kind", "action", "mode", "enabled", "params"):
        if name in changes and changes[name] is None:
            del changes[name]
    kind = changes.get("kind", rule.kind)
    changes["params"] = validate_params(kind, changes.get("params", rule.params))
    action = changes.get("action", rule.action)
    changes["mute_seconds"] = _default_mute(action, changes.get("mute_seconds", rule.mute_seconds))
    rule.sqlmodel_update(changes)
    rule.updated_at = datetime.now(UTC)
    session.add(rule)
    session.commit()
    session.refresh(rule)
    return rule


def delete_rule(*, session: Session, rule: Rule) -> None:
    """Delete a rule (its past cases keep its id)."""
    session.delete(rule)
    session.commit()


def get_policy(*, session: Session, group_id: str) -> PolicyPublic:
    """Return the group's policy, or the default one."""
    stored = session.get(Policy, group_id)
    if stored is None:
        return PolicyPublic(group_id=group_id)
    return PolicyPublic.model_validate(stored, update={"group_id": group_id})


def put_policy(*, session: Session, group_id: str, policy_in: PolicyUpdate) -> PolicyPublic:
    """Replace the group's policy."""
    stored = session.get(Policy, group_id) or Policy(group_id=group_id)
    stored.strike_window_days = policy_in.strike_window_days
    stored.ladder = [step.model_dump() for step in policy_in.ladder]
    stored.exempt_members = list(policy_in.exempt_members)
    stored.updated_at = datetime.now(UTC)
    session.add(stored)
    session.commit()
    return get_policy(session=session, group_id=group_id)


def policy_spec(policy: PolicyPublic) -> PolicySpec:
    """Return the engine's view of a policy."""
    return PolicySpec(
        strike_window_days=policy.strike_window_days,
        ladder=tuple(Step(s.strikes, s.action, s.mute_seconds) for s in policy.ladder),
        exempt_members=frozenset(policy.exempt_members),
    )


def rule_spec(rule: Rule) -> RuleSpec:
    """Return the engine's view of a stored rule."""
    return RuleSpec.of(
        id=rule.id,
        name=rule.name,
        kind=rule.kind,
        params=rule.params,
        action=rule.action,
        mute_seconds=rule.mute_seconds,
        mode=rule.mode,
    )


def load_engines(*, session: Session, group_ids: Iterable[str]) -> dict[str, RuleEngine]:
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
        g: RuleEngine(rules[g], policy_spec(get_policy(session=session, group_id=g)))
        for g in groups
    }


def announce_change(*, client: redis.Redis, group_id: str) -> None:
    """Bump the group's rule-set version so every consumer rebuilds its engine."""
    try:
        client.incr(version_key(group_id))
    except redis.RedisError:
        log.warning(
            "could not bump the rule version of a group; consumers refresh within %ss",
            MAX_AGE_SECONDS,
        )


class EngineCache:
    """Compiled engines per group, rebuilt when the group's version in Redis moved."""

    def __init__(self, *, db: Engine, client: redis.Redis, max_age: float = MAX_AGE_SECONDS):
        self._db = db
        self._redis = client
        self._max_age = max_age
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, tuple[bytes | None, float, RuleEngine]] = OrderedDict()

    def engines_for(self, group_ids: Iterable[str]) -> dict[str, RuleEngine]:
        """Return the current engine of each group (one Redis round trip, DB only when stale)."""
        groups = sorted(set(group_ids))
        pipe = self._redis.pipeline(transaction=False)
        for group in groups:
            pipe.get(version_key(group))
        versions = dict(zip(groups, pipe.execute(), strict=True))
        now = time.monotonic()
        found: dict[str, RuleEngine] = {}
        with self._lock:
            for group in groups:
                cached = self._cache.get(group)
                if cached and cached[0] == versions[group] and now - cached[1] < self._max_age:
                    found[group] = cached[2]
        stale = [g for g in groups if g not in found]
        if stale:
            with Session(self._db) as session:
                built = load_engines(session=session, group_ids=stale)
            with self._lock:
                for group, engine in built.items():
                    self._cache[group] = (versions[group], now, engine)
                    self._cache.move_to_end(group)
                while len(self._cache) > MAX_CACHED_GROUPS:
                    self._cache.popitem(last=False)
            found.update(built)
        return found

    def invalidate(self, group_id: str) -> None:
        """Forget the group's engine (a write in this process)."""
        with self._lock:
            self._cache.pop(group_id, None)
