"""One Aho-Corasick automaton for all keyword rules of a group: terms, wildcards and allow-lists.

Terms and allow-terms are folded like texts and scanned on the folded text, so
evasion between characters does not hide a term. A `*` splits a term into
segments that must appear in order with at most MAX_GAP folded characters between
them. An allow-term of the same rule overlapping a match suppresses that match.
Whole-term ("word") rules also need the clean text around the match not to
continue a Latin word or number (CJK has no spaces, so CJK neighbours are boundaries).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import accumulate

import ahocorasick

from services.common.text import Text, fold
from services.moderation.params import KeywordsParams

MAX_GAP = 8

_NOTHING: dict[int, str] = {}  # shared and never written: callers only read it
_TERM = 0
_ALLOW = 1


@dataclass(frozen=True, slots=True)
class _Entry:
    what: int  # _TERM or _ALLOW
    slot: int  # index of the rule in the matcher
    term: int  # index of the term in its rule
    segment: int
    segments: int


Hit = tuple[int, tuple[int, tuple["_Entry", ...], int]]
"""What the automaton yields: (end index, (key length, its entries, its simple slot or -1))."""


def _wordish(ch: str) -> bool:
    return ch.isalnum() and not ("\u2e80" <= ch <= "\u9fff" or "\uac00" <= ch <= "\ud7af")


class KeywordMatcher:
    """Scan a folded text once for the terms of every keyword rule of a group."""

    def __init__(self, rules: Sequence[KeywordsParams]) -> None:
        self._rules = list(rules)
        self._whole_word = [p.match == "word" for p in rules]
        entries: dict[str, list[_Entry]] = defaultdict(list)
        for slot, params in enumerate(rules):
            for index, term in enumerate(params.keywords):
                segments = [s for s in (fold(part) for part in term.split("*")) if s]
                for position, segment in enumerate(segments):
                    entries[segment].append(_Entry(_TERM, slot, index, position, len(segments)))
            for index, term in enumerate(params.allow):
                if folded := fold(term):
                    entries[folded].append(_Entry(_ALLOW, slot, index, 0, 1))
        self._automaton: ahocorasick.Automaton | None = None
        self.iter: Callable[[str], Iterator[Hit]] | None = None
        if entries:
            automaton = ahocorasick.Automaton()
            for key, found in entries.items():
                automaton.add_word(key, (len(key), tuple(found), self._simple_slot(found)))
            automaton.make_automaton()
            self._automaton = automaton
            self.iter = automaton.iter

    def _simple_slot(self, entries: list[_Entry]) -> int:
        """The one rule slot of a key that only ends whole terms of a substring rule, or -1.

        A text whose every hit is such a key of one rule needs no allow-list, wildcard or
        boundary work: its evidence is the earliest hit (`resolve`'s fast path).
        """
        slots = {e.slot for e in entries}
        if len(slots) != 1 or any(e.what != _TERM or e.segments != 1 for e in entries):
            return -1
        slot = slots.pop()
        return -1 if self._whole_word[slot] else slot

    def __len__(self) -> int:
        return len(self._rules)

    def scan(self, text: Text) -> dict[int, str]:
        """Return {rule slot: evidence} for the rules whose terms the text contains."""
        if self.iter is None:
            return _NOTHING
        # A plain loop: list(automaton.iter(...)) is twice as slow on pyahocorasick 2.x.
        found = None
        for item in self.iter(text.folded):
            if found is None:
                found = [item]
            else:
                found.append(item)
        return _NOTHING if found is None else self.resolve(text, found)

    def resolve(self, text: Text, found: list[Hit]) -> dict[int, str]:
        """Return {rule slot: evidence} from the automaton's hits in `text.folded`.

        The rulebook iterates the automaton itself (`self.iter`) and builds the `Text`
        only when something was found: nine messages in ten find nothing.
        """
        slot = found[0][1][2]
        if slot >= 0:
            best_start, best_end = len(text.folded), 0
            for end, (length, _entries, simple) in found:
                if simple != slot:
                    break
                start = end - length + 1
                if start < best_start or (start == best_start and end < best_end):
                    best_start, best_end = start, end
            else:
                lo, hi = text.clean_span(best_start, best_end + 1)
                return {slot: text.clean[lo:hi]}
        return self._resolve(text, found)

    def _resolve(self, text: Text, found: list[Hit]) -> dict[int, str]:
        allowed: dict[int, list[tuple[int, int]]] = {}
        plain: dict[int, list[tuple[int, int, int]]] = {}
        pieces: dict[tuple[int, int, int], list[tuple[int, int, int]]] = {}
        for last, (length, entries, _simple) in found:
            start, end = last - length + 1, last + 1
            for entry in entries:
                if entry.what == _ALLOW:
                    allowed.setdefault(entry.slot, []).append((start, end))
                elif entry.segments == 1:
                    plain.setdefault(entry.slot, []).append((start, end, entry.term))
                else:
                    key = (entry.slot, entry.term, entry.segments)
                    pieces.setdefault(key, []).append((entry.segment, start, end))
        for (slot, term, count), segments in pieces.items():
            # Most texts hold one segment of a wildcard term (`加` of `加*信`), not all.
            if len({segment for segment, _, _ in segments}) == count and (
                span := _in_order(segments, count)
            ):
                plain.setdefault(slot, []).append((*span, term))
        result: dict[int, str] = {}
        for slot, candidates in plain.items():
            allow_spans = allowed.get(slot)
            overlaps_allowed = _overlap_test(allow_spans) if allow_spans else None
            for start, end, _term in sorted(candidates) if len(candidates) > 1 else candidates:
                if overlaps_allowed is not None and overlaps_allowed(start, end):
                    continue
                lo, hi = text.clean_span(start, end)
                if self._whole_word[slot] and not _bounded(text.clean, lo, hi):
                    continue
                result[slot] = text.clean[lo:hi]
                break
        return result


def _overlap_test(spans: list[tuple[int, int]]) -> Callable[[int, int], bool]:
    """Return a test telling in O(log n) whether [start, end) overlaps one of the spans."""
    spans = sorted(spans)
    starts = [a for a, _ in spans]
    reach = list(accumulate((b for _, b in spans), max))

    def overlaps(start: int, end: int) -> bool:
        index = bisect_left(starts, end)  # spans starting before `end`
        return index > 0 and reach[index - 1] > start

    return overlaps


def _in_order(found: list[tuple[int, int, int]], count: int) -> tuple[int, int] | None:
    """Return the first span where segments 0..count-1 occur in order with bounded gaps."""
    if len(found) == count:  # each segment once (the caller saw every one): no search
        once = sorted(found)
        end = once[0][2]
        for _segment, start, stop in once[1:]:
            if not end <= start <= end + MAX_GAP:
                return None
            end = stop
        return once[0][1], end
    by_segment: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for segment, start, end in found:
        by_segment[segment].append((start, end))
    if len(by_segment) < count:
        return None
    ordered = [sorted(by_segment[segment]) for segment in range(count)]
    starts = [[s for s, _ in spans] for spans in ordered]
    for first_start, first_end in ordered[0]:
        end = first_end
        for segment in range(1, count):
            index = bisect_left(starts[segment], end)
            spans = ordered[segment]
            if index == len(spans) or spans[index][0] > end + MAX_GAP:
                break
            # Among the segments starting in the gap, the earliest ending leaves most room.
            stop = bisect_right(starts[segment], end + MAX_GAP)
            end = min(e for _, e in spans[index:stop])
        else:
            return first_start, end
    return None


def _bounded(clean: str, start: int, end: int) -> bool:
    """Tell whether clean[start:end] neither continues nor is continued by a Latin word."""
    if start > 0 and _wordish(clean[start - 1]) and _wordish(clean[start]):
        return False
    return not (end < len(clean) and _wordish(clean[end]) and _wordish(clean[end - 1]))
