"""A rulebook alone (no server): what each rule kind catches and what it lets through."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.moderation.params import InvalidParams, validate_params
from services.moderation.rulebook import Rulebook
from services.moderation.specs import Context, PolicySpec, RuleSpec, Step, Subject
from tests.unit.moderation.images import qr_png

NOW = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)


def rule(
    kind: str,
    params: dict[str, Any],
    action: str = "delete",
    rule_id: str | None = None,
    mode: str = "enforce",
) -> RuleSpec:
    return RuleSpec.of(
        id=rule_id or f"r-{kind}",
        name=kind,
        kind=kind,
        params=validate_params(kind, params),
        action=action,
        mode=mode,
    )


def says(rulebook: Rulebook, text: str = "", **fields: Any) -> list[str]:
    context = fields.pop("context", None)
    subject = Subject(
        type="message.created",
        member_id=fields.pop("member", "m1"),
        occurred_at=NOW,
        text=text,
        **fields,
    )
    return [m.rule_id for m in rulebook.evaluate(subject, context).matched]


@pytest.fixture
def ads() -> Rulebook:
    return Rulebook(
        [rule("keywords", {"keywords": ["加微信", "vx", "代购", "加*信"], "allow": ["微信支付"]})]
    )


@pytest.mark.parametrize(
    "text",
    [
        "加微信 领福利",
        "加 微 信",
        "加.微.信",
        "加\u200b微\u200d信",
        "V❤X: abc123",
        "ｖｘ同号",
        "加個微信吧",
        "找我代購",
        "加我好友信息",
    ],
)
def test_keywords_catch_evasion_traditional_and_full_width(ads: Rulebook, text: str) -> None:
    assert says(ads, text) == ["r-keywords"]


@pytest.mark.parametrize(
    "text",
    ["今天练腿了", "用微信支付就行", "加油，信心满满" * 0 + "加油哦朋友们大家一起坚持写信", ""],
)
def test_keywords_let_ordinary_text_and_allowed_terms_through(ads: Rulebook, text: str) -> None:
    assert says(ads, text) == []


def test_whole_term_keywords_respect_latin_word_boundaries() -> None:
    rulebook = Rulebook([rule("keywords", {"keywords": ["vx", "sb"], "match": "word"})])
    assert says(rulebook, "加我 vx 123") == ["r-keywords"]
    assert says(rulebook, "有事找我vx") == ["r-keywords"]
    assert says(rulebook, "vxworks is an RTOS") == []
    assert says(rulebook, "usb cable") == []


def test_wildcard_gap_is_bounded() -> None:
    rulebook = Rulebook([rule("keywords", {"keywords": ["加*信"]})])
    assert says(rulebook, "加一下信") == ["r-keywords"]
    assert says(rulebook, "加" + "油" * 20 + "信") == []


def test_regex_rule_runs_on_simplified_text() -> None:
    rulebook = Rulebook([rule("regex", {"pattern": r"\d{5,}\s*元"})])
    assert says(rulebook, "只要 99999 元") == ["r-regex"]
    assert says(rulebook, "只要 99 元") == []


def test_links_catch_urls_and_bare_domains_but_not_allowed_ones() -> None:
    rulebook = Rulebook([rule("links", {"allowed_domains": ["example.org"]})])
    for text in [
        "看 https://spam.cn/x",
        "abc.com/x",
        "t.cn/xyz",
        "ｗｗｗ．ｓｐａｍ．ｃｏｍ",
        "加我abc。com",
    ]:
        assert says(rulebook, text) == ["r-links"], text
    for text in ["https://docs.example.org/a", "example.org", "邮箱 a@qq.com", "file.txt 好"]:
        assert says(rulebook, text) == [], text


def test_message_kinds_rule_checks_message_and_attachment_kinds() -> None:
    rulebook = Rulebook([rule("message_kinds", {"kinds": ["miniprogram", "card"]})])
    assert says(rulebook, kind="miniprogram") == ["r-message_kinds"]
    assert says(rulebook, kind="text", attachment_kinds=("card",)) == ["r-message_kinds"]
    assert says(rulebook, "你好", kind="image") == []


def test_qr_codes_are_decoded_and_their_text_checked_by_links_and_keywords() -> None:
    rulebook = Rulebook(
        [
            rule("qr_code", {}, action="delete"),
            rule("links", {"allowed_domains": ["example.org"]}, action="warn"),
            rule("keywords", {"keywords": ["加微信"]}, action="mute"),
        ]
    )
    spam = qr_png("https://spam.example.com/join")
    assert says(rulebook, images=(spam,)) == ["r-qr_code", "r-links"]
    assert says(rulebook, images=(qr_png("加微信 abc"),)) == ["r-qr_code", "r-keywords"]
    only_links = Rulebook([rule("links", {"allowed_domains": ["example.org"]})])
    assert says(only_links, images=(qr_png("https://example.org/ok"),)) == []
    assert says(only_links, images=(spam,)) == ["r-links"]
    assert says(rulebook, images=(b"not an image",)) == []


def test_mentions_rule_counts_distinct_mentions() -> None:
    rulebook = Rulebook([rule("mentions", {"max_mentions": 2})])
    assert says(rulebook, "hi", mentions=3) == ["r-mentions"]
    assert says(rulebook, "hi", mentions=2) == []
    assert says(rulebook, "@a @b @c 看这里") == ["r-mentions"]


def test_flood_and_duplicates_read_window_counts_from_the_context() -> None:
    flood = rule("flood", {"max_messages": 3, "seconds": 10})
    dup = rule("duplicates", {"max_repeats": 2, "seconds": 60})
    rulebook = Rulebook([flood, dup])
    assert says(rulebook, "x", context=Context(counts={flood.id: 4, dup.id: 1})) == ["r-flood"]
    assert says(rulebook, "x", context=Context(counts={flood.id: 3, dup.id: 3})) == ["r-duplicates"]


def test_newcomer_rule_applies_only_within_its_time() -> None:
    rulebook = Rulebook(
        [rule("newcomer", {"within_seconds": 3600, "kinds": ["image"], "links": True})]
    )
    fresh = Context(joined_at=NOW - timedelta(minutes=5))
    old = Context(joined_at=NOW - timedelta(hours=2))
    assert says(rulebook, "看 abc.com", context=fresh) == ["r-newcomer"]
    assert says(rulebook, "", kind="image", context=fresh) == ["r-newcomer"]
    assert says(rulebook, "你好", context=fresh) == []
    assert says(rulebook, "看 abc.com", context=old) == []
    assert says(rulebook, "看 abc.com", context=Context()) == []


def test_display_name_must_match_on_join_and_rename() -> None:
    rulebook = Rulebook([rule("display_name", {"pattern": r"[^-]+-[^-]+-[^-]+"}, action="warn")])

    def named(name: str, kind: str = "member.joined") -> list[str]:
        subject = Subject(
            type=kind, member_id="m", occurred_at=NOW, display_name=name, check_name=True
        )
        return [m.rule_id for m in rulebook.evaluate(subject).matched]

    assert named("小美-上海-油皮") == []
    assert named("小美－上海－油皮") == []  # full-width hyphens fold to ASCII
    assert named("小美") == ["r-display_name"]
    assert named("广告号", "member.updated") == ["r-display_name"]


def test_strongest_action_wins_and_every_rule_is_listed_shadow_apart() -> None:
    rulebook = Rulebook(
        [
            rule("keywords", {"keywords": ["代购"]}, action="warn", rule_id="a"),
            rule("links", {}, action="mute", rule_id="b"),
            rule("regex", {"pattern": "代购"}, action="ban", rule_id="c", mode="shadow"),
        ]
    )
    verdict = rulebook.evaluate(
        Subject(type="message.created", member_id="m", occurred_at=NOW, text="代购 abc.com")
    )
    assert [m.rule_id for m in verdict.matched] == ["a", "b"]
    assert verdict.action == "mute" and verdict.strike
    assert [m.rule_id for m in verdict.shadow_matched] == ["c"]


def test_exempt_members_are_never_judged(ads: Rulebook) -> None:
    rulebook = Rulebook(ads.rules, PolicySpec(exempt_members=frozenset({"admin"})))
    assert says(rulebook, "加微信", member="admin") == []
    assert says(rulebook, "加微信", member="m2") == ["r-keywords"]


def test_ladder_step_is_the_highest_reached() -> None:
    policy = PolicySpec(ladder=(Step(2, "mute", 600), Step(3, "kick")))
    assert policy.step_for(1) is None
    assert policy.step_for(2) == Step(2, "mute", 600)
    assert policy.step_for(5) == Step(3, "kick")


@pytest.mark.parametrize(
    ("kind", "params", "field"),
    [
        ("regex", {"pattern": "(unclosed"}, "pattern"),
        ("regex", {"pattern": "a" * 501}, "pattern"),
        ("keywords", {"keywords": []}, "keywords"),
        ("keywords", {"keywords": ["❤❤"]}, "keywords"),
        ("flood", {"max_messages": 0, "seconds": 10}, "max_messages"),
        ("links", {"allowed_domains": ["not a domain"]}, "allowed_domains"),
        ("message_kinds", {"kinds": ["hologram"]}, "kinds"),
        ("qr_code", {"unexpected": 1}, "unexpected"),
    ],
)
def test_bad_params_name_the_field(kind: str, params: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidParams) as caught:
        validate_params(kind, params)
    assert caught.value.errors[0]["loc"][:3] == ["body", "params", field]


def test_allowed_terms_do_not_hide_a_later_real_match(ads: Rulebook) -> None:
    assert says(ads, "微信支付" * 2000) == []
    assert says(ads, "微信支付" * 2000 + "加微信") == ["r-keywords"]
    evidence = (
        ads.evaluate(
            Subject(
                type="message.created", member_id="m", occurred_at=NOW, text="加" * 500 + "个信"
            )
        )
        .matched[0]
        .evidence
    )
    assert evidence.endswith("加个信") and len(evidence) <= 3 + 8  # bounded gap


# The fast paths of the hot loop (a regex class standing for "may change under NFKC/t2s",
# pure-ASCII texts, already-alphanumeric texts, the kinds precheck) must give exactly
# what the full folding and the full rule loops give (the folding's own: tests/unit/common).


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("add me on V.X now", ["r-keywords"]),  # ASCII with evasion
        ("加😊微😊信", ["r-keywords"]),  # emoji between the characters
        ("找我代購，謝謝", ["r-keywords"]),  # traditional
        ("ｖ　ｘ同号", ["r-keywords"]),  # full-width letters and space
        ("𝐯𝐱 123", ["r-keywords"]),  # mathematical bold letters
        ("加\u200b微\u200d信", ["r-keywords"]),  # zero-width joiners
        ("cafe\u0301 👍", []),  # combining mark, nothing to catch
        ("call me, ok?", []),
    ],
)
def test_fast_paths_keep_keyword_results(text: str, expected: list[str]) -> None:
    rulebook = Rulebook([rule("keywords", {"keywords": ["加微信", "vx", "代购"]})])
    assert says(rulebook, text) == expected


def test_regex_and_links_see_the_folded_forms_of_every_fast_path() -> None:
    rulebook = Rulebook(
        [
            rule("regex", {"pattern": r"1[3-9]\d{9}"}, rule_id="phone"),
            rule("links", {"allowed_domains": ["example.org"]}, rule_id="links"),
        ]
    )
    assert says(rulebook, "call 13800138000") == ["phone"]  # ASCII
    assert says(rulebook, "電話１３８００１３８０００") == ["phone"]  # full-width digits
    assert says(rulebook, "看 ｓｐａｍ。ｃｏｍ") == ["links"]  # full-width, ideographic dot
    assert says(rulebook, "see spam.com 😊") == ["links"]  # emoji path
    assert says(rulebook, "docs at example.org") == []
    assert says(rulebook, "价格 138 元。好") == []


def test_kinds_precheck_keeps_every_rule_and_its_evidence() -> None:
    rulebook = Rulebook(
        [
            rule("message_kinds", {"kinds": ["miniprogram"]}, rule_id="mini"),
            rule("message_kinds", {"kinds": ["card", "miniprogram"]}, rule_id="both"),
        ]
    )
    subject = Subject(
        type="message.created",
        member_id="m1",
        occurred_at=NOW,
        kind="text",
        attachment_kinds=("image", "card"),
    )
    verdict = rulebook.evaluate(subject)
    assert [(m.rule_id, m.evidence) for m in verdict.matched] == [("both", "kind card")]
    assert says(rulebook, kind="miniprogram") == ["mini", "both"]
    assert says(rulebook, "你好", kind="image", attachment_kinds=("image",)) == []


@pytest.mark.parametrize(
    ("pattern", "ignore_case", "required"),
    [
        (r"1[3-9]\d{9}", True, "1"),
        (r"\d{5,}\s*元", True, "元"),
        (r"(?:微信|vx)号", True, "号"),
        ("abc", True, ""),  # letters have case: any of several characters may match
        ("abc", False, "a"),
        ("(?i)abc", False, ""),
        ("(x)?y", False, "y"),
        ("x*y?", False, ""),
        ("a|b", False, ""),
        ("(?=x)y", False, ""),
        ("(?:abc){e<=1}", False, ""),  # fuzzy matching in `regex`: no literal is certain
        ("[[:alpha:]x]", False, ""),  # a POSIX class in `regex`, a literal x in `re`
    ],
)
def test_regex_required_character_is_only_claimed_when_certain(
    pattern: str, ignore_case: bool, required: str
) -> None:
    from services.moderation.patterns import required_character

    assert required_character(pattern, ignore_case=ignore_case) == required


def test_regex_precheck_never_hides_a_match() -> None:
    rulebook = Rulebook(
        [
            rule("regex", {"pattern": r"1[3-9]\d{9}"}, rule_id="phone"),
            rule("regex", {"pattern": r"(?:微信|vx)号"}, rule_id="id"),
        ]
    )
    assert says(rulebook, "手机１３９１２３４５６７８") == ["phone"]  # the 1 comes from NFKC
    assert says(rulebook, "我的VX号是多少") == ["id"]
    assert says(rulebook, "没有数字也没有那个字") == []


def test_url_hosts_read_like_urlsplit() -> None:
    from urllib.parse import urlsplit

    from services.moderation.links import _url_host

    for link in [
        "http://a.cn/x",
        "https://user:pw@Shop.Example.cn:8080/item?id=1",
        "http://x.cn?q=1#f",
        "ftp://[::1]:21/a",
        "http://[bad/x",
        "http://例子.cn/x",
        "http://a：b.cn/x",
        "http://a.cn%25eth0/x",
        "http://",
    ]:
        try:
            expected = urlsplit(link).hostname or ""
        except ValueError:
            expected = ""
        assert _url_host(link) == expected, link


# The keyword resolution's shortcuts (one rule's whole terms: the earliest hit; a wildcard
# whose segments each occur once: no search) and the verdict built from the matched rules
# only must say what the general paths say.


@pytest.mark.parametrize(
    ("text", "evidence"),
    [
        ("先代购 再加微信", "代购"),  # whole terms only: the earliest hit
        ("加 微 信 和 vx", "加 微 信"),  # the earliest, mapped back over the spaces
        ("加个微信", "加个微信"),  # a wildcard's segments once each, in order
        ("信然后加", None),  # segments out of order
        ("加" + "一" * 9 + "信", None),  # a gap longer than MAX_GAP
        ("加一加二信", "加一加二信"),  # a segment twice: the general search, first start
        ("用微信支付", None),  # the allow-term overlaps the hit
        ("用微信支付，加微信", "加微信"),  # ...but not a later one
    ],
)
def test_keyword_shortcuts_give_the_general_evidence(text: str, evidence: str | None) -> None:
    rulebook = Rulebook(
        [rule("keywords", {"keywords": ["加微信", "vx", "代购", "加*信"], "allow": ["微信支付"]})]
    )
    verdict = rulebook.evaluate(
        Subject(type="message.created", member_id="m", occurred_at=NOW, text=text)
    )
    assert [m.evidence for m in verdict.matched] == ([evidence] if evidence else [])


def test_whole_word_rules_never_take_the_earliest_hit_shortcut() -> None:
    rulebook = Rulebook([rule("keywords", {"keywords": ["vx", "wx"], "match": "word"})])
    assert says(rulebook, "vxworks wx") == ["r-keywords"]
    verdict = rulebook.evaluate(
        Subject(type="message.created", member_id="m", occurred_at=NOW, text="vxworks wx")
    )
    assert verdict.matched[0].evidence == "wx"


def test_verdicts_list_matches_in_rule_order_and_are_false_when_empty() -> None:
    rulebook = Rulebook(
        [
            rule("regex", {"pattern": "abc"}, rule_id="first", action="flag"),
            rule("keywords", {"keywords": ["abc"]}, rule_id="second", action="ban"),
            rule("links", {}, rule_id="third", action="mute", mode="shadow"),
        ]
    )
    verdict = rulebook.evaluate(
        Subject(type="message.created", member_id="m", occurred_at=NOW, text="abc x.com")
    )
    assert [m.rule_id for m in verdict.matched] == ["first", "second"]
    assert [m.rule_id for m in verdict.shadow_matched] == ["third"]
    assert verdict and verdict.action == "ban"
    clear = rulebook.evaluate(
        Subject(type="message.created", member_id="m", occurred_at=NOW, text="nothing")
    )
    assert not clear and clear.action is None and not clear.exempt


def test_rules_sharing_an_id_each_give_a_match() -> None:
    rulebook = Rulebook(
        [
            rule("keywords", {"keywords": ["代购"]}, rule_id="same", action="warn"),
            rule("regex", {"pattern": "代购"}, rule_id="same", action="mute"),
        ]
    )
    verdict = rulebook.evaluate(
        Subject(type="message.created", member_id="m", occurred_at=NOW, text="代购")
    )
    assert [(m.rule_id, m.action) for m in verdict.matched] == [("same", "warn"), ("same", "mute")]
