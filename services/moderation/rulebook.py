"""A group's rulebook: its rules compiled once; judge one event, say what matched and what to do.

Pure: no I/O. What needs state (sliding-window counts, join times, whether a name
changed) comes in a Context prepared by the caller, so the rulebook can be tested
and benchmarked alone and `rules/test` can judge without side effects.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import timedelta

import regex

from services.common.text import Text, forms, plain_form
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
_NO_LINKS: list[tuple[str, str]] = []  # shared and never written
_NO_CONTEXT = Context()
EXEMPT = Verdict(exempt=True)


class Rulebook:
    """Every enabled rule of a group compiled once; `evaluate` judges one event."""

    def __init__(self, rules: Sequence[RuleSpec], policy: PolicySpec | None = None) -> None:
        self.rules = list(rules)
        self.policy = policy or PolicySpec()
        self._order = {rule.id: index for index, rule in enumerate(self.rules)}
        self._unique_ids = len(self._order) == len(self.rules)
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
        self._scan = self._keywords.iter
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
        """Judge one subject; the verdict lists enforced and shadow matches.

        The hot loop of the consumer and of the benchmark, so a message is judged here in
        one call: its text is folded once into locals (a `Text` is built only for a keyword
        hit, to map evidence back), and each rule kind is skipped by one test when it
        cannot match.
        """
        if subject.member_id in self._exempt:
            return EXEMPT
        if subject.type != "message.created":
            return self._judge_member(subject)
        if context is None:
            context = _NO_CONTEXT
        found: Found = {}
        joined_at = context.joined_at
        young = (
            self._newcomer_within > 0
            and joined_at is not None
            and subject.occurred_at - joined_at < self._newcomer_delta
        )
        links: list[tuple[str, str]] = _NO_LINKS
        mentions = subject.mentions
        if raw := subject.text:
            plain, clean, folded = forms(raw)
            if (scan := self._scan) is not None:
                hits = None
                # A plain loop: list(automaton.iter(...)) is twice as slow on pyahocorasick 2.x.
                for item in scan(folded):
                    if hits is None:
                        hits = [item]
                    else:
                        hits.append(item)
                if hits is not None:
                    text = Text.of(plain, clean, folded)
                    for slot, evidence in self._keywords.resolve(text, hits).items():
                        rule = self._keyword_rules[slot]
                        found[rule.id] = (rule, evidence)
            if self._regex_fast:
                size = len(plain)
                for rule_id, rule, required, safe, unguarded, guarded in self._regex_fast:
                    # Inlined fast path of GuardedPattern.search.
                    if required and required not in plain:
                        continue
                    match = unguarded(plain) if size <= safe else guarded(plain)
                    if match:
                        found[rule_id] = (rule, match.group(0)[:200])
            # may_hold_link, with its common answers inlined: a dot, or no ideographic one.
            if (
                (self._links or young)
                and ("." in clean or (("。" in clean or "｡" in clean) and may_hold_link(clean)))
                and (links := find_links(clean))
                and self._links
            ):
                self._judge_links(links, found, prefix="")
            if self._mentions and "@" in clean:
                mentions = max(mentions, len(_MENTION.findall(clean)))
        if self._kinds:
            forbidden = self._forbidden_kinds
            attached = subject.attachment_kinds
            if subject.kind in forbidden or (attached and not forbidden.isdisjoint(attached)):
                self._judge_kinds(subject, found)
        if subject.images and self._reads_images:
            self._judge_images(subject.images, found)
        if mentions and self._mentions:
            for rule, limit in self._mentions:
                if mentions > limit:
                    found[rule.id] = (rule, f"{mentions} mentions")
        if self._windows and (counts := context.counts):
            for rule_id, rule, limit, what in self._windows:
                count = counts.get(rule_id, 0)
                if count > limit:
                    found[rule_id] = (rule, f"{count} {what} in {rule.params.seconds}s")
        if young:
            assert joined_at is not None
            age = (subject.occurred_at - joined_at).total_seconds()
            self._judge_newcomer(subject, age, links, found)
        if subject.check_name and subject.display_name is not None and self._names:
            self._judge_name(subject.display_name, found)
        return self._verdict(found) if found else CLEAR

    def _judge_member(self, subject: Subject) -> Verdict:
        """A join or a rename: only the display name is judged."""
        found: Found = {}
        if subject.check_name and subject.display_name is not None and self._names:
            self._judge_name(subject.display_name, found)
        return self._verdict(found) if found else CLEAR

    def _verdict(self, found: Found) -> Verdict:
        matched: list[Match] = []
        shadow: list[Match] = []
        hits: Iterable[tuple[RuleSpec, str]]
        if not self._unique_ids:  # rules sharing an id (never stored; built by hand) each match
            hits = [(r, found[r.id][1]) for r in self.rules if r.id in found]
        elif len(found) > 1:  # in rule order
            hits = [found[i] for i in sorted(found, key=self._order.__getitem__)]
        else:  # most verdicts hold one match
            hits = found.values()
        for rule, evidence in hits:
            hit = Match(
                rule.id,
                rule.kind,
                evidence,
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
