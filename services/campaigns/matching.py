"""How campaigns read members' messages: keywords, tags and poll votes, on the kernel's text
folding (`services.common.text`), so `＃打卡`, `打卡！` and `投票２` read as their plain forms.

Pure functions, no I/O.
"""

from __future__ import annotations

import re
from typing import Literal

from services.common.text import Text, fold

Match = Literal["exact", "prefix", "contains"]

_SPACE = re.compile(r"\s+")
# After the vote keyword: separators, then the option number(s); the rest is ignored.
_VOTE_SEPARATORS = r"[\s:：#.,、，;；。]*"
_NUMBERS = re.compile(_VOTE_SEPARATORS + r"(\d{1,4}(?:[\s,、，;；/]+\d{1,4})*)")
_ONE_NUMBER = re.compile(_VOTE_SEPARATORS + r"(\d{1,4})(?!\d)")


def clean(text: str) -> str:
    """Return the kernel's clean form: NFKC, invisible characters out, simplified, case-folded."""
    return Text(text).clean


class Keyword:
    """A keyword read once and matched against many messages (a batch's): `exact` when the
    message is the keyword once punctuation, emoji and spaces are set aside, `prefix` when
    it starts with it, `contains` when it holds it anywhere. A keyword of symbols alone
    (`✅`) is compared on the clean forms without spaces instead."""

    __slots__ = ("match", "symbols", "wanted")

    def __init__(self, keyword: str, match: Match = "exact") -> None:
        self.match = match
        self.wanted = fold(keyword)
        self.symbols = not self.wanted
        if self.symbols:
            self.wanted = _SPACE.sub("", clean(keyword))

    def matches(self, text: str) -> bool:
        """Tell whether the message's text matches the keyword."""
        if not self.wanted:
            return False
        said = _SPACE.sub("", clean(text)) if self.symbols else fold(text)
        if self.match == "exact":
            return said == self.wanted
        if self.match == "prefix":
            return said.startswith(self.wanted)
        return self.wanted in said


def keyword_matches(keyword: str, text: str, match: Match = "exact") -> bool:
    """Tell whether a message matches a keyword (see `Keyword`)."""
    return Keyword(keyword, match).matches(text)


def mentions_keyword(keyword: str, text: str) -> bool:
    """Tell whether a message's clean text contains the keyword's (symbols kept: `#反馈`)."""
    return clean(keyword) in clean(text)


def parse_vote(keyword: str, text: str, *, multiple: bool) -> list[int]:
    """Return the option numbers a message votes for, or [] when it is no vote.

    A vote starts with the keyword (after leading spaces), then the option number: `投票 2`,
    `投票２`, `投票:2`. In a multiple-choice poll several numbers may follow (`投票 1 3`,
    `投票 1,3`). Whatever follows the number(s) is ignored; range checks are the caller's.
    """
    said, wanted = clean(text).lstrip(), clean(keyword).strip()
    if not wanted or not said.startswith(wanted):
        return []
    rest = said[len(wanted) :]
    if not multiple:
        one = _ONE_NUMBER.match(rest)
        return [int(one.group(1))] if one else []
    found = _NUMBERS.match(rest)
    if found is None:
        return []
    return list(dict.fromkeys(int(n) for n in re.findall(r"\d+", found.group(1))))


def find_tag(tag: str, text: str) -> str | None:
    """Return the clean text after the first `tag` in a message, or None when it has none."""
    said, wanted = clean(text), clean(tag).strip()
    at = said.find(wanted) if wanted else -1
    return None if at < 0 else said[at + len(wanted) :]


def detect_category(after_tag: str, categories: list[str]) -> str | None:
    """Return the category named right after the tag (`#反馈 bug 登录失败` → `bug`), the longest
    that fits; a Latin category must end at a word boundary (`bugs` is not `bug`)."""
    rest = after_tag.lstrip(" \t\n:：-—#[]【】()（）")
    best: str | None = None
    for category in categories:
        name = clean(category).strip()
        if not name or not rest.startswith(name):
            continue
        after = rest[len(name) : len(name) + 1]
        if name[-1].isascii() and name[-1].isalnum() and after.isascii() and after.isalnum():
            continue
        if best is None or len(name) > len(clean(best)):
            best = category
    return best
