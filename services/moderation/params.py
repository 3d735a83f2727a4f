"""The `params` each rule kind takes, validated so a bad rule is a 422 naming the field."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

import regex
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from services.common.contracts.events import MessageKind
from services.common.text import fold, plain_form

RuleKind = Literal[
    "keywords",
    "regex",
    "links",
    "message_kinds",
    "qr_code",
    "flood",
    "duplicates",
    "mentions",
    "display_name",
    "newcomer",
]
RULE_KINDS: tuple[str, ...] = RuleKind.__args__  # type: ignore[attr-defined]

MAX_PATTERN_LENGTH = 500
MAX_KEYWORDS = 10_000
MAX_TERM_LENGTH = 100
MAX_WINDOW_SECONDS = 7 * 86400

Term = Annotated[str, Field(min_length=1, max_length=MAX_TERM_LENGTH)]


def _add_example(schema: dict[str, Any], cls: type) -> None:
    """Show a params model's `EXAMPLE` in its JSON schema (a pydantic `json_schema_extra`)."""
    schema["examples"] = [getattr(cls, "EXAMPLE", {})]


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=_add_example)
    EXAMPLE: ClassVar[dict[str, Any]] = {}


def _compile(pattern: str) -> str:
    try:
        regex.compile(plain_pattern(pattern))
    except (regex.error, OverflowError, RecursionError) as exc:
        raise ValueError(f"pattern does not compile: {exc}") from exc
    return pattern


def plain_pattern(pattern: str) -> str:
    """Return the pattern with Chinese converted as texts are (traditional to simplified)."""
    return plain_form(pattern)


class KeywordsParams(_Params):
    """keywords: terms matched after folding (`*` is a wildcard).

    An `allow` term overlapping a match cancels it; `word` matches whole terms only.
    """

    EXAMPLE: ClassVar[dict[str, Any]] = {
        "keywords": ["加微信", "加*vx", "刷单"],
        "allow": ["刷单是诈骗"],
        "match": "substring",
    }

    keywords: list[Term] = Field(min_length=1, max_length=MAX_KEYWORDS)
    allow: list[Term] = Field(default_factory=list, max_length=MAX_KEYWORDS)
    match: Literal["substring", "word"] = "substring"

    @field_validator("keywords")
    @classmethod
    def _foldable(cls, terms: list[str]) -> list[str]:
        for term in terms:
            if not any(fold(part) for part in term.split("*")):
                raise ValueError(f"term {term!r} has no letters or digits to match")
        return terms


class RegexParams(_Params):
    """regex: a pattern searched in the normalised text (traditional Chinese read as simplified)."""

    EXAMPLE: ClassVar[dict[str, Any]] = {"pattern": "v\\s*x\\s*[:：]?\\s*\\w{6,}"}

    pattern: str = Field(min_length=1, max_length=MAX_PATTERN_LENGTH)

    _valid = field_validator("pattern")(_compile)


class LinksParams(_Params):
    """links: URLs and bare domains; `allowed_domains` and their subdomains pass."""

    EXAMPLE: ClassVar[dict[str, Any]] = {"allowed_domains": ["qunyun.example", "github.com"]}

    allowed_domains: list[Annotated[str, Field(min_length=1, max_length=253)]] = Field(
        default_factory=list, max_length=1000
    )

    @field_validator("allowed_domains")
    @classmethod
    def _domains(cls, domains: list[str]) -> list[str]:
        cleaned = []
        for domain in domains:
            host = domain.strip().casefold().removeprefix("*.").strip(".")
            if not regex.fullmatch(r"[a-z0-9-]+(\.[a-z0-9-]+)*", host):
                raise ValueError(f"{domain!r} is not a domain name")
            cleaned.append(host)
        return cleaned


class MessageKindsParams(_Params):
    """message_kinds: message kinds the group does not allow."""

    EXAMPLE: ClassVar[dict[str, Any]] = {"kinds": ["miniprogram", "card"]}

    kinds: list[MessageKind] = Field(min_length=1)


class QrCodeParams(_Params):
    """qr_code: a QR code decoded from an image attachment (no params)."""

    EXAMPLE: ClassVar[dict[str, Any]] = {}


