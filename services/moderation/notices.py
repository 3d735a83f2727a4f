"""Notices: the policy's templates posted in the group with an action, and their rendering.

A template may use `{member}` (`@<display name>`, or `@<member id>` when no name is
known; the member then goes into the action's `mentions`, the name into its
`mention_names`, and delivery turns that `@name` into the platform's mention),
`{reason}` (the rule's name or the manual reason), `{strikes}`, `{duration}` (Chinese,
e.g. `10 分钟`) and `{code}` (newcomer verification). An absent or empty template posts
nothing, except `verify`, which has a default. `notice_for(notices, action, facts)` is
the one call for what to post with an action (newcomer verification: action `verify`,
`facts.code` the member's code). Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from string import Formatter
from typing import Any

from pydantic import field_validator
from sqlmodel import Field, SQLModel

from services.common.text import chinese_duration

PLACEHOLDERS = ("member", "reason", "strikes", "duration", "code")
NOTICE_ACTIONS = ("warn", "mute", "kick", "ban", "verify")
DEFAULT_VERIFY = "欢迎 {member}！请在群里发送验证码 {code} 完成入群验证，验证前暂时禁言。"
TEMPLATE_DOC = "Posted with the action; placeholders {member} {reason} {strikes} {duration} {code}"


def placeholders(template: str) -> list[str]:
    """Return the placeholder names of a template; raise ValueError for a malformed one."""
    names: list[str] = []
    for _literal, name, spec, conversion in Formatter().parse(template):
        if name is None:
            continue
        if name not in PLACEHOLDERS or spec or conversion:
            shown = "{" + name + (f"!{conversion}" if conversion else "")
            shown += (f":{spec}" if spec else "") + "}"
            known = ", ".join("{" + p + "}" for p in PLACEHOLDERS)
            raise ValueError(f"unknown placeholder {shown} (known: {known})")
        names.append(name)
    return names


def check_template(template: str | None) -> str | None:
    """Validate a template: ValueError names an unknown placeholder or a stray brace."""
    if template is None:
        return None
    try:
        placeholders(template)
    except ValueError as exc:
        if "placeholder" in str(exc):
            raise
        raise ValueError(f"not a valid template: {exc} (write {{{{ and }}}} for braces)") from None
    return template


class Notices(SQLModel):
    """Templates per action; absent or empty posts nothing (verify has a default)."""

    warn: str | None = Field(default=None, max_length=1000, description=TEMPLATE_DOC)
    mute: str | None = Field(default=None, max_length=1000, description=TEMPLATE_DOC)
    kick: str | None = Field(default=None, max_length=1000, description=TEMPLATE_DOC)
    ban: str | None = Field(default=None, max_length=1000, description=TEMPLATE_DOC)
    verify: str | None = Field(default=None, max_length=1000, description=TEMPLATE_DOC)

    @field_validator("warn", "mute", "kick", "ban", "verify")
    @classmethod
    def _known_placeholders(cls, template: str | None) -> str | None:
        return check_template(template)


def template_for(notices: dict[str, Any], action: str) -> str | None:
    """The template posted with `action`, or None (verify falls back to its default)."""
    template = notices.get(action) or None
    if action == "verify" and template is None:
        return DEFAULT_VERIFY
    return template


@dataclass(frozen=True, slots=True)
class NoticeFacts:
    """What a notice may say about its action."""

    member_id: str
    display_name: str | None
    reason: str
    strikes: int
    duration_seconds: int | None
    code: str = ""


@dataclass(frozen=True, slots=True)
class Notice:
    """A rendered notice: its text, the members it mentions and the names it uses for them
    (member id → display name; a member named `@<member id>` has none)."""

    text: str
    mentions: tuple[str, ...]
    mention_names: dict[str, str] = field(default_factory=dict)


def render(template: str | None, facts: NoticeFacts) -> Notice | None:
    """Fill a template; None when there is nothing to post."""
    if not template:
        return None
    names = placeholders(template)
    values = {
        "member": "@" + (facts.display_name or facts.member_id),
        "reason": facts.reason,
        "strikes": str(facts.strikes),
        "duration": chinese_duration(facts.duration_seconds),
        "code": facts.code,
    }
    text = template.format_map(values)
    if "member" not in names:
        return Notice(text=text, mentions=())
    named = {facts.member_id: facts.display_name} if facts.display_name else {}
    return Notice(text=text, mentions=(facts.member_id,), mention_names=named)


def notice_for(notices: dict[str, Any], action: str, facts: NoticeFacts) -> Notice | None:
    """The notice the policy's `notices` post with `action` (verify: its default when unset),
    or None when there is nothing to post."""
    return render(template_for(notices, action), facts)
