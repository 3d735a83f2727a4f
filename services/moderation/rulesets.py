"""A group's rules and policy, stored in the database (the use cases behind the routes).

Service functions: they add and flush, never commit; the route commits, then
announces the change so every consumer rebuilds the group's rulebook.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, select

from services.common.db import keyset_page, utcnow
from services.common.errors import NotFound
from services.moderation.models import (
    DEFAULT_MUTE_SECONDS,
    Policy,
    PolicyPublic,
    PolicyUpdate,
    Rule,
)
from services.moderation.params import validate_params
from services.moderation.rule_bodies import RuleCreate, RuleUpdate


def list_rules(
    *, session: Session, group_id: str, limit: int, cursor: str | None
) -> tuple[list[Rule], str | None]:
    """Return a page of the group's rules in creation order and the next cursor."""
    query = select(Rule).where(Rule.group_id == group_id)
    return keyset_page(session, query, Rule.id, limit=limit, cursor=cursor)


def get_rule(*, session: Session, group_id: str, rule_id: str) -> Rule:
    """Return the group's rule with this id; raise NotFound."""
    rule = session.get(Rule, rule_id)
    if rule is None or rule.group_id != group_id:
        raise NotFound("rule not found")
    return rule


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
    session.flush()
    return rule


def update_rule(*, session: Session, group_id: str, rule_id: str, rule_in: RuleUpdate) -> Rule:
    """Apply the given fields; raise NotFound, or InvalidParams when the params do not fit."""
    rule = get_rule(session=session, group_id=group_id, rule_id=rule_id)
    changes: dict[str, Any] = rule_in.model_dump(exclude_unset=True)
    for name in ("name", "kind", "action", "mode", "enabled", "params", "delete_message"):
        if name in changes and changes[name] is None:
            del changes[name]
    kind = changes.get("kind", rule.kind)
    changes["params"] = validate_params(kind, changes.get("params", rule.params))
    action = changes.get("action", rule.action)
    changes["mute_seconds"] = _default_mute(action, changes.get("mute_seconds", rule.mute_seconds))
    rule.sqlmodel_update(changes)
    rule.updated_at = utcnow()
    session.add(rule)
    session.flush()
    return rule


def delete_rule(*, session: Session, group_id: str, rule_id: str) -> None:
    """Delete a rule (its past cases keep its id); raise NotFound."""
    session.delete(get_rule(session=session, group_id=group_id, rule_id=rule_id))
    session.flush()


def get_policy(*, session: Session, group_id: str) -> PolicyPublic:
    """Return the group's policy, or the default one."""
    stored = session.get(Policy, group_id)
    if stored is None:
        return PolicyPublic(group_id=group_id)
    return PolicyPublic.model_validate(stored, update={"group_id": group_id})


def put_policy(*, session: Session, group_id: str, policy_in: PolicyUpdate) -> PolicyPublic:
    """Replace the group's policy (every field of PolicyUpdate is a column of Policy)."""
    stored = session.get(Policy, group_id) or Policy(group_id=group_id)
    fields = policy_in.model_dump(mode="json")
    fields["notices"] = policy_in.notices.model_dump(exclude_none=True)
    stored.sqlmodel_update(fields)
    stored.updated_at = utcnow()
    session.add(stored)
    session.flush()
    return PolicyPublic.model_validate(stored, update={"group_id": group_id})
