"""A group's compiled rule set: evaluate one event and say which rules matched and what to do.

Pure: no I/O. What needs state (sliding-window counts, join times, whether a name
changed) comes in a Context prepared by the caller, so the engine can be tested
and benchmarked alone and `rules/test` can evaluate without side effects.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import regex

from services.common.contracts.events import Event, MemberJoined, MemberUpdated, MessageCreated
from services.moderation.keywords import KeywordMatcher
from services.moderation.links import AllowedDomains, find_links, may_hold_link
from services.moderation.normalize import Text, plain_form
from services.moderation.params import (
    DisplayNameParams,
    KeywordsParams,
    LinksParams,
    MentionsParams,
    MessageKindsParams,
    NewcomerParams,
    RegexParams,
    parse_params,
    plain_pattern,
)
from services.moderation.patterns import GuardedPattern
from services.moderation.qr import decode_qr

log = logging.getLogger(__name__)

ACTION_RANK = {"flag": 0, "delete": 1, "warn": 2, "mute": 3, "kick": 4, "ban": 5}
MAX_IMAGES = 5  # QR decoding takes milliseconds per image: bound the work per message
_MENTION = regex.compile(r"(?<![a-z0-9._%+-])@\S")


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """A rule as the engine needs it."""

    id: str
    name: str
    kind: str
    params: Any
    action: str
    mute_seconds: int | None = None
    shadow: bool = False

    @classmethod
    def of(
        cls,
        *,
        id: str,
        name: str,
        kind: str,
        params: dict[str, Any],
        action: str,
        mute_seconds: int | None = None,
        mode: str = "enforce",
    ) -> RuleSpec:
        """Build a spec from stored fields, parsing the params of its kind."""
        return cls(
            id, name, kind, parse_params(kind, params), action, mute_seconds, mode == "shadow"
        )


@dataclass(frozen=True, slots=True)
class Step:
    strikes: int
    action: str
    mute_seconds: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"strikes": self.strikes, "action": self.action, "mute_seconds": self.mute_seconds}


@dataclass(frozen=True, slots=True)
class PolicySpec:
    """A group's escalation policy."""

    strike_window_days: int = 30
    ladder: tuple[Step, ...] = ()
    exempt_members: frozenset[str] = frozenset()

    def step_for(self, strikes: int) -> Step | None:
        """Return the highest ladder step the strike count has reached, if any."""
        reached = [s for s in self.ladder if s.strikes <= strikes]
        return max(reached, key=lambda s: s.strikes) if reached else None


@dataclass(slots=True)
class Subject:
    """What is evaluated: a message, or a member's display name on join or rename."""

    type: str
    member_id: str
    occurred_at: datetime
    text: str = ""
    kind: str = "text"
    attachment_kinds: tuple[str, ...] = ()
    images: tuple[bytes, ...] = ()
    mentions: int = 0
    display_name: str | None = None
    check_name: bool = False

    @classmethod
    def of(cls, event: Event, *, name_changed: bool = False) -> Subject | None:
        """Build the subject of an event (None for events moderation does not judge)."""
        if isinstance(event, MessageCreated):
            data = event.data
            return cls(
                type=event.type,
                member_id=event.member_id,
                occurred_at=event.occurred_at,
                text=data.text,
                kind=data.kind,
                attachment_kinds=tuple(a.kind for a in data.attachments),
                images=tuple(c for a in data.attachments if (c := a.content())),
                mentions=len(set(data.mentions)),
                display_name=data.display_name,
                check_name=name_changed and data.display_name is not None,
            )
        if isinstance(event, MemberJoined | MemberUpdated):
            return cls(
                type=event.type,
                member_id=event.member_id,
                occurred_at=event.occurred_at,
                display_name=event.data.display_name,
                check_name=event.data.display_name is not None,
            )
        return None


@dataclass(slots=True)
class Context:
    """State the caller looked up: window counts per rule id (this event included), join time."""

    counts: dict[str, int] = field(default_factory=dict)
    joined_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Match:
    rule_id: str
    kind: str
    evidence: str
    action: str
    mute_seconds: int | None
    shadow: bool

    def as_dict(self) -> dict[str, str]:
        return {"rule_id": self.rule_id, "kind": self.kind, "evidence": self.evidence}


@dataclass(frozen=True, slots=True)
class Verdict:
    """The rules an event matched; enforced ones decide the action."""

    matched: tuple[Match, ...] = ()
    shadow_matched: tuple[Match, ...] = ()
    exempt: bool = False

    @property
    def action(self) -> str | None:
        """Return the strongest action of the enforced matches (or None)."""
        return strongest(m.action for m in self.matched)

    @property
    def shadow_action(self) -> str | None:
        return strongest(m.action for m in self.shadow_matched)

    @property
    def mute_seconds(self) -> int | None:
        """Return the longest duration among the matches that set the action."""
        action = self.action
        durations = [m.mute_seconds for m in self.matched if m.action == action]
        if action == "ban" and None in durations:
            return None
        return max((d for d in durations if d is not None), default=None)

    @property
    def strike(self) -> bool:
        """Tell whether the decision adds a strike (an enforced rule said warn)."""
        return any(m.action == "warn" for m in self.matched)

    def __bool__(self) -> bool:
        return bool(self.matched or self.shadow_matched)