class FloodParams(_Params):
    """flood: more than `max_messages` messages within `seconds`."""

    EXAMPLE: ClassVar[dict[str, Any]] = {"max_messages": 5, "seconds": 10}

    max_messages: int = Field(ge=1, le=10_000)
    seconds: int = Field(ge=1, le=MAX_WINDOW_SECONDS)


class DuplicatesParams(_Params):
    """duplicates: the same text more than `max_repeats` times within `seconds`."""

    EXAMPLE: ClassVar[dict[str, Any]] = {"max_repeats": 3, "seconds": 60}

    max_repeats: int = Field(ge=1, le=10_000)
    seconds: int = Field(ge=1, le=MAX_WINDOW_SECONDS)


class MentionsParams(_Params):
    """mentions: more than `max_mentions` distinct members mentioned in one message."""

    EXAMPLE: ClassVar[dict[str, Any]] = {"max_mentions": 5}

    max_mentions: int = Field(ge=0, le=10_000)


class DisplayNameParams(_Params):
    """display_name: a pattern the display name must match, checked on join and rename."""

    EXAMPLE: ClassVar[dict[str, Any]] = {"pattern": "^[^微vV]*$"}

    pattern: str = Field(min_length=1, max_length=MAX_PATTERN_LENGTH)

    _valid = field_validator("pattern")(_compile)


class NewcomerParams(_Params):
    """newcomer: what members who joined less than `within_seconds` ago may not post.

    Messages of these `kinds`, and with `links` any message holding a link.
    """

    EXAMPLE: ClassVar[dict[str, Any]] = {
        "within_seconds": 7 * 86400,
        "kinds": ["image", "miniprogram"],
        "links": True,
    }

    within_seconds: int = Field(ge=1, le=365 * 86400)
    kinds: list[MessageKind] = Field(default_factory=list)
    links: bool = False


PARAMS: dict[str, type[_Params]] = {
    "keywords": KeywordsParams,
    "regex": RegexParams,
    "links": LinksParams,
    "message_kinds": MessageKindsParams,
    "qr_code": QrCodeParams,
    "flood": FloodParams,
    "duplicates": DuplicatesParams,
    "mentions": MentionsParams,
    "display_name": DisplayNameParams,
    "newcomer": NewcomerParams,
}


class InvalidParams(ValueError):
    """A rule's params do not fit its kind; `errors` are FastAPI-style details."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors))
        self.errors = errors


def validate_params(kind: str, params: Any) -> dict[str, Any]:
    """Return the params of a rule of this kind with defaults filled; raise InvalidParams."""
    try:
        model = PARAMS[kind].model_validate(params)
    except ValidationError as exc:
        raise InvalidParams(
            [
                {"loc": ["body", "params", *e["loc"]], "msg": e["msg"], "type": e["type"]}
                for e in exc.errors(include_url=False, include_context=False)
            ]
        ) from exc
    return model.model_dump(mode="json")


def parse_params(kind: str, params: dict[str, Any]) -> Any:
    """Return the typed params of a stored rule."""
    return PARAMS[kind].model_validate(params)


# --- policy: member reports (举报) ---------------------------------------------------

ReportAction = Literal["flag", "delete", "warn", "mute", "kick", "ban"]


class ReportsPolicy(BaseModel):
    """Member reports: a reply starting with a keyword reports the replied-to message.

    At `threshold` distinct reporters, `action` is applied to the message's author.
    """

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "examples": [{"keywords": ["举报", "/report"], "threshold": 3, "action": "delete"}]
        },
    )

    keywords: list[Term] = Field(
        min_length=1, max_length=100, description="A reply starting with one of these reports"
    )
    threshold: int = Field(ge=1, le=10_000, description="Distinct reporters that trigger it")
    action: ReportAction = Field(description="Applied to the reported message's author")
    mute_seconds: int | None = Field(
        default=None, ge=1, le=366 * 86400, description="For `mute` (600 when absent) or `ban`"
    )
    delete_message: bool = Field(
        default=True, description="Also delete the reported message (as rules do)"
    )

    @field_validator("keywords")
    @classmethod
    def _visible(cls, terms: list[str]) -> list[str]:
        cleaned = [t.strip() for t in terms]
        if not all(cleaned):
            raise ValueError("a report keyword cannot be blank")
        return cleaned
