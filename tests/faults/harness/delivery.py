"""Delivery under SIGKILL: the size of the run, the moderation actions it streams, and what
the platform double and the receipts topic must show afterwards.

Every record acts on its own member or message in one of the run's Telegram groups, and
every notice text is unique, so each record's effect can be found in the double's call log
and group state. A call may be repeated only when its outcome was unknown: it timed out
(a `timeout` fault that applied the effect first) or a SIGKILL fell between it and the next
call for the same record. Anything else repeated is a call whose outcome was known.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tests.faults.harness.scale import current_scale
from tools.platform_double import Call, DoubleState

# (kind, share): delete+text deletes the ad and posts the notice as a reply.
KINDS = (("delete", 30), ("mute", 20), ("ban", 15), ("kick", 10), ("warn", 15), ("delete+text", 10))
CALLS_OF = {
    "delete": ("deleteMessage",),
    "mute": ("restrictChatMember",),
    "ban": ("banChatMember",),
    "kick": ("banChatMember", "unbanChatMember"),
    "warn": ("sendMessage",),
    "delete+text": ("deleteMessage", "sendMessage"),
}


@dataclass(frozen=True)
class DeliveryScale:
    """How big a delivery crash run is."""

    records: int
    groups: int
    stream_seconds: float
    kills: int
    post_timeouts: int
    ban_timeouts: int


SMALL = DeliveryScale(records=1000, groups=40, stream_seconds=9, kills=3,
                      post_timeouts=3, ban_timeouts=2)  # fmt: skip
LARGE = DeliveryScale(records=5000, groups=100, stream_seconds=40, kills=8,
                      post_timeouts=8, ban_timeouts=5)  # fmt: skip


def delivery_scale() -> DeliveryScale:
    """The scale QUNYUN_FAULTS_SCALE asks for (the convention of harness/scale.py)."""
    return LARGE if current_scale().name == "large" else SMALL


@dataclass(frozen=True)
class Planned:
    """One streamed record and the platform call keys that carry it out."""

    record: dict[str, Any]
    kind: str
    chat: str
    keys: tuple[tuple[str, str], ...]  # (method, key): user id, message id or text


def plan_records(*, seed: int, scale: DeliveryScale, source: str, chat_base: int) -> list[Planned]:
    """The run's moderation actions (the same seed gives the same records)."""
    rng = random.Random(seed)
    kinds, weights = zip(*KINDS, strict=True)
    planned = []
    for i in range(scale.records):
        kind = rng.choices(kinds, weights)[0]
        chat = str(-(chat_base + i % scale.groups))
        record_id = f"act-{seed}-{i:06d}"
        user, message = str(10_000_000 + i), str(1_000_000 + i)
        text = f"notice {record_id}" if kind in ("warn", "delete+text") else None
        record = {
            "id": record_id,
            "case_id": f"case-{record_id}",
            "group_id": f"telegram:{chat}",
            "source": source,
            "member_id": f"telegram:{user}",
            "event_id": f"evt-{record_id}",
            "message_id": message,
            "action": "delete" if kind == "delete+text" else kind,
            "duration_seconds": 600 if kind == "mute" else None,
            "rule_id": None,
            "reason": "fault test",
            "text": text,
            "message_at": datetime.now(UTC).isoformat(),
            "created_at": datetime.now(UTC).isoformat(),
        }
        key = {"deleteMessage": message, "sendMessage": text or ""}
        keys = tuple((m, key.get(m, user)) for m in CALLS_OF[kind])
        planned.append(Planned(record, kind, chat, keys))
    return planned


def call_key(call: Call) -> tuple[str, str, str] | None:
    """(chat, method, key) of a Telegram call, None for a call the run does not make."""
    body = call.body if isinstance(call.body, dict) else {}
    field_name = {"deleteMessage": "message_id", "sendMessage": "text"}.get(call.method, "user_id")
    if call.chat is None or field_name not in body:
        return None
    return call.chat, call.method, str(body[field_name])


def effect_seen(state: DoubleState, planned: Planned) -> bool:
    """Whether the fake group shows the record's effect."""
    group = state.group("telegram", planned.chat)
    user, message = planned.record["member_id"].split(":")[1], planned.record["message_id"]
    text = planned.record["text"]
    posted = text is None or any(p.text == text for p in group.posts())
    done = {
        "delete": message in group.messages and group.messages[message].deleted,
        "mute": group.muted(user),
        "ban": user in group.banned,
        "kick": user in group.removed and user not in group.banned,
        "warn": True,
        "delete+text": message in group.messages and group.messages[message].deleted,
    }[planned.kind]
    return bool(done and posted)


@dataclass
class CallAudit:
    """What the double's call log says about repeated calls."""

    missing: list[str] = field(default_factory=list)  # a record's call never made
    after_timeout: int = 0  # calls made again after a timeout (effect applied, no answer)
    after_kill: int = 0  # calls made again after a SIGKILL fell between call and outcome
    unexplained: list[str] = field(default_factory=list)  # repeated with a known outcome
    doubled_posts: int = 0  # notices the group shows twice (the outcome was unknown)
    timeouts: int = 0  # timeout faults played (effect applied, answer never came)


def _why_again(earlier: Call, later: Call, kills: list[float]) -> str | None:
    """Why a call was made again: its outcome was unknown (a timeout, a kill), else None."""
    if earlier.fault == "timeout":
        return "timeout"
    return "kill" if any(earlier.at <= k <= later.at for k in kills) else None


def audit_calls(state: DoubleState, planned: list[Planned], kills: list[float]) -> CallAudit:
    """Each record's calls made at least once; every repeat explained by an unknown outcome."""
    by_key: dict[tuple[str, str, str], list[Call]] = defaultdict(list)
    for call in state.calls_of("telegram"):
        if (key := call_key(call)) is not None:
            by_key[key].append(call)
    audit = CallAudit(timeouts=sum(c.fault == "timeout" for c in state.calls_of("telegram")))
    for p in planned:
        for method, key in p.keys:
            calls = sorted(by_key.get((p.chat, method, key), []), key=lambda c: c.at)
            if not calls:
                audit.missing.append(f"{p.record['id']} {method}")
            for earlier, later in zip(calls, calls[1:], strict=False):
                why = _why_again(earlier, later, kills)
                audit.after_timeout += why == "timeout"
                audit.after_kill += why == "kill"
                if why is None:
                    audit.unexplained.append(f"{p.record['id']} {method} {key}")
    posts = Counter(
        m.text for chat in {p.chat for p in planned} for m in state.group("telegram", chat).posts()
    )
    audit.doubled_posts = sum(n - 1 for n in posts.values() if n > 1)
    return audit
