"""A group's rulebook: its rules compiled once; judge one event, say what matched and what to do.

Pure: no I/O. What needs state (sliding-window counts, join times, whether a name
changed) comes in a Context prepared by the caller, so the rulebook can be tested
and benchmarked alone and `rules/test` can judge without side effects.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta

import regex

from services.common.text import Text, plain_form
from services.moderation.keywords import KeywordMatcher
from services.moderation.links import AllowedDomains, find_links, may_hold_link
from services.moderation.params import (
    DisplayNameParams,
    KeywordsParams,
    LinksParams,
    MentionsParams,
    MessageKindsParams,
    NewcomerParams,
    RegexParams,
    plain_pattern,
)
from services.moderation.patterns import GuardedPattern
from services.moderation.qr import decode_qr
from services.moderation.specs import Context, Match, PolicySpec, RuleSpec, Subject, Verdict

log = logging.getLogger(__name__)

MAX_IMAGES = 5  # QR decoding takes milliseconds per image: bound the work per message
_MENTION = regex.compile(r"(?<![a-z0-9._%+-])@\S")
Found = dict[str, tuple[RuleSpec, str]]
"""The rules matched so far, by rule id, with the evidence of each."""

CLEAR = Verdict()
_NO_CONTEXT = Context()
EXEMPT = Verdict(exempt=True)


class Rulebook:
    """Every enabled rule of a group compiled once; `evaluate` judges one event."""

    def __init__(self, rules: Sequence[RuleSpec], policy: PolicySpec | None = None) -> None:
        self.rules = list(rules)
        self.policy = policy or PolicySpec()
        by_kind: dict[str, list[RuleSpec]] = {}
        for rule in self.rules:
            by_kind.setdefault(rule.kind, []).append(rule)
        self._compile_text_rules(by_kind)
        self._compile_event_rules(by_kind)
        self._exempt = self.policy.exempt_members
        self._reads_images = bool(self._qr or self._links or self._keyword_rules)

    def _compile_text_rules(self, by_kind: dict[str, list[RuleSpec]]) -> None:
        """Compile the rules that read a text: keywords, regex, display names and links."""
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

    def _compile_event_rules(self, by_kind: dict[str, list[RuleSpec]]) -> None:
        """Compile the rules that read the message itself: kinds, QR codes, counts, newcomers."""
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
        self._newcomer = by_kind.get("newcomer", [])
        self._newcomer_rules = [
            (r, r.params.within_seconds, frozenset(r.params.kinds), r.params.links)
            for r in self._newcomer
            if isinstance(r.params, NewcomerParams)
        ]
        self._newcomer_within = max((within for _, within, _, _ in self._newcomer_rules), default=0)
        self._newcomer_delta = timedelta(seconds=self._newcomer_within)

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
        found: Found = {}
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
                    rule.name,
                    rule.delete_message,
                )
                (shadow if rule.shadow else matched).append(hit)
        return Verdict(tuple(matched), tuple(shadow))

    def _judge_name(self, display_name: str, found: Found) -> None:
        name = plain_form(display_name)
        for rule, pattern in self._names:
            try:
                ok = pattern.fullmatch(name)
            except TimeoutError:
                ok = True
            if not ok:
                found.setdefault(rule.id, (rule, f"display name {display_name!r}"))

    def _judge_message(self, subject: Subject, context: Context, found: Found) -> None:
        text = Text(subject.text) if subject.text else None
        joined_at = context.joined_at
        young = (
            joined_at is not None
            and self._newcomer_within > 0
            and joined_at > subject.occurred_at - self._newcomer_delta
        )
        links = self._judge_text(text, young, found) if text is not None else []
        if self._kinds:
            kind = subject.kind
            forbidden_kinds = self._forbidden_kinds
            if kind in forbidden_kinds or not forbidden_kinds.isdisjoint(subject.attachment_kinds):
                self._judge_kinds(subject, found)
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

    def _judge_text(self, text: Text, young: bool, found: Found) -> list[tuple[str, str]]:
        """Run the keyword, regex and link rules; return the links found (newcomers need them)."""
        links: list[tuple[str, str]] = []
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
        return links

    def _judge_kinds(self, subject: Subject, found: Found) -> None:
        kind = subject.kind
        for rule, forbidden in self._kinds:
            if kind in forbidden:
                found[rule.id] = (rule, f"kind {kind}")
            elif subject.attachment_kinds and (
                hit := [k for k in subject.attachment_kinds if k in forbidden]
            ):
                found[rule.id] = (rule, f"kind {hit[0]}")

    def _judge_newcomer(
        self,
        subject: Subject,
        age: float,
        links: list[tuple[str, str]],
        found: Found,
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

    def _judge_links(self, links: list[tuple[str, str]], found: Found, prefix: str) -> None:
        for rule, allowed in self._link_rules:
            if rule.id in found:
                continue
            for link, host in links:
                if not allowed(host):
                    found[rule.id] = (rule, prefix + link[:200])
                    break

    def _judge_images(self, images: tuple[bytes, ...], found: Found) -> None:
        for content in images[:MAX_IMAGES]:
            for decoded in decode_qr(content):
                for rule in self._qr:
                    found.setdefault(rule.id, (rule, f"qr: {decoded[:200]}"))
                text = Text(decoded)
                for slot, evidence in self._keywords.scan(text).items():
                    rule = self._keyword_rules[slot]
                    found.setdefault(rule.id, (rule, f"qr: {evidence}"))
                self._judge_links(find_links(text.clean), found, prefix="qr: ")
