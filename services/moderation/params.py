"""The `params` each rule kind takes, validated so a bad rule is a 422 naming the field."""

from __future__ import annotations

from typing import Annotated, Any, Literal

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


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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
    pattern: str = Field(min_length=1, max_length=MAX_PATTERN_LENGTH)

    _valid = field_validator("pattern")(_compile)


class LinksParams(_Params):
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
    kinds: list[MessageKind] = Field(min_length=1)


class QrCodeParams(_Params):
    pass


class FloodParams(_Params):
    max_messages: int = Field(ge=1, le=10_000)
    seconds: int = Field(ge=1, le=MAX_WINDOW_SECONDS)


class DuplicatesParams(_Params):
    max_repeats: int = Field(ge=1, le=10_000)
    seconds: int = Field(ge=1, le=MAX_WINDOW_SECONDS)


class MentionsParams(_Params):
    max_mentions: int = Field(ge=0, le=10_000)


class DisplayNameParams(_Params):
    pattern: str = Field(min_length=1, max_length=MAX_PATTERN_LENGTH)

    _valid = field_validator("pattern")(_compile)


class NewcomerParams(_Params):
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
