"""What metrics reads of an event, decoded straight from the record's JSON.

The consumer needs nine fields of an event, not the typed model: validating every record
with the contract's pydantic models cost about as much CPU as kafka-python's fetch and
parse of it. `decode_facts` reads a record with orjson and checks, for the shapes the
services produce, everything the contract would (types, lengths, patterns, literals,
timestamps), so a record it accepts is exactly one the contract accepts, with the same
values. Anything else — a timestamp in another ISO form, attachments, an event type metrics
ignores, a field of the wrong type — goes through the kernel's `decode_record`, which
accepts it or raises InvalidEvent with the contract's own wording for the dead letter.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, TypeGuard

import orjson

from services.common.contracts.events import MAX_ID_LENGTH, MAX_TEXT_BYTES, Event
from services.common.kafka.consumer import decode_record

# What metrics applies of one event: group id, type, source, id, member id, occurred_at
# in epoch ms, `extra` — what the script takes after the day: the message id of a message,
# the channel and the inviter ("" for none) of a join, nothing otherwise — and the display
# name. A plain tuple: one is made per event, a NamedTuple's __new__ costs as much again.
Facts = tuple[str, str, str, str, str, int, tuple[str, ...], str | None]


def facts_of(event: Event) -> Facts:
    """Return the facts of a typed event."""
    data = event.data
    kind = event.type
    if kind == "message.created":
        extra: tuple[str, ...] = (data.message_id,)  # type: ignore[union-attr]
    elif kind == "member.joined":
        # The contract bounds `channel` (≤ 64 characters); an empty one counts as none.
        extra = (data.channel or "", data.invited_by or "")  # type: ignore[union-attr]
    else:
        extra = ()
    return (
        event.group_id,
        kind,
        event.source,
        event.id,
        event.member_id,
        int(event.occurred_at.timestamp() * 1000),
        extra,
        getattr(data, "display_name", None),
    )


# Timestamps taken here: RFC 3339 as the services write it (pydantic's `Z`, Python's
# `+00:00`), 1 to 6 fraction digits or none, years 1000-8999 (at the ends of the calendar
# the contract's conversion to UTC overflows). Of that form, fromisoformat accepts what
# pydantic accepts, as the same instant, once offset minutes above 59 are left out.
_OFFSET_MINUTE_TENS = frozenset("012345")
_YEAR_FIRST = frozenset("12345678")
_PATH_ID_BAD = re.compile(r"[/\x00-\x1f\x7f]")
_MESSAGE_KINDS = frozenset(
    ("text", "image", "link", "file", "voice", "video", "sticker", "card", "miniprogram", "other")
)
_JOIN_METHODS = frozenset(("invite", "link", "qrcode", "approval", "other"))
_LEAVE_REASONS = frozenset(("left", "removed"))
# Characters of text below which its UTF-8 form is surely within MAX_TEXT_BYTES.
_SURELY_SHORT_TEXT = MAX_TEXT_BYTES // 4
_NAME_LENGTH = 256
_fromisoformat = datetime.fromisoformat


def _ms(value: Any) -> int | None:
    """Epoch milliseconds of a timestamp string of the usual form, else None."""
    if type(value) is not str:
        return None
    if value[-1:] == "Z":
        end = len(value) - 1
    elif len(value) > 6 and value[-3] == ":" and value[-6] in "+-":
        if value[-2] not in _OFFSET_MINUTE_TENS:
            return None
        end = len(value) - 6
    else:
        return None
    if not (end == 19 or (20 < end <= 26 and value[19] == ".")):
        return None
    if value[0] not in _YEAR_FIRST or value[4] != "-" or value[7] != "-" or value[10] != "T":
        return None
    if value[13] != ":" or value[16] != ":":
        return None
    try:
        moment = _fromisoformat(value)  # checks the digits and the calendar
    except ValueError:
        return None
    return int(moment.timestamp() * 1000)  # as facts_of computes it from the typed event


def _is_id(value: Any) -> TypeGuard[str]:
    return type(value) is str and 0 < len(value) <= MAX_ID_LENGTH


# Group and member ids already found valid: a few hundred recur in every batch (bounded:
# the set is emptied when full).
_path_ids: set[str] = set()
_PATH_IDS_KEPT = 20_000


def _is_path_id(value: Any) -> TypeGuard[str]:
    if type(value) is not str:
        return False
    if value in _path_ids:
        return True
    if not (0 < len(value) <= MAX_ID_LENGTH) or _PATH_ID_BAD.search(value) is not None:
        return False
    if len(_path_ids) >= _PATH_IDS_KEPT:
        _path_ids.clear()
    _path_ids.add(value)
    return True


def _optional(value: Any, longest: int) -> bool:
    return value is None or (type(value) is str and len(value) <= longest)


def _message(data: Any) -> tuple[str, ...] | None:
    if type(data) is not dict:
        return None
    message_id = data.get("message_id")
    if not _is_id(message_id):
        return None
    for key, value in data.items():  # the other fields, only when present
        if key == "text":
            if type(value) is not str or len(value) > _SURELY_SHORT_TEXT:
                return None
        elif key == "kind":
            if type(value) is not str or value not in _MESSAGE_KINDS:
                return None
        elif key == "display_name":
            if not _optional(value, _NAME_LENGTH):
                return None
        elif key == "reply_to":
            if not _optional(value, MAX_ID_LENGTH):
                return None
        elif key == "mentions":
            if type(value) is not list or len(value) > 1000 or not all(map(_is_id, value)):
                return None
        elif key == "attachments" and value != []:  # attachments: left to the contract
            return None
    return (message_id,)


def _joined(data: Any) -> tuple[str, ...] | None:
    if type(data) is not dict:
        return None
    channel, inviter, method = data.get("channel"), data.get("invited_by"), data.get("method")
    if not (
        _optional(channel, 64)
        and _optional(inviter, MAX_ID_LENGTH)
        and _optional(data.get("display_name"), _NAME_LENGTH)
        and ("method" not in data or (type(method) is str and method in _JOIN_METHODS))
    ):
        return None
    return (channel or "", inviter or "")


def _left(data: Any) -> tuple[str, ...] | None:
    if type(data) is not dict:
        return None
    reason, by = data.get("reason", "left"), data.get("by")
    if type(reason) is str and reason in _LEAVE_REASONS and _optional(by, MAX_ID_LENGTH):
        return ()
    return None


def _updated(data: Any) -> tuple[str, ...] | None:
    if type(data) is dict and _optional(data.get("display_name"), _NAME_LENGTH):
        return ()
    return None


# Per event type: the check of its data, the data when absent (None: required), and whether
# its data has a display name (extra keys, ignored by the contract, are ignored here too).
_DATA: dict[Any, tuple[Any, dict[str, Any] | None, bool]] = {
    "message.created": (_message, None, True),
    "member.joined": (_joined, {}, True),
    "member.left": (_left, {}, False),
    "member.updated": (_updated, {}, True),
}


def lean_facts(value: bytes) -> Facts | None:
    """The facts of a record in one of the usual shapes; None for anything else."""
    try:
        body = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    if type(body) is not dict:
        return None
    kind: Any = body.get("type")
    check = _DATA.get(kind) if type(kind) is str else None
    if check is None:
        return None
    data: Any = body.get("data", check[1])
    extra = check[0](data)
    if extra is None:
        return None
    ts_ms = _ms(body.get("occurred_at"))
    received = body.get("received_at")
    if ts_ms is None or (received is not None and _ms(received) is None):
        return None
    event_id, source = body.get("id"), body.get("source")
    group_id, member_id = body.get("group_id"), body.get("member_id")
    if not (
        _is_id(event_id) and _is_id(source) and _is_path_id(group_id) and _is_path_id(member_id)
    ):
        return None
    name = data.get("display_name") if check[2] else None
    return (group_id, kind, source, event_id, member_id, ts_ms, extra, name)


def decode_facts(value: bytes | None) -> Facts:
    """Return a record's facts; raise InvalidEvent (the kernel's wording) for a bad record."""
    facts = lean_facts(value) if value is not None else None
    return facts if facts is not None else facts_of(decode_record(value))
