"""The event contract of topic community.events.v1: typed envelopes and their JSON form."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import orjson
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
)

MAX_TEXT_BYTES = 64 * 1024
MAX_ID_LENGTH = 256

Id = Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH)]
# Group and member ids appear as REST path segments, where "/" cannot be addressed
# (it is decoded before routing) and control characters are never meaningful.
PathId = Annotated[
    str, Field(min_length=1, max_length=MAX_ID_LENGTH, pattern=r"^[^/\x00-\x1f\x7f]+$")
]
MessageKind = Literal[
    "text", "image", "link", "file", "voice", "video", "sticker", "card", "miniprogram", "other"
]
JoinMethod = Literal["invite", "link", "qrcode", "approval", "other"]
LeaveReason = Literal["left", "removed"]
EventType = Literal[
    "message.created", "member.joined", "member.join_requested", "member.left", "member.updated"
]


def _as_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00 has no UTC time: bad input, not a crash
        raise ValueError("timestamp out of range in UTC") from None


Timestamp = Annotated[AwareDatetime, AfterValidator(_as_utc)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Attachment(_Model):
    kind: MessageKind = "file"
    url: str | None = Field(default=None, max_length=4096)
    name: str | None = Field(default=None, max_length=1024)
    data: str | None = None

    @field_validator("data")
    @classmethod
    def _base64(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise ValueError("data must be base64") from exc
        return value

    def content(self) -> bytes | None:
        """Return the decoded inline bytes, if any."""
        return base64.b64decode(self.data) if self.data is not None else None


class MessageData(_Model):
    message_id: Id
    text: str = ""
    kind: MessageKind = "text"
    mentions: list[Id] = Field(default_factory=list, max_length=1000)
    reply_to: str | None = Field(default=None, max_length=MAX_ID_LENGTH)
    display_name: str | None = Field(default=None, max_length=256)
    attachments: list[Attachment] = Field(default_factory=list, max_length=50)

    @field_validator("text")
    @classmethod
    def _text_size(cls, value: str) -> str:
        if len(value.encode("utf-8", "surrogatepass")) > MAX_TEXT_BYTES:
            raise ValueError(f"text is longer than {MAX_TEXT_BYTES} bytes")
        return value


class MemberJoinedData(_Model):
    display_name: str | None = Field(default=None, max_length=256)
    invited_by: str | None = Field(default=None, max_length=MAX_ID_LENGTH)
    method: JoinMethod = "other"
    # The acquisition channel: a Telegram invite link's name, a WeCom join way's `state`,
    # a generic source's own channel code.
    channel: str | None = Field(default=None, max_length=64)


class MemberJoinRequestedData(_Model):
    display_name: str | None = Field(default=None, max_length=256)
    # What the applicant wrote when asking to join (may be empty).
    answer: str = Field(default="", max_length=1024)
    # The platform's handle to approve or decline: Telegram `chat_id:user_id`, OneBot `flag`.
    request_ref: str = Field(min_length=1, max_length=MAX_ID_LENGTH)
    channel: str | None = Field(default=None, max_length=64)


class MemberLeftData(_Model):
    reason: LeaveReason = "left"
    by: str | None = Field(default=None, max_length=MAX_ID_LENGTH)


class MemberUpdatedData(_Model):
    display_name: str | None = Field(default=None, max_length=256)


class _Envelope(_Model):
    id: Id
    source: Id
    group_id: PathId
    member_id: PathId
    occurred_at: Timestamp
    received_at: Timestamp | None = None

    @property
    def dedup_key(self) -> str:
        """Return the (source, id) pair as one string."""
        return f"{self.source}\x1f{self.id}"


class MessageCreated(_Envelope):
    type: Literal["message.created"]
    data: MessageData


class MemberJoined(_Envelope):
    type: Literal["member.joined"]
    data: MemberJoinedData = Field(default_factory=MemberJoinedData)


class MemberJoinRequested(_Envelope):
    type: Literal["member.join_requested"]
    data: MemberJoinRequestedData


class MemberLeft(_Envelope):
    type: Literal["member.left"]
    data: MemberLeftData = Field(default_factory=MemberLeftData)


class MemberUpdated(_Envelope):
    type: Literal["member.updated"]
    data: MemberUpdatedData = Field(default_factory=MemberUpdatedData)


Event = Annotated[
    MessageCreated | MemberJoined | MemberJoinRequested | MemberLeft | MemberUpdated,
    Field(discriminator="type"),
]
EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)


class InvalidEvent(ValueError):
    """A record that is not a valid event of the contract."""


def parse_event(obj: Any) -> Event:
    """Validate a decoded JSON object as an event; raise pydantic's ValidationError."""
    return EVENT_ADAPTER.validate_python(obj)


def encode_event(event: Event) -> bytes:
    """Return the UTF-8 JSON form of an event as it goes on the topic."""
    return orjson.dumps(event.model_dump(mode="json"))


def decode_event(raw: bytes | None) -> Event:
    """Turn a record value into a typed event, or raise InvalidEvent saying why."""
    if raw is None:
        raise InvalidEvent("record has no value")
    try:
        return EVENT_ADAPTER.validate_json(raw)
    except ValidationError as exc:
        if exc.errors(include_url=False)[0]["type"] == "json_invalid":
            raise InvalidEvent(f"not JSON: {exc.errors()[0]['msg']}") from exc
        raise InvalidEvent(describe_errors(exc)) from exc


_EVENT_TYPES = frozenset(EventType.__args__)  # type: ignore[attr-defined]


def error_details(exc: ValidationError, prefix: tuple[str | int, ...] = ()) -> list[dict[str, Any]]:
    """List each error as FastAPI does (`loc`, `msg`, `type`), without the union's tag."""
    details = []
    for err in exc.errors(include_url=False):
        loc = list(err["loc"])
        if loc and loc[0] in _EVENT_TYPES:
            loc = loc[1:]
        if not loc and err["type"].startswith("union_tag"):
            loc = ["type"]
        details.append({"loc": [*prefix, *loc], "msg": err["msg"], "type": err["type"]})
    return details


def describe_errors(exc: ValidationError, prefix: tuple[str | int, ...] = ()) -> str:
    """Summarise a ValidationError as 'field.path: message; …'."""
    return "; ".join(
        f"{'.'.join(str(p) for p in d['loc'])}: {d['msg']}" for d in error_details(exc, prefix)
    )


def utcnow() -> datetime:
    """Return the current time, timezone-aware, in UTC."""
    return datetime.now(UTC)
