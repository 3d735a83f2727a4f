"""Regular expressions that cannot stall the consumer.

Patterns run on the `regex` module, whose per-call `timeout` stops runaway
backtracking; but that timeout costs more than a short search itself. So each
pattern gets a `safe_length`: the text length up to which backtracking provably
stays under ~10^7 steps. Without nested or alternated repetition, a pattern with
k unbounded repeats takes at most about n^(k+1) steps on n characters, so texts up
to 10^(7/(k+1)) characters run without the timer; longer texts, and patterns with
nested repeats, back-references or look-arounds (or syntax the analysis does not
know), always run with the timeout.
"""

from __future__ import annotations

import logging
import re
import re._constants as sre
import re._parser as sre_parse
from typing import Any

import regex

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 0.05
STEP_BUDGET = 10**7
_BIG_REPEAT = 50  # a bounded repeat above this counts as unbounded


def _unbounded_repeats(items: Any, inside_repeat: bool) -> int | None:
    """Count the pattern's unbounded repeats; None when it may backtrack exponentially."""
    count = 0
    for op, arg in items:
        if op in (sre.MAX_REPEAT, sre.MIN_REPEAT, getattr(sre, "POSSESSIVE_REPEAT", None)):
            low, high, body = arg
            if inside_repeat:
                return None
            inner = _unbounded_repeats(body, True)
            if inner is None:
                return None
            if high is sre.MAXREPEAT or high > _BIG_REPEAT:
                count += 1
        elif op is sre.SUBPATTERN:
            inner = _unbounded_repeats(arg[-1], inside_repeat)
            if inner is None:
                return None
            count += inner
        elif op is sre.BRANCH:
            if inside_repeat:
                return None
            for branch in arg[1]:
                inner = _unbounded_repeats(branch, inside_repeat)
                if inner is None:
                    return None
                count += inner
        elif op in (
            sre.GROUPREF,
            sre.GROUPREF_EXISTS,
            sre.ASSERT,
            sre.ASSERT_NOT,
            getattr(sre, "ATOMIC_GROUP", None),
        ):
            return None
    return count


def safe_length(pattern: str, flags: int = 0) -> int:
    """Return the text length up to which the pattern runs without a timer."""
    try:
        parsed = sre_parse.parse(pattern, flags)
    except (re.error, OverflowError, RecursionError):
        return 0
    repeats = _unbounded_repeats(parsed, False)
    if repeats is None:
        return 0
    return int(STEP_BUDGET ** (1 / (repeats + 1)))


_CONFUSABLE = frozenset(map(ord, "{}[]"))  # regex reads these where re sees literals


def _caseless(ch: str) -> bool:
    """Tell whether no case-insensitive match can put another character in ch's place."""
    return ("0" <= ch <= "9") or ("\u4e00" <= ch <= "\u9fff") or ("\u3400" <= ch <= "\u4dbf")


def _literals(items: Any, out: list[str], ignore_case: bool) -> bool:
    """Append the characters every match must contain; False when unsure of the pattern."""
    for op, arg in items:
        if op is sre.LITERAL:
            if arg in _CONFUSABLE:
                return False
            if not ignore_case or _caseless(chr(arg)):
                out.append(chr(arg))
        elif op is sre.SUBPATTERN:
            inner_case = ignore_case or bool(arg[1] & re.IGNORECASE)
            if not _literals(arg[-1], out, inner_case):
                return False
        elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT, getattr(sre, "POSSESSIVE_REPEAT", None)):
            low, _high, body = arg
            kept: list[str] = []
            if not _literals(body, kept, ignore_case):
                return False
            if low >= 1:
                out.extend(kept)
        elif op is sre.BRANCH:
            for branch in arg[1]:
                if not _literals(branch, [], ignore_case):
                    return False
        elif op in (sre.IN, sre.NOT_LITERAL, sre.ANY, sre.AT, sre.CATEGORY, sre.GROUPREF):
            continue
        else:  # look-arounds, conditionals, atomic groups: not read, so not trusted
            return False
    return True


def required_character(pattern: str, *, ignore_case: bool = False) -> str:
    """Return a character every match of the pattern contains, or "" if none is known.

    A text without it cannot match, which one `in` test tells for ~30 ns, where a
    `regex` search costs ~200 ns. Read from the `re` parse of the pattern, only
    from literals outside alternations and optional parts; patterns whose braces
    or brackets `regex` may read differently from `re` (fuzzy matching, POSIX classes)
    get none. Where case is ignored (the flag or an inline `(?i)`), only digits and
    CJK ideographs are used: they have no case.
    """
    try:
        parsed = sre_parse.parse(pattern, re.IGNORECASE if ignore_case else 0)
    except (re.error, OverflowError, RecursionError):
        return ""
    found: list[str] = []
    ignore_case = ignore_case or bool(parsed.state.flags & re.IGNORECASE)
    if not _literals(parsed, found, ignore_case):
        return ""
    return found[0] if found else ""


class GuardedPattern:
    """A compiled pattern whose searches end within TIMEOUT_SECONDS."""

    __slots__ = ("_pattern", "_safe_length", "unguarded_search", "required")

    def __init__(self, pattern: str, *, ignore_case: bool = False) -> None:
        flags = regex.IGNORECASE if ignore_case else 0
        self._pattern = regex.compile(pattern, flags)
        self._safe_length = safe_length(pattern, re.IGNORECASE if ignore_case else 0)
        self.unguarded_search = self._pattern.search
        # A character every match holds ("" if none known): texts without it are skipped.
        self.required = required_character(pattern, ignore_case=ignore_case)

    @property
    def safe_length(self) -> int:
        return self._safe_length

    def search(self, text: str) -> Any:
        """Return the first match, or None (also when the search ran out of time)."""
        if self.required and self.required not in text:
            return None
        if len(text) <= self._safe_length:
            return self._pattern.search(text)
        try:
            return self._pattern.search(text, timeout=TIMEOUT_SECONDS)
        except TimeoutError:
            log.warning("a regex rule ran out of time on a text and was skipped")
            return None

    def fullmatch(self, text: str) -> Any:
        """Return the match of the whole text, or None; raise TimeoutError when out of time."""
        if len(text) <= self._safe_length:
            return self._pattern.fullmatch(text)
        return self._pattern.fullmatch(text, timeout=TIMEOUT_SECONDS)
