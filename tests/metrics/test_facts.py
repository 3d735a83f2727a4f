"""The consumer's lean decoding agrees with the contract on every record it takes.

For each record — the usual shapes and many variations of every field (timestamps in other
ISO forms, ids with slashes or control characters, wrong types, lengths on both sides of
each bound, data the contract checks and metrics does not read) — decode_facts either gives
exactly the facts of the typed event, or raises InvalidEvent with the contract's message.
"""

from __future__ import annotations

import random
from typing import Any

import orjson
import pytest

from services.common.contracts.events import InvalidEvent, decode_event
from services.metrics.facts import decode_facts, facts_of, lean_facts

TIMESTAMPS = [
    "2026-11-30T21:37:19.123456+00:00",
    "2026-11-30T21:37:19Z",
    "2026-11-30T21:37:19.1Z",
    "2026-11-30T21:37:19.000999+05:30",
    "2026-11-30T21:37:19.999999-08:00",
    "2026-11-30T21:37:19.1234567Z",  # 7 digits: left to the contract
    "2026-11-30T21:37:19.Z",
    "2026-11-30T21:37:19+05:60",
    "2026-11-30T21:37:19+23:59",
    "2026-11-30T21:37:19-00:00",
    "2026-11-30T21:37:19+24:00",
    "2026-11-30T24:00:00Z",
    "2026-11-30T21:60:00Z",
    "2026-11-30T21:37:60Z",
    "2026-02-30T21:37:19Z",
    "2026-11-30 21:37:19Z",
    "2026-11-30t21:37:19z",
    "2026-11-30T21:37:19",
    "2026-11-30",
    "20261130T213719Z",
    "2026-11-30T21:37:19+0530",
    "1969-12-31T23:59:59.999999Z",
    "1000-01-01T00:00:00Z",
    "8999-12-31T23:59:59-01:00",
    "２０２６-11-30T21:37:19Z",
    "2026-11-30T21:37:19.12a4Z",
    "",
    None,
    1764538639,
    ["2026-11-30T21:37:19Z"],
]
IDS = ["e1", "x" * 256, "x" * 257, "", "a/b", "a\x1fb", "a\x7fb", "用户:1", 7, None, ["e1"], {}]
NAMES = [None, "", "名字", "n" * 256, "n" * 257, 3, ["x"]]


def _variants(rng: random.Random) -> dict[str, Any]:
    kind = rng.choice(
        ["message.created"] * 4
        + ["member.joined"] * 3
        + ["member.left", "member.updated", "member.join_requested", "nope", 5, None]
    )
    body: dict[str, Any] = {
        "id": rng.choice(IDS) if rng.random() < 0.2 else f"e{rng.randrange(10**6)}",
        "source": rng.choice(IDS) if rng.random() < 0.1 else "src",
        "group_id": rng.choice(IDS) if rng.random() < 0.2 else "telegram:-100123",
        "member_id": rng.choice(IDS) if rng.random() < 0.2 else "telegram:42",
        "occurred_at": rng.choice(TIMESTAMPS) if rng.random() < 0.6 else TIMESTAMPS[0],
        "type": kind,
    }
    if rng.random() < 0.2:
        body["received_at"] = rng.choice(TIMESTAMPS)
    data: dict[str, Any] = {}
    if kind == "message.created":
        data = {"message_id": rng.choice(IDS) if rng.random() < 0.2 else "m1"}
        options: dict[str, list[Any]] = {
            "text": ["hi", "", "字" * 16384, "字" * 16385, "a" * 65537, None, 5],
            "kind": ["text", "image", "bogus", None, ["text"]],
            "mentions": [[], ["u1"], ["u1", ""], ["x" * 257], None, "u1", ["u"] * 1001],
            "reply_to": [None, "m0", "x" * 257, 5],
            "display_name": NAMES,
            "attachments": [[], [{"kind": "image", "url": "http://x"}], [{"data": "!!"}], None],
            "extra_field": [1, None, {"a": [1, 2]}],
        }
    elif kind in ("member.joined", "member.updated", "member.left", "member.join_requested"):
        options = {
            "display_name": NAMES,
            "invited_by": [None, "", "telegram:7", "x" * 257, 9],
            "method": ["link", "invite", "bogus", None, 1],
            "channel": [None, "", "渠道A", "c" * 64, "c" * 65, 3],
            "reason": ["left", "removed", "kicked", None],
            "by": [None, "admin", "x" * 257],
            "request_ref": ["r1", "", None],
            "answer": ["", "a" * 1025],
        }
    else:
        options = {}
    for key, values in options.items():
        if rng.random() < 0.3:
            data[key] = rng.choice(values)
    roll = rng.random()
    if roll < 0.85:
        body["data"] = data
    elif roll < 0.92:
        body["data"] = rng.choice([None, [], "x", 1])
    return body


def _corpus() -> list[bytes]:
    rng = random.Random(19)
    records = [orjson.dumps(_variants(rng)) for _ in range(6000)]
    records += [b"", b"not json", b"[]", b"null", b'{"type": "message.created"}']
    records += [b'{"id":"a","id":"b","source":"s","group_id":"g","member_id":"m",'
                b'"occurred_at":"2026-11-30T12:00:00Z","type":"member.left"}']  # fmt: skip
    records += [b'{"id":"a","source":"s","group_id":"g","member_id":"m","x":1e400,'
                b'"occurred_at":"2026-11-30T12:00:00Z","type":"member.left"}']  # fmt: skip
    records += [b'{"id":"a","source":"s","group_id":"g","member_id":"m","x":"\\ud800",'
                b'"occurred_at":"2026-11-30T12:00:00Z","type":"member.left"}']  # fmt: skip
    return records


def test_lean_facts_are_the_typed_events_facts_and_refusals_keep_the_contracts_words():
    taken = refused = 0
    for value in _corpus():
        try:
            expected: Any = facts_of(decode_event(value))
        except InvalidEvent as exc:
            expected = exc
        lean = lean_facts(value)
        if lean is not None:
            taken += 1
            assert lean == expected, value
        if isinstance(expected, InvalidEvent):
            refused += 1
            with pytest.raises(InvalidEvent) as raised:
                decode_facts(value)
            assert str(raised.value) == str(expected)
        else:
            assert decode_facts(value) == expected
    # The corpus exercises both sides: most usual records are taken lean, many are refused.
    assert taken > 400 and refused > 2000, (taken, refused)


def test_a_record_without_a_value_is_refused_as_the_kernel_refuses_it():
    with pytest.raises(InvalidEvent, match="record has no value"):
        decode_facts(None)
