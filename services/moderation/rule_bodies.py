"""The rule bodies of the REST API: what POST and PATCH take, and how OpenAPI shows them.

At run time a body is one model (`kind`, and `params` as an object) so that a bad rule is
a 422 naming `body.kind` or `body.params.<field>`: params.py checks the params against the
kind (for a PATCH without `kind`, against the rule's stored kind). The OpenAPI document
shows the same bodies as a oneOf with a discriminator on `kind`: one schema per kind, with
its typed params and an example. Those schemas are documentation only.
"""

from __future__ import annotations

from collections.abc import Callable
from copy import copy
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, GetJsonSchemaHandler, TypeAdapter, create_model
from pydantic import Field as PydField
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema
from sqlmodel import Field, SQLModel

from services.moderation.models import (
    ACTION_DOC,
    DELETE_MESSAGE_DOC,
    ENABLED_DOC,
    MAX_MUTE_SECONDS,
    MODE_DOC,
    MUTE_SECONDS_DOC,
    NAME_DOC,
    Action,
    Mode,
    RuleBase,
)
from services.moderation.params import PARAMS, RULE_KINDS, RuleKind

_SHARED = ("name", "action", "mute_seconds", "mode", "enabled", "delete_message")

# name, action and mute_seconds of each kind's example rule (params: the kind's EXAMPLE)
_EXAMPLE_RULES: dict[str, tuple[str, str, int | None]] = {
    "keywords": ("拉人加微信", "warn", None),
    "regex": ("微信号", "delete", None),
    "links": ("外链", "delete", None),
    "message_kinds": ("小程序和名片", "delete", None),
    "qr_code": ("二维码", "kick", None),
    "flood": ("刷屏", "mute", 600),
    "duplicates": ("重复消息", "mute", 300),
    "mentions": ("群发 @", "warn", None),
    "display_name": ("昵称带微信", "kick", None),
    "newcomer": ("新人七天内不发图和链接", "delete", None),
}


def example_rule(kind: str) -> dict[str, Any]:
    """Return the example rule of this kind (a POST body)."""
    name, action, mute_seconds = _EXAMPLE_RULES[kind]
    rule: dict[str, Any] = {"name": name, "kind": kind, "params": PARAMS[kind].EXAMPLE}
    rule["action"] = action
    if mute_seconds is not None:
        rule["mute_seconds"] = mute_seconds
    return rule


class RuleCreate(RuleBase):
    """A new rule: `params` must fit its `kind` (its fields per kind are in the OpenAPI schema)."""

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return _shown_as(cls, handler)


class RuleUpdate(SQLModel):
    """Fields to change; `params` is replaced as a whole and checked against the kind."""

    name: str | None = Field(default=None, min_length=1, max_length=200, description=NAME_DOC)
    kind: RuleKind | None = None
    params: dict[str, Any] | None = None
    action: Action | None = Field(default=None, description=ACTION_DOC)
    mute_seconds: int | None = Field(
        default=None, ge=1, le=MAX_MUTE_SECONDS, description=MUTE_SECONDS_DOC
    )
    mode: Mode | None = Field(default=None, description=MODE_DOC)
    enabled: bool | None = Field(default=None, description=ENABLED_DOC)
    delete_message: bool | None = Field(default=None, description=DELETE_MESSAGE_DOC)

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return _shown_as(cls, handler)


_DESCRIPTIONS = {
    "RuleCreate": "A new rule. `params` depend on `kind` (one schema per kind, each with an "
    "example); params that do not fit are a 422 naming `body.params.<field>`.",
    "RuleUpdate": "Fields to change; absent fields keep their value. With `kind`, the body is "
    "one of the schemas per kind and `params` (given, or else the stored ones) must fit the "
    "new kind; without `kind`, `params` must fit the rule's stored kind. `params` is replaced "
    "as a whole.",
}


def _shown_as(body: type[SQLModel], handler: GetJsonSchemaHandler) -> JsonSchemaValue:
    """The OpenAPI schema of a rule body: the union per kind that documents it."""
    shown = _CREATE_DOC if body is RuleCreate else _UPDATE_DOC
    schema = handler(shown.core_schema)
    schema["description"] = _DESCRIPTIONS[body.__name__]
    return schema


def _camel(kind: str) -> str:
    return "".join(part.title() for part in kind.split("_"))


def _doc_model(
    name: str, source: type[SQLModel], example: dict[str, Any], **own: Any
) -> type[BaseModel]:
    """A documentation model: `source`'s shared fields (name, action, …) and its own."""
    fields: dict[str, Any] = {
        n: (source.model_fields[n].annotation, copy(source.model_fields[n])) for n in _SHARED
    }
    doc = own.pop("doc")
    fields = {"name": fields.pop("name"), **own, **fields}
    config = ConfigDict(json_schema_extra={"examples": [example]})
    return create_model(name, __doc__=doc, __config__=config, **fields)


def _create_body(kind: str) -> type[BaseModel]:
    params_model = PARAMS[kind]
    needs_params = any(f.is_required() for f in params_model.model_fields.values())
    return _doc_model(
        f"{_camel(kind)}Rule",
        RuleCreate,
        example_rule(kind),
        doc=f"A `{kind}` rule.",
        kind=(Literal[kind], ...),  # type: ignore[valid-type]
        params=(params_model, PydField(... if needs_params else {})),
    )


def _update_body(kind: str) -> type[BaseModel]:
    params_model = PARAMS[kind]
    return _doc_model(
        f"{_camel(kind)}RuleUpdate",
        RuleUpdate,
        {"kind": kind, "params": params_model.EXAMPLE},
        doc=f"Changes to a rule that is or becomes a `{kind}` rule.",
        kind=(Literal[kind], ...),  # type: ignore[valid-type]
        params=(params_model | None, PydField(default=None, description="Replaced as a whole")),
    )


def _same_kind_body() -> type[BaseModel]:
    any_params: Any = Union[tuple(PARAMS.values())]  # noqa: UP007
    return _doc_model(
        "RuleUpdateSameKind",
        RuleUpdate,
        {"mode": "shadow"},
        doc="Changes to a rule that keeps its kind: `params` must fit the stored kind.",
        kind=(None, PydField(default=None, description="Absent or null: the kind stays")),
        params=(any_params | None, PydField(default=None, description="Replaced as a whole")),
    )


def _by_kind(body: Callable[[str], type[BaseModel]]) -> Any:
    members: Any = tuple(body(kind) for kind in RULE_KINDS)
    return Annotated[Union[members], PydField(discriminator="kind")]  # noqa: UP007


RULE_BODIES: dict[str, type[BaseModel]] = {kind: _create_body(kind) for kind in RULE_KINDS}
"""The documented body of each kind's rule (POST), keyed by kind."""

_CREATE_DOC: TypeAdapter[Any] = TypeAdapter(_by_kind(RULE_BODIES.__getitem__))
_UPDATE_DOC: TypeAdapter[Any] = TypeAdapter(
    Union[_by_kind(_update_body), _same_kind_body()]  # type: ignore[arg-type]  # noqa: UP007
)
