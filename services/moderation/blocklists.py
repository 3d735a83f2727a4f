"""Shared blocklists (like Matrix policy lists): lists, their entries, who subscribes.

A group subscribes in its policy (`blocklists: [name]`); `share_bans_to: name` adds every
ban of the group to that list (`share_bans`, called wherever actions are queued). Entries
start with `propagated_at` null; propagating one (gatekeeping.py) bans the member in every
subscribed group they are in. Service functions: they add and flush, never commit.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from services.common.db import keyset_page, utcnow
from services.common.errors import Conflict, NotFound
from services.moderation.membership_models import (
    Blocklist,
    BlocklistEntry,
    EntryCreate,
)
from services.moderation.models import CaseAction, Policy, PolicyUpdate
from services.moderation.params import InvalidParams


def create_list(*, session: Session, name: str, by: str) -> Blocklist:
    """Add an empty list; Conflict when the name is taken."""
    if session.get(Blocklist, name) is not None:
        raise Conflict(f"blocklist {name!r} exists")
    blocklist = Blocklist(name=name, created_by=by[:200])
    session.add(blocklist)
    session.flush()
    return blocklist


def get_list(*, session: Session, name: str) -> Blocklist:
    """Return the list; NotFound for an unknown name."""
    found = session.get(Blocklist, name)
    if found is None:
        raise NotFound(f"blocklist {name!r} not found")
    return found


def list_lists(
    *, session: Session, limit: int, cursor: str | None
) -> tuple[list[Blocklist], str | None]:
    """A page of the lists by name."""
    return keyset_page(session, select(Blocklist), Blocklist.name, limit=limit, cursor=cursor)


def list_entries(
    *, session: Session, name: str, limit: int, cursor: str | None
) -> tuple[list[BlocklistEntry], str | None]:
    """A page of the list's entries by member id; NotFound for an unknown list."""
    get_list(session=session, name=name)
    query = select(BlocklistEntry).where(col(BlocklistEntry.list_name) == name)
    return keyset_page(session, query, BlocklistEntry.member_id, limit=limit, cursor=cursor)


def add_entry(*, session: Session, name: str, entry_in: EntryCreate, by: str) -> BlocklistEntry:
    """List the member (not yet propagated); NotFound for the list, Conflict if listed."""
    get_list(session=session, name=name)
    if session.get(BlocklistEntry, (name, entry_in.member_id)) is not None:
        raise Conflict(f"member is already on blocklist {name!r}")
    entry = BlocklistEntry(
        list_name=name, member_id=entry_in.member_id, reason=entry_in.reason, added_by=by[:200]
    )
    session.add(entry)
    session.flush()
    return entry


def remove_entry(*, session: Session, name: str, member_id: str) -> None:
    """Take the member off the list (their bans stay); NotFound for the list or the entry."""
    get_list(session=session, name=name)
    entry = session.get(BlocklistEntry, (name, member_id))
    if entry is None:
        raise NotFound("member is not on this blocklist")
    session.delete(entry)
    session.flush()


def check_subscriptions(*, session: Session, policy_in: PolicyUpdate) -> None:
    """Raise InvalidParams naming each list the policy names that does not exist."""
    named: list[tuple[str, int | None, str]] = [
        ("blocklists", i, n) for i, n in enumerate(policy_in.blocklists)
    ]
    if policy_in.share_bans_to is not None:
        named.append(("share_bans_to", None, policy_in.share_bans_to))
    if not named:
        return
    known = set(
        session.exec(
            select(Blocklist.name).where(col(Blocklist.name).in_({n for *_, n in named}))
        ).all()
    )
    errors: list[dict[str, Any]] = [
        {
            "loc": ["body", field, *([] if index is None else [index])],
            "msg": f"unknown blocklist {name!r}",
            "type": "unknown_blocklist",
        }
        for field, index, name in named
        if name not in known
    ]
    if errors:
        raise InvalidParams(errors)


def subscribers(session: Session, list_names: Iterable[str]) -> dict[str, list[str]]:
    """Each group subscribed to any of the lists, with the lists it subscribes to among them."""
    wanted = set(list_names)
    found: dict[str, list[str]] = {}
    query = select(Policy.group_id, Policy.blocklists)
    for group_id, subscribed in session.exec(query):
        lists = [name for name in subscribed or [] if name in wanted]
        if lists:
            found[group_id] = lists
    return found


def listings(
    session: Session, list_names: Iterable[str], member_ids: Iterable[str]
) -> dict[tuple[str, str], BlocklistEntry]:
    """The entries of these members on these lists, by (list, member)."""
    lists, members = sorted(set(list_names)), sorted(set(member_ids))
    if not lists or not members:
        return {}
    query = select(BlocklistEntry).where(
        col(BlocklistEntry.list_name).in_(lists), col(BlocklistEntry.member_id).in_(members)
    )
    return {(e.list_name, e.member_id): e for e in session.exec(query)}


def listed_on(
    found: dict[tuple[str, str], BlocklistEntry], lists: Iterable[str], member_id: str
) -> BlocklistEntry | None:
    """The member's entry on the first of `lists` that has one (pure)."""
    return next((found[(n, member_id)] for n in lists if (n, member_id) in found), None)


def share_bans(session: Session, actions: Sequence[CaseAction]) -> None:
    """Add each ban of a group whose policy has `share_bans_to` to that list (once per member);
    the timer loop propagates the new entries to the list's other subscribers."""
    for action in actions:
        if action.action != "ban":
            continue
        policy = session.get(Policy, action.group_id)
        name = policy.share_bans_to if policy is not None else None
        if name is None or session.get(Blocklist, name) is None:
            continue
        if session.get(BlocklistEntry, (name, action.member_id)) is not None:
            continue
        session.add(
            BlocklistEntry(
                list_name=name,
                member_id=action.member_id,
                reason=action.reason,
                added_by=f"share:{action.group_id}"[:200],
                origin_group_id=action.group_id,
            )
        )
        session.flush()  # a second ban of the member in this batch finds the entry


def claim_entry(*, session: Session, name: str, member_id: str) -> bool:
    """Mark the entry propagated; False when another process did (or it is gone)."""
    result = session.execute(
        sa.update(BlocklistEntry)
        .where(
            col(BlocklistEntry.list_name) == name,
            col(BlocklistEntry.member_id) == member_id,
            col(BlocklistEntry.propagated_at).is_(None),
        )
        .values(propagated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1  # type: ignore[attr-defined, no-any-return]


def unpropagated(session: Session, limit: int) -> list[tuple[str, str]]:
    """(list, member) of entries not yet propagated, oldest first."""
    query = (
        select(BlocklistEntry.list_name, BlocklistEntry.member_id)
        .where(col(BlocklistEntry.propagated_at).is_(None))
        .order_by(col(BlocklistEntry.created_at))
        .limit(limit)
    )
    return [(name, member) for name, member in session.exec(query)]
