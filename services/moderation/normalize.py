"""Chinese-aware text folding: the forms of a text that moderation rules match against.

- plain: NFKC (full-width to half-width), invisible characters removed, traditional to
  simplified Chinese (OpenCC t2s). Regex rules and display names run on it.
- clean: plain case-folded. Links and whole-term boundaries are read from it.
- folded: clean with everything but letters and digits removed, so spacing and symbol
  evasion (`加 微 信`, `加.微.信`, `V❤X`) reads as the plain term. Keywords run on it.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from dataclasses import dataclass, field

import opencc

# Zero-width and other invisible format characters spammers slip between characters.
_INVISIBLE = dict.fromkeys(
    [
        0x00AD,
        0x034F,
        0x061C,
        0x115F,
        0x1160,
        0x17B4,
        0x17B5,
        0x3164,
        0xFEFF,
        0xFFA0,
        *range(0x180B, 0x1810),
        *range(0x200B, 0x2010),
        *range(0x202A, 0x202F),
        *range(0x2060, 0x2070),
        *range(0xFE00, 0xFE10),
        *range(0xE0000, 0xE0080),
    ]
)
_DROP = re.compile(r"[\W_]+")
_KEEP = re.compile(r"[^\W_]")
_local = threading.local()


def _t2s(text: str) -> str:
    converter = getattr(_local, "t2s", None)
    if converter is None:
        converter = _local.t2s = opencc.OpenCC("t2s")
    return str(converter.convert(text))


def plain_form(text: str) -> str:
    """Return NFKC, invisible-free, simplified text (case kept)."""
    text = unicodedata.normalize("NFKC", text).translate(_INVISIBLE)
    return text if text.isascii() else _t2s(text)


def fold(text: str) -> str:
    """Return the folded form of a term or text: letters and digits only, case-folded."""
    return _DROP.sub("", plain_form(text).casefold())


@dataclass(slots=True)
class Text:
    """A text in every form the matchers need, with a map from folded back to clean."""

    plain: str
    clean: str
    folded: str
    _positions: list[int] | None = field(default=None, repr=False)

    @classmethod
    def of(cls, text: str) -> Text:
        plain = plain_form(text)
        clean = plain.casefold()
        return cls(plain, clean, _DROP.sub("", clean))

    def clean_span(self, start: int, end: int) -> tuple[int, int]:
        """Map a folded [start, end) span to the clean text span it came from."""
        if self._positions is None:
            self._positions = [m.start() for m in _KEEP.finditer(self.clean)]
        return self._positions[start], self._positions[end - 1] + 1
