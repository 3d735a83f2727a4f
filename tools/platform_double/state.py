"""What the platform double remembers: fake groups, the calls it saw, the faults to play.

Everything is guarded by one lock: the server runs in its own thread and tests read the
state from theirs.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from starlette.responses import Response

FaultKind = Literal["rate_limit", "error", "timeout", "forbidden"]
# How the OneBot implementation behind the double answers what it refuses (onebot.py).
OneBotFlavour = Literal["spec", "napcat", "go-cqhttp", "lagrange"]


@dataclass(frozen=True)
class DoubleConfig:
    """The credentials the double accepts, and how strict it is about unknown targets.

    Lenient (the default, for `make demo`): a message or member the double never saw is
    taken to exist, since the traffic that created it never reached the double. Strict
    answers the platform's own "not found" errors.
    """

    telegram_token: str = "123456:TEST-TOKEN"
    slack_bot_token: str = "xoxb-test-bot"
    slack_user_token: str = "xoxp-test-admin"
    slack_bot_user: str = "UBOT"
    feishu_app_id: str = "cli_test"
    feishu_app_secret: str = "feishu-secret"
    feishu_token_ttl: float = 7200.0
    onebot_token: str = "onebot-token"
    onebot_flavour: OneBotFlavour = "spec"
    onebot_missing: frozenset[str] = frozenset()  # actions this implementation lacks
    wecom_corp_id: str = "ww_test_corp"
    wecom_secret: str = "wecom-secret"
    wecom_token_ttl: float = 7200.0
    # The staff the app may act for (its 可见范围); None: everyone. A group owner or sender
    # outside it gets 60011, as WeCom answers.
    wecom_visible: frozenset[str] | None = None
    strict: bool = False


@dataclass
class Message:
    """A message in a fake group: a member's (seeded) or one the bot posted."""

    id: str
    member: str | None
    text: str
    by_bot: bool = False
    deleted: bool = False
    reply_to: str | None = None
    mentions: list[str] = field(default_factory=list)
    uuid: str | None = None
    at: float = field(default_factory=time.time)


@dataclass
class Group:
    """One fake group as the platform would show it."""

    platform: str
    chat: str
    messages: dict[str, Message] = field(default_factory=dict)
    members: set[str] = field(default_factory=set)
    muted_until: dict[str, float | None] = field(default_factory=dict)  # None: forever
    banned: set[str] = field(default_factory=set)
    removed: list[str] = field(default_factory=list)
    join_requests: dict[str, str] = field(default_factory=dict)  # user → pending/approved/…
    owner: str | None = None  # wecom: the customer group's owner (staff userid)
    details: dict[str, dict[str, Any]] = field(default_factory=dict)  # wecom: member entries

    def posts(self) -> list[Message]:
        """What the bot posted, in order."""
        return [m for m in self.messages.values() if m.by_bot]

    def muted(self, member: str) -> bool:
        """Whether the member is muted now."""
        if member not in self.muted_until:
            return False
        until = self.muted_until[member]
        return until is None or until > time.time()

    def to_json(self) -> dict[str, Any]:
        """The group as the admin API shows it."""
        return {
            "platform": self.platform,
            "chat": self.chat,
            "messages": [asdict(m) for m in self.messages.values() if not m.by_bot],
            "posts": [asdict(m) for m in self.posts()],
            "members": sorted(self.members),
            "muted": {m: u for m, u in self.muted_until.items() if self.muted(m)},
            "banned": sorted(self.banned),
            "removed": self.removed,
            "join_requests": self.join_requests,
        }


@dataclass
class Fault:
    """A fault to play on the next matching calls (`times` < 0: until cleared)."""

    platform: str
    kind: FaultKind
    chat: str | None = None
    method: str | None = None
    times: int = 1
    retry_after: float = 1.0
    status: int = 500  # error: the HTTP status; telegram forbidden: 403 (the bot was kicked)
    sleep: float = 5.0
    apply: bool = True  # timeout: carry the call out before stalling (an unknown outcome)
    retcode: int | None = None  # onebot forbidden: this retcode instead of a rights wording


