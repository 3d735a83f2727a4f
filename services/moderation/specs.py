"""What a rulebook reads and says: rule and policy specs, a subject and its context, a verdict.

Plain values, no I/O: the caller builds a Subject from an event and a Context from
what it looked up (window counts, join time); the rulebook answers with a Verdict.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from services.common.contracts.events import Event, MemberJoined, MemberUpdated, MessageCreated
from services.moderation.params import ReportsPolicy, parse_params

ACTION_RANK = {"flag": 0, "delete": 1, "warn": 2, "mute": 3, "kick": 4, "ban": 5}


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """A rule as the rulebook needs it."""

    id: str
    name: str
    kind: str
    params: Any
    action: str
    mute_seconds: int | None = None
    shadow: bool = False
    delete_message: bool = True

    @classmethod
    def of(
        cls,
        *,
        id: str,
        name: str,
        kind: str,
        params: dict[str, Any],
        action: str,
        mute_seconds: int | None = None,
        mode: str = "enforce",
        delete_message: bool = True,
    ) -> RuleSpec:
        """Build a spec from stored fields, parsing the params of its kind."""
        return cls(
            id,
            name,
            kind,
            parse_params(kind, params),
            action,
            mute_seconds,
            mode == "shadow",
            delete_message,
        )


@dataclass(frozen=True, slots=True)
class Step:
    strikes: int
    action: str
    mute_seconds: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"strikes": self.strikes, "action": self.action, "mute_seconds": self.mute_seconds}


@dataclass(frozen=True, slots=True)
class PolicySpec:
    """A group's escalation policy."""

    strike_window_days: int = 30
    ladder: tuple[Step, ...] = ()
    exempt_members: frozenset[str] = frozenset()
    notices: dict[str, str | None] = field(default_factory=dict, hash=False, compare=False)
    reports: ReportsPolicy | None = field(default=None, hash=False, compare=False)

    def step_for(self, strikes: int) -> Step | None:
        """Return the highest ladder step the strike count has reached, if any."""
        reached = [s for s in self.ladder if s.strikes <= strikes]
        return max(reached, key=lambda s: s.strikes) if reached else None


@dataclass(slots=True)
class Subject:
    """What is evaluated: a message, or a member's display name on join or rename."""

    type: str
    member_id: str
    occurred_at: datetime
    text: str = ""
    kind: str = "text"
    attachment_kinds: tuple[str, ...] = ()
    images: tuple[bytes, ...] = ()
    mentions: int = 0
    display_name: str | None = None
    check_name: bool = False

    @classmethod
    def of(cls, event: Event, *, name_changed: bool = False) -> Subject | None:
        """Build the subject of an event (None for events moderation does not judge)."""
        if isinstance(event, MessageCreated):
            data = event.data
            return cls(
                type=event.type,
                member_id=event.member_id,
                occurred_at=event.occurred_at,
                text=data.text,
                kind=data.kind,
                attachment_kinds=tuple(a.kind for a in data.attachments),
                images=tuple(c for a in data.attachments if (c := a.content())),
                mentions=len(set(data.mentions)),
                display_name=data.display_name,
                check_name=name_changed and data.display_name is not None,
            )
        if isinstance(event, MemberJoined | MemberUpdated):
            return cls(
                type=event.type,
                member_id=event.member_id,
                occurred_at=event.occurred_at,
                display_name=event.data.display_name,
                check_name=event.data.display_name is not None,
            )
        return None


@dataclass(slots=True)
class Context:
    """State the caller looked up: window counts per rule id (this event included), join time."""

    counts: dict[str, int] = field(default_factory=dict)
    joined_at: datetime | None = None


class Match(NamedTuple):
    """One matched rule of a verdict, with its evidence.

    A NamedTuple rather than a frozen dataclass: the rulebook makes one per matched rule
    in the hot loop, and a frozen dataclass's __init__ (one object.__setattr__ per field)
    cost 5-7 times as much.
    """

    rule_id: str
    kind: str
    evidence: str
    action: str
    mute_seconds: int | None
    shadow: bool
    name: str = ""
    delete_message: bool = True

    def as_dict(self) -> dict[str, str]:
        return {"rule_id": self.rule_id, "kind": self.kind, "evidence": self.evidence}


class Verdict(NamedTuple):
    """The rules an event matched; enforced ones decide the action.

    A NamedTuple like Match (made once per judged event that matched something); its
    truth is whether anything matched, not the tuple's length.
    """

    matched: tuple[Match, ...] = ()
    shadow_matched: tuple[Match, ...] = ()
    exempt: bool = False

    @property
    def action(self) -> str | None:
        """Return the strongest action of the enforced matches (or None)."""
        return strongest(m.action for m in self.matched)

    @property
    def shadow_action(self) -> str | None:
        return strongest(m.action for m in self.shadow_matched)

    @property
    def mute_seconds(self) -> int | None:
        """Return the longest duration among the matches that set the action."""
        action = self.action
        durations = [m.mute_seconds for m in self.matched if m.action == action]
        if action == "ban" and None in durations:
            return None
        return max((d for d in durations if d is not None), default=None)

    @property
    def deletes_message(self) -> bool:
        """Tell whether an enforced match deletes the judged message (its `delete_message`)."""
        return any(m.delete_message for m in self.matched)

    @property
    def strike(self) -> bool:
        """Tell whether the decision adds a strike (an enforced rule said warn)."""
        return any(m.action == "warn" for m in self.matched)

    def __bool__(self) -> bool:
        return bool(self.matched or self.shadow_matched)


def strongest(actions: Iterable[str]) -> str | None:
    """Return the strongest action (flag < delete < warn < mute < kick < ban)."""
    return max(actions, key=ACTION_RANK.__getitem__, default=None)
