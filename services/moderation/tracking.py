"""What moderation remembers per member in Redis: sliding windows, join times, names.

Keys carry the group id as a hash tag (`qy:{group}:mod:…`) so a group's keys share a
Redis Cluster slot. One pipeline per poll does every read and write of the batch.
Windows are sorted sets of event ids scored by `occurred_at`, so a redelivered event
is added once and counted once. In groups with member reports on, the author of each
message is kept to resolve a report's `reply_to`: hashes per hour of `occurred_at`
(`author:<hour>`, message id → `<ms>\n<member id>`) that expire whole 49 h after their
hour, so a report finds any message of the last 48 h at the cost of one HGET per hour.
Redis rather than the database: it costs one more pipelined command per message on the
hot path instead of a row per message, and expiry is free.
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
from services.common.redis_client import hash_tag, queue_script, run_pipeline
from services.common.text import Text
from services.moderation.reports import ReportedMessage
from services.moderation.rulebook import Rulebook
from services.moderation.specs import Context, RuleSpec, Subject

AUTHOR_HOURS = 49  # how many hours of message authors a report looks back through
HOUR_MS = 3_600_000

# Count the window ending at this event, after adding it (see lua/window.lua).
_WINDOW_LUA = (files("services.moderation") / "lua" / "window.lua").read_text(encoding="utf-8")


def key(group_id: str, *parts: str) -> str:
    """Return a moderation key of the group: qy:{group}:mod:part:…"""
    return ":".join((f"qy:{hash_tag(group_id)}:mod", *parts))


def version_key(group_id: str) -> str:
    return key(group_id, "version")


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _from_ms(raw: Any) -> datetime | None:
    return datetime.fromtimestamp(int(raw) / 1000, UTC) if raw is not None else None


def _author_key(group_id: str, hour: int) -> str:
    return key(group_id, "author", str(hour))


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
            if rulebook.policy.reports is not None:
                self._keep_author(pipe, event)
            if rulebook.needs_join_times:
                wanted_joins.setdefault(group, set()).add(member)
            if rulebook.checks_names and event.data.display_name is not None:
                wanted_names.setdefault(group, set()).add(member)
                pipe.hset(key(group, "names"), member, event.data.display_name)
            for rule in (*rulebook.flood_rules, *rulebook.duplicate_rules):
                window_key = _window_key(rule, group, member, event.data.text)
                if window_key is not None:
                    windows.append((len(pipe), index, rule.id))
                    queue_script(
                        pipe,
                        self._window,
                        keys=[window_key],
                        args=[_ms(event.occurred_at), event.dedup_key, rule.params.seconds * 1000],
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
        results = run_pipeline(pipe) if len(pipe) else []
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

    @staticmethod
    def _keep_author(pipe: Any, event: MessageCreated) -> None:
        at = _ms(event.occurred_at)
        hour = at // HOUR_MS
        author_key = _author_key(event.group_id, hour)
        pipe.hset(author_key, event.data.message_id, f"{at}\n{event.member_id}")
        pipe.expireat(author_key, (hour + 1 + AUTHOR_HOURS) * HOUR_MS // 1000)

    def reported_messages(
        self, wanted: Sequence[tuple[str, str, datetime]]
    ) -> list[ReportedMessage | None]:
        """The author, time and author's name of each (group, message id, reported at) when
        the message is among the group's last 48 h (and one hour past `reported at`)."""
        if not wanted:
            return []
        pipe = self._redis.pipeline(transaction=False)
        for group, message_id, at in wanted:
            hour = _ms(at) // HOUR_MS
            for bucket in range(hour - AUTHOR_HOURS, hour + 2):
                pipe.hget(_author_key(group, bucket), message_id)
        results = run_pipeline(pipe)
        span = AUTHOR_HOURS + 2
        found: list[tuple[str, datetime | None] | None] = []
        for index in range(len(wanted)):
            raw = next((r for r in results[index * span : (index + 1) * span] if r), None)
            if raw is None:
                found.append(None)
                continue
            ms, _, author = (raw.decode() if isinstance(raw, bytes) else str(raw)).partition("\n")
            found.append((author, _from_ms(ms)))
        names = self._names([(g, f[0]) for (g, _, _), f in zip(wanted, found, strict=True) if f])
        return [
            ReportedMessage(author_id=f[0], message_at=f[1], display_name=names.get((g, f[0])))
            if f
            else None
            for (g, _, _), f in zip(wanted, found, strict=True)
        ]

    def _names(self, members: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
        if not members:
            return {}
        pipe = self._redis.pipeline(transaction=False)
        for group, member in members:
            pipe.hget(key(group, "names"), member)
        named = {}
        for member_key, raw in zip(members, run_pipeline(pipe), strict=True):
            if raw:
                named[member_key] = raw.decode() if isinstance(raw, bytes) else str(raw)
        return named

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