@dataclass
class Call:
    """One request the double received."""

    platform: str
    method: str
    chat: str | None
    at: float
    body: Any
    status: int = 0
    fault: str | None = None


class DoubleState:
    """All groups, calls and faults of one double."""

    def __init__(self, config: DoubleConfig | None = None) -> None:
        self.config = config or DoubleConfig()
        self.lock = threading.RLock()
        self.groups: dict[tuple[str, str], Group] = {}
        self.calls: list[Call] = []
        self.faults: list[Fault] = []
        self.flags: dict[str, tuple[str, str]] = {}  # onebot flag → (group, user)
        self.tokens: dict[str, float] = {}  # feishu tenant_access_token → expiry (epoch)
        self.wecom_tokens: dict[str, float] = {}  # wecom access_token → expiry (epoch)
        self.counter = 1000

    def group(self, platform: str, chat: str) -> Group:
        """The fake group, created on first use."""
        with self.lock:
            key = (platform, str(chat))
            if key not in self.groups:
                self.groups[key] = Group(platform, str(chat))
            return self.groups[key]

    def next_id(self) -> int:
        """A fresh message number."""
        with self.lock:
            self.counter += 1
            return self.counter

    def seed_message(
        self, platform: str, chat: str, member: str, text: str = "", id: str = ""
    ) -> Message:
        """Put a member's message in a group (what ingest saw) and return it."""
        with self.lock:
            group = self.group(platform, chat)
            message = Message(id or str(self.next_id()), member, text)
            group.messages[message.id] = message
            group.members.add(member)
            return message

    def find_message(self, platform: str, message_id: str) -> tuple[Group, Message] | None:
        """The group and message with this id (platforms that delete by message id alone)."""
        with self.lock:
            for (name, _), group in self.groups.items():
                if name == platform and message_id in group.messages:
                    return group, group.messages[message_id]
            return None

    def add_fault(self, fault: Fault) -> None:
        """Play `fault` on the next matching calls."""
        with self.lock:
            self.faults.append(fault)

    def take_fault(self, platform: str, chat: str | None, method: str) -> Fault | None:
        """The first fault matching this call, counted down."""
        with self.lock:
            for fault in self.faults:
                if fault.platform != platform or fault.times == 0:
                    continue
                if fault.chat not in (None, chat) or fault.method not in (None, method):
                    continue
                fault.times -= 1 if fault.times > 0 else 0
                return fault
            return None

    def calls_of(
        self, platform: str | None = None, method: str | None = None, chat: str | None = None
    ) -> list[Call]:
        """The calls seen, optionally only one platform's, method's or chat's."""
        with self.lock:
            return [
                c
                for c in self.calls
                if (platform is None or c.platform == platform)
                and (method is None or c.method == method)
                and (chat is None or c.chat == str(chat))
            ]

    def reset(self) -> None:
        """Forget every group, call and fault."""
        with self.lock:
            self.groups.clear()
            self.calls.clear()
            self.faults.clear()
            self.flags.clear()
            self.tokens.clear()
            self.wecom_tokens.clear()

    async def serve(
        self,
        platform: str,
        method: str,
        chat: str | None,
        body: Any,
        effect: Callable[[], Response],
        fault_answer: Callable[[Fault], Response],
    ) -> Response:
        """Record the call, play a matching fault, else carry out `effect`."""
        call = Call(platform, method, None if chat is None else str(chat), time.time(), body)
        with self.lock:
            self.calls.append(call)
        fault = self.take_fault(platform, call.chat, method)
        if fault is None:
            response = effect()
        elif fault.kind == "timeout":
            response = effect() if fault.apply else fault_answer(fault)
            await asyncio.sleep(fault.sleep)
        else:
            response = fault_answer(fault)
        call.status, call.fault = response.status_code, fault.kind if fault else None
        return response
