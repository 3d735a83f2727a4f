"""Text folding alone: the forms moderation's rules and campaigns' keywords match on."""

from __future__ import annotations

import unicodedata

import pytest

from services.common import text as folding
from services.common.text import Text, fold, forms, plain_form


@pytest.mark.parametrize(
    ("raw", "folded"),
    [
        ("加微信", "加微信"),
        ("加 微 信", "加微信"),  # spacing evasion
        ("加.微.信", "加微信"),  # symbol evasion
        ("加\u200b微\u200d信", "加微信"),  # zero-width characters
        ("V❤X", "vx"),  # a symbol between letters, case folded
        ("ｖｘ", "vx"),  # full-width letters (NFKC)
        ("𝐯𝐱", "vx"),  # mathematical bold letters (NFKC)
        ("加個微信", "加个微信"),  # traditional to simplified
        ("找我代購", "找我代购"),
        ("STRASSE", "strasse"),
        ("Straße", "strasse"),  # casefold, not lower
        ("❤❤", ""),  # nothing left to match
    ],
)
def test_fold_reads_evasions_as_the_plain_term(raw: str, folded: str) -> None:
    assert fold(raw) == folded
    assert Text(raw).folded == folded


def test_plain_form_keeps_case_spacing_and_cjk_punctuation() -> None:
    assert plain_form("Hello World") == "Hello World"
    assert plain_form("ＡＢＣ　１２３") == "ABC　123"  # the ideographic space is kept
    assert plain_form("你好，謝謝！") == "你好，谢谢！"
    assert plain_form("a\u00adb\ufeffc") == "abc"  # invisible format characters dropped


def test_clean_span_maps_a_folded_match_back_to_the_clean_text() -> None:
    text = Text("请 加.微.信 谢谢")
    start = text.folded.index("加微信")
    begin, end = text.clean_span(start, start + 3)
    assert text.clean[begin:end] == "加.微.信"


def test_fast_change_check_covers_every_character_the_folding_changes() -> None:
    missed = [ch for ch in folding._CHANGED if folding._MAY_CHANGE(ch) is None]
    assert missed == []


@pytest.mark.parametrize(
    "text",
    [
        "plain ascii v.x and V X",  # ASCII: no table, no NFKC
        "加個微信吧，謝謝",  # traditional: t2s through the table
        "ＶＸ１３８",  # full-width: NFKC through the table
        "𝐯𝐱 and 🅥🅧",  # non-BMP letters NFKC changes
        "加😊微😊信🌹",  # emoji: non-BMP, matched by the coarse class, changed by nothing
        "cafe\u0301 가\u11a8",  # combining marks: full NFKC composes them
        "加\u200b微\ufeff信",  # invisible characters removed
        "今天练腿了",  # already letters only
        "",
    ],
)
def test_text_forms_equal_the_slow_path(text: str) -> None:
    form = Text(text)
    table = folding._TABLE
    slow = text.translate(table)  # every character through the table, no check first
    if not folding._COMBINING.isdisjoint(text):
        slow = unicodedata.normalize("NFKC", slow).translate(table)
    assert form.plain == slow
    assert form.clean == slow.casefold()
    assert form.folded == folding._DROP.sub("", slow.casefold())
    assert form.folded == fold(text)


@pytest.mark.parametrize(
    "text",
    ["plain ascii v.x", "加個微信吧，謝謝", "ＶＸ１３８", "cafe\u0301 가\u11a8", "今天练腿了", ""],
)
def test_forms_are_what_a_text_holds(text: str) -> None:
    form = Text(text)
    assert forms(text) == (form.plain, form.clean, form.folded)
    again = Text.of(*forms(text))
    assert (again.plain, again.clean, again.folded) == (form.plain, form.clean, form.folded)


def test_clean_span_maps_every_folded_span_like_a_position_table() -> None:
    # The position of each kept character, the reference clean_span is an optimisation of.
    for raw in ["请 加.微.信 谢谢", "..a..b..", "加😊微😊信🌹", "a_b-c d", "Straße ß!", "İi x"]:
        text = Text(raw)
        kept = [i for i, ch in enumerate(text.clean) if ch.isalnum()]
        assert len(kept) == len(text.folded)
        for start in range(len(kept)):
            for end in range(start + 1, len(kept) + 1):
                assert text.clean_span(start, end) == (kept[start], kept[end - 1] + 1), (
                    raw,
                    start,
                    end,
                )
