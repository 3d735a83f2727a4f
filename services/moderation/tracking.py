"""What moderation remembers per member in Redis: sliding windows, join times, names.

Keys carry the group id as a hash tag (`qy:{group}:mod:…`) so a group's keys share a
Redis Cluster slot. One pipeline per poll does every read and write of the batch.
Windows are sorted sets of event ids scored by `occurred_at`, so a redelivered event
is added once and counted once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib.resources import files
from typing import Any

import redis

from services.common.contracts.events import (
    Event,
    MemberJoined,
    MemberLeft,
    MemberUpdated,
    MessageCreated,
)
from services.common.text import Text
from services.moderation.rulebook import Rulebook
from services.moderation.specs import Context, RuleSpec, Subject

# Count the window ending at this event, after adding it (see lua/window.lua).
_WINDOW_LUA = (files("services.moderation") / "lua" / "window.lua").read_text(encoding="utf-8")


def key(group_id: str, *parts: str) -> str:
    """Return a moderation key of the group: qy:{group}:mod:part:…"""
    return ":".join((f"qy:{{{group_id}}}:mod", *parts))


def version_key(group_id: str) -> str:
    return key(group_id, "version")


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _from_ms(raw: Any) -> datetime | None:
    return datetime.fromtimestamp(int(raw) / 1000, UTC) if raw is not None else None


def _window_key(rule: RuleSpec, group_id: str, member_id: str, text: str) -> str | None:
    if rule.kind == "flood":
        return key(group_id, "flood", rule.id, member_id)
    folded = Text(text).folded if text else ""
    if not folded:
        return None
    digest = hashlib.blake2b(folded.encode(), digest_size=12).hexdigest()
    return key(group_id, "dup", rule.id, member_id, digest)


class Tracker:
    """Prepare the Context of each event of a batch in one Redis round trip."""

    def __init__(self, client: redis.Redis) -> None:
        self._redis = client
        self._window = client.register_script(_WINDOW_LUA)

    def prepare(
        self, items: Sequence[tuple[Event, Rulebook]]
    ) -> list[tuple[Subject, Context] | None]:
        """Record joins, renames and window entries; return each event's subject and context."""
        pipe = self._redis.pipeline(transaction=False)
        wanted_joins: dict[str, set[str]] = {}
        wanted_names: dict[str, set[str]] = {}
        windows: list[tuple[int, int, str]] = []  # (pipeline position, item index, rule id)
        for index, (event, rulebook) in enumerate(items):
            group, member = event.group_id, event.member_id
            if isinstance(event, MemberJoined):
                pipe.hset(key(group, "joined"), member, _ms(event.occurred_at))
            elif isinstance(event, MemberLeft):
                pipe.hdel(key(group, "joined"), member)
                pipe.hdel(key(group, "names"), member)
            if isinstance(event, MemberJoined | MemberUpdated) and event.data.display_name:
                pipe.hset(key(group, "names"), member, event.data.display_name)
            if not isinstance(event, MessageCreated) or rulebook.is_exempt(member):
                continue
            if rulebook.needs_join_times:
                wanted_joins.setdefault(group, set()).add(member)
            if rulebook.checks_names and event.data.display_name is not None:
                wanted_names.setdefault(group, set()).add(member)
                pipe.hset(key(group, "names"), member, event.data.display_name)
            for rule in (*rulebook.flood_rules, *rulebook.duplicate_rules):
                window_key = _window_key(rule, group, member, event.data.text)
                if window_key is not None:
                    windows.append((len(pipe), index, rule.id))
                    self._window(
                        keys=[window_key],
                        args=[_ms(event.occurred_at), event.dedup_key, rule.params.seconds * 1000],
                        client=pipe,
                    )
        reads: list[tuple[str, str, list[str]]] = []
        for group, wanted in wanted_joins.items():
            reads.append(("joined", group, sorted(wanted)))
        for group, wanted in wanted_names.items():
            reads.append(("names", group, sorted(wanted)))
        # Reads go last in the pipeline but only stand in for state before the batch:
        # the in-batch overlay below replays the batch's own joins and renames in order.
        head = len(pipe)
        for what, group, names in reads:
            pipe.hmget(key(group, what), names)
        results = pipe.execute() if len(pipe) else []
        return self._contexts(items, results, head, reads, windows)

    def _contexts(
        self,
        items: Sequence[tuple[Event, Rulebook]],
        results: list[Any],
        head: int,
        reads: list[tuple[str, str, list[str]]],
        windows: list[tuple[int, int, str]],
    ) -> list[tuple[Subject, Context] | None]:
        known: dict[tuple[str, str, str], Any] = {}
        for (what, group, members), values in zip(reads, results[head:], strict=True):
            for member, value in zip(members, values, strict=True):
                known[(what, group, member)] = value
        counts: dict[int, dict[str, int]] = {}
        for position, index, rule_id in windows:
            counts.setdefault(index, {})[rule_id] = int(results[position])
        prepared: list[tuple[Subject, Context] | None] = []
        for index, (event, _rulebook) in enumerate(items):
            group, member = event.group_id, event.member_id
            if isinstance(event, MemberJoined):
                known[("joined", group, member)] = _ms(event.occurred_at)
            name_changed = False
            if isinstance(event, MessageCreated) and event.data.display_name is not None:
                before = known.get(("names", group, member))
                if isinstance(before, bytes):
                    before = before.decode()
                name_changed = before != event.data.display_name
            if isinstance(event, MemberJoined | MemberUpdated | MessageCreated):
                name = event.data.display_name
                if name is not None:
                    known[("names", group, member)] = name
            subject = Subject.of(event, name_changed=name_changed)
            if subject is None:
                prepared.append(None)
                continue
            context = Context(
                counts=counts.get(index, {}),
                joined_at=_from_ms(known.get(("joined", group, member))),
            )
            prepared.append((subject, context))
        return prepared

    def display_name(self, group_id: str, member_id: str) -> str | None:
        """The member's last seen display name in the group, if any."""
        raw = self._redis.hget(key(group_id, "names"), member_id)
        return raw.decode() if isinstance(raw, bytes) else raw  # type: ignore[return-value]

    def peek(
        self, *, rulebook: Rulebook, group_id: str, subject: Subject, message_text: str
    ) -> Context:
        """Return the context a message would get now, without writing anything."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.hget(key(group_id, "joined"), subject.member_id)
        rules = []
        now = _ms(subject.occurred_at)
        for rule in (*rulebook.flood_rules, *rulebook.duplicate_rules):
            window_key = _window_key(rule, group_id, subject.member_id, message_text)
            if window_key is not None:
                pipe.zcount(window_key, f"({now - rule.params.seconds * 1000}", now)
                rules.append(rule.id)
        results = pipe.execute()
        return Context(
            counts={rule_id: n + 1 for rule_id, n in zip(rules, results[1:], strict=True)},
            joined_at=_from_ms(results[0]),
        )
