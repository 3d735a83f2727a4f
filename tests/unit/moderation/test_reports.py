"""What counts as a member report (举报): the keyword at the start of a reply, one that is not
the reporter's own message nor an exempt member's."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from services.common.contracts.events import parse_event
from services.moderation.params import ReportsPolicy
from services.moderation.reports import ReportedMessage, claim_of, counts, report_keyword
from services.moderation.specs import PolicySpec

KEYWORDS = ["举报", "/report"]
REPORTS = ReportsPolicy(keywords=KEYWORDS, threshold=3, action="delete")
POLICY = PolicySpec(exempt_members=frozenset({"admin"}), reports=REPORTS)
AT = datetime(2026, 12, 20, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "keyword"),
    [
        ("举报", "举报"),
        ("  举报 这是广告", "举报"),
        ("舉報！", "举报"),  # traditional reads as simplified
        ("/report spam", "/report"),
        ("/REPORT", "/report"),
        ("/report@qunyun_bot", "/report"),
        ("/reporter", None),  # a Latin keyword must end a word
        ("我要举报", None),  # not at the start
        ("", None),
    ],
)
def test_a_report_starts_with_a_keyword(text: str, keyword: str | None) -> None:
    assert report_keyword(text, KEYWORDS) == keyword


def reply(text: str, reply_to: str | None, member: str = "reporter", **data: Any) -> Any:
    return parse_event(
        {"id": "e1", "source": "tg", "type": "message.created", "group_id": "g",
         "member_id": member, "occurred_at": AT.isoformat(),
         "data": {"message_id": "m9", "text": text, "reply_to": reply_to, **data}}
    )  # fmt: skip


def test_only_a_reply_starting_with_a_keyword_is_a_claim() -> None:
    claim = claim_of(reply("举报 广告", "m1"), POLICY)
    assert claim is not None and (claim.message_id, claim.reporter_id) == ("m1", "reporter")
    assert claim_of(reply("举报 广告", None), POLICY) is None  # not a reply
    assert claim_of(reply("举报", "m9"), POLICY) is None  # a reply to itself
    assert claim_of(reply("谢谢", "m1"), POLICY) is None
    assert claim_of(reply("举报", "m1"), PolicySpec()) is None  # reports off


def test_self_reports_reports_of_exempt_members_and_unknown_messages_do_not_count() -> None:
    claim = claim_of(reply("举报", "m1"), POLICY)
    assert claim is not None
    assert counts(claim, ReportedMessage("spammer", AT))
    assert not counts(claim, ReportedMessage("reporter", AT))
    assert not counts(claim, ReportedMessage("admin", AT))
    assert not counts(claim, None)


@pytest.mark.parametrize(
    ("field", "value"),
    [("threshold", 0), ("threshold", -2), ("action", "nuke"), ("keywords", []),
     ("keywords", ["  "])],
)  # fmt: skip
def test_bad_report_settings_are_refused_naming_the_field(field: str, value: Any) -> None:
    body = {"keywords": KEYWORDS, "threshold": 3, "action": "delete", field: value}
    with pytest.raises(ValidationError) as info:
        ReportsPolicy.model_validate(body)
    assert info.value.errors()[0]["loc"][0] == field