CLEAR = Verdict()
_NO_CONTEXT = Context()
EXEMPT = Verdict(exempt=True)


def strongest(actions: Iterable[str]) -> str | None:
    """Return the strongest action (flag < delete < warn < mute < kick < ban)."""
    return max(actions, key=ACTION_RANK.__getitem__, default=None)


class RuleEngine:
    """Every enabled rule of a group compiled once; `evaluate` judges one event."""

    def __init__(self, rules: Sequence[RuleSpec], policy: PolicySpec | None = None) -> None:
        self.rules = list(rules)
        self.policy = policy or PolicySpec()
        by_kind: dict[str, list[RuleSpec]] = {}
        for rule in self.rules:
            by_kind.setdefault(rule.kind, []).append(rule)
        self._keyword_rules = by_kind.get("keywords", [])
        self._keywords = KeywordMatcher(
            [r.params for r in self._keyword_rules if isinstance(r.params, KeywordsParams)]
        )
        self._regex = [
            (r, GuardedPattern(plain_pattern(r.params.pattern), ignore_case=True))
            for r in by_kind.get("regex", [])
            if isinstance(r.params, RegexParams)
        ]
        # The hot loop's view: (rule id, rule, a character every match holds or "",
        # safe length, unguarded search, guarded search).
        self._regex_fast = tuple(
            (r.id, r, p.required, p.safe_length, p.unguarded_search, p.search)
            for r, p in self._regex
        )
        self._names = [
            (r, GuardedPattern(plain_pattern(r.params.pattern)))
            for r in by_kind.get("display_name", [])
            if isinstance(r.params, DisplayNameParams)
        ]
        self._links = by_kind.get("links", [])
        self._link_rules = [
            (r, AllowedDomains(r.params.allowed_domains))
            for r in self._links
            if isinstance(r.params, LinksParams)
        ]
        self._kinds = [
            (r, frozenset(r.params.kinds))
            for r in by_kind.get("message_kinds", [])
            if isinstance(r.params, MessageKindsParams)
        ]
        # Every kind some message_kinds rule forbids: most messages need no loop at all.
        self._forbidden_kinds = frozenset(k for _, kinds in self._kinds for k in kinds)
        self._qr = by_kind.get("qr_code", [])
        self.flood_rules = by_kind.get("flood", [])
        self.duplicate_rules = by_kind.get("duplicates", [])
        self._mentions = [
            (r, r.params.max_mentions)
            for r in by_kind.get("mentions", [])
            if isinstance(r.params, MentionsParams)
        ]
        self._windows = [
            *((r.id, r, r.params.max_messages, "messages") for r in self.flood_rules),
            *((r.id, r, r.params.max_repeats, "repeats") for r in self.duplicate_rules),
        ]
        self._exempt = self.policy.exempt_members
        self._newcomer = by_kind.get("newcomer", [])
        self._newcomer_rules = [
            (r, r.params.within_seconds, frozenset(r.params.kinds), r.params.links)
            for r in self._newcomer
            if isinstance(r.params, NewcomerParams)
        ]
        self._newcomer_within = max(
            (
                r.params.within_seconds
                for r in self._newcomer
                if isinstance(r.params, NewcomerParams)
            ),
            default=0,
        )
        self._newcomer_delta = timedelta(seconds=self._newcomer_within)
        self._reads_images = bool(self._qr or self._links or self._keyword_rules)

    @property
    def needs_join_times(self) -> bool:
        return bool(self._newcomer)

    @property
    def checks_names(self) -> bool:
        return bool(self._names)

    def is_exempt(self, member_id: str) -> bool:
        return member_id in self.policy.exempt_members

    def evaluate(self, subject: Subject, context: Context | None = None) -> Verdict:
        """Judge one subject; the verdict lists enforced and shadow matches."""
        if subject.member_id in self._exempt:
            return EXEMPT
        found: dict[str, tuple[RuleSpec, str]] = {}
        if subject.type == "message.created":
            self._judge_message(subject, context or _NO_CONTEXT, found)
        if subject.check_name and subject.display_name is not None and self._names:
            self._judge_name(subject.display_name, found)
        if not found:
            return CLEAR
        matched: list[Match] = []
        shadow: list[Match] = []
        for rule in self.rules:
            if rule.id in found:
                hit = Match(
                    rule.id,
                    rule.kind,
                    found[rule.id][1],
                    rule.action,
                    rule.mute_seconds,
                    rule.shadow,
                )
                (shadow if rule.shadow else matched).append(hit)
        return Verdict(tuple(matched), tuple(shadow))

    def _judge_name(self, display_name: str, found: dict[str, tuple[RuleSpec, str]]) -> None:
        name = plain_form(display_name)
        for rule, pattern in self._names:
            try:
                ok = pattern.fullmatch(name)
            except TimeoutError:
                ok = True
            if not ok:
                found.setdefault(rule.id, (rule, f"display name {display_name!r}"))

    def _judge_message(
        self, subject: Subject, context: Context, found: dict[str, tuple[RuleSpec, str]]
    ) -> None:
        text = Text(subject.text) if subject.text else None
        joined_at = context.joined_at
        young = (
            joined_at is not None
            and self._newcomer_within > 0
            and joined_at > subject.occurred_at - self._newcomer_delta
        )
        links: list[tuple[str, str]] = []
        if text is not None:
            if self._keyword_rules and (hits := self._keywords.scan(text)):
                for slot, evidence in hits.items():
                    rule = self._keyword_rules[slot]
                    found[rule.id] = (rule, evidence)
            if self._regex_fast:
                plain = text.plain
                size = len(plain)
                for rule_id, rule, required, safe, unguarded, guarded in self._regex_fast:
                    # Inlined fast path of GuardedPattern.search (the hot loop of the consumer).
                    if required and required not in plain:
                        continue
                    match = unguarded(plain) if size <= safe else guarded(plain)
                    if match:
                        found[rule_id] = (rule, match.group(0)[:200])
            clean = text.clean
            # may_hold_link, with its common answers inlined: a dot, or no ideographic one.
            if (
                (self._links or young)
                and ("." in clean or (("。" in clean or "｡" in clean) and may_hold_link(clean)))
                and (links := find_links(clean))
                and self._links
            ):
                self._judge_links(links, found, prefix="")
        if self._kinds:
            kind = subject.kind
            forbidden_kinds = self._forbidden_kinds
            if kind in forbidden_kinds or not forbidden_kinds.isdisjoint(subject.attachment_kinds):
                for rule, forbidden in self._kinds:
                    if kind in forbidden:
                        found[rule.id] = (rule, f"kind {kind}")
                    elif subject.attachment_kinds and (
                        hit := [k for k in subject.attachment_kinds if k in forbidden]
                    ):
                        found[rule.id] = (rule, f"kind {hit[0]}")
        if subject.images and self._reads_images:
            self._judge_images(subject.images, found)
        if self._mentions and (subject.mentions or (text is not None and "@" in text.clean)):
            written = len(_MENTION.findall(text.clean)) if text is not None else 0
            count = max(subject.mentions, written)
            for rule, limit in self._mentions:
                if count > limit:
                    found[rule.id] = (rule, f"{count} mentions")
        if self._windows:
            counts = context.counts
            for rule_id, rule, limit, what in self._windows:
                count = counts.get(rule_id, 0)
                if count > limit:
                    found[rule_id] = (rule, f"{count} {what} in {rule.params.seconds}s")
        if young:
            assert joined_at is not None
            age = (subject.occurred_at - joined_at).total_seconds()
            self._judge_newcomer(subject, age, links, found)

    def _judge_newcomer(
        self,
        subject: Subject,
        age: float,
        links: list[tuple[str, str]],
        found: dict[str, tuple[RuleSpec, str]],
    ) -> None:
        for rule, within, kinds, no_links in self._newcomer_rules:
            if age >= within:
                continue
            if subject.kind in kinds:
                found[rule.id] = (rule, f"joined {int(age)}s ago, kind {subject.kind}")
            elif hit := [k for k in subject.attachment_kinds if k in kinds]:
                found[rule.id] = (rule, f"joined {int(age)}s ago, kind {hit[0]}")
            elif no_links and links:
                found[rule.id] = (rule, f"joined {int(age)}s ago, link {links[0][0]}")

    def _judge_links(
        self, links: list[tuple[str, str]], found: dict[str, tuple[RuleSpec, str]], prefix: str
    ) -> None:
        for rule, allowed in self._link_rules:
            if rule.id in found:
                continue
            for link, host in links:
                if not allowed(host):
                    found[rule.id] = (rule, prefix + link[:200])
                    break

    def _judge_images(
        self, images: tuple[bytes, ...], found: dict[str, tuple[RuleSpec, str]]
    ) -> None:
        for content in images[:MAX_IMAGES]:
            for decoded in decode_qr(content):
                for rule in self._qr:
                    found.setdefault(rule.id, (rule, f"qr: {decoded[:200]}"))
                text = Text(decoded)
                for slot, evidence in self._keywords.scan(text).items():
                    rule = self._keyword_rules[slot]
                    found.setdefault(rule.id, (rule, f"qr: {evidence}"))
                self._judge_links(find_links(text.clean), found, prefix="qr: ")
