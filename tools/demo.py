"""`make demo`: rules, a check-in and a challenge, then days of traffic into a `make run` stack.

Prints example API calls afterwards, each with the figure it returns right now. Then it
shows delivery: it starts the platform double (:8090, or reuses one already there), adds
the Telegram source `demo-telegram` pointing at it to the dev config (the services reload
it), sends Telegram webhook updates with ads into two demo groups that have an ad rule, an
event and a lottery, and in the first group a welcome (three newcomers greeted in one
post), a keyword auto-reply (a newcomer asks about the rules) and two scheduled posts,
waits until delivery has carried everything out, prints what the fake groups look like,
and keeps the double (and its page) up until Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shlex
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from services.common.settings import Source, load_config, write_config
from tools.localstack import port_open
from tools.platform_double import DoubleConfig, DoubleHandle, start_double
from tools.platform_double.telegram_updates import member_joined
from tools.simulate import generate, send_webhook_batches
from tools.stack import HTTP

PORTS = {"ingest": 8001, "metrics": 8002, "moderation": 8003, "campaigns": 8004, "delivery": 8005}

RULES: list[dict[str, Any]] = [
    {
        "name": "禁止广告",
        "kind": "keywords",
        "params": {
            "keywords": ["加微信", "加V", "vx同号", "代购", "团购", "兼职日结", "扫码进群"],
            "allow": [],
            "match": "substring",
        },
        "action": "warn",
    },
    {
        "name": "禁止外链",
        "kind": "links",
        "params": {"allowed_domains": ["mp.weixin.qq.com", "img.example.cn"]},
        "action": "delete",
    },
    {
        "name": "禁止小程序和卡片",
        "kind": "message_kinds",
        "params": {"kinds": ["miniprogram", "card"]},
        "action": "delete",
    },
    {
        "name": "禁止刷屏",
        "kind": "flood",
        "params": {"max_messages": 5, "seconds": 10},
        "action": "mute",
        "mute_seconds": 600,
    },
    {
        "name": "群昵称格式 昵称-城市-肤质",
        "kind": "display_name",
        "params": {"pattern": "^[^-]+-[^-]+-[^-]+$"},
        "action": "flag",
    },
]
POLICY = {
    "strike_window_days": 7,
    "ladder": [
        {"strikes": 2, "action": "mute", "mute_seconds": 600},
        {"strikes": 3, "action": "kick"},
    ],
    "exempt_members": [],
}


def _campaigns(*, start: datetime) -> list[dict[str, Any]]:
    ends = start + timedelta(days=14)
    return [
        {
            "kind": "checkin",
            "title": "每日打卡",
            "starts_at": start.isoformat(),
            "ends_at": ends.isoformat(),
            "params": {
                "keyword": "打卡",
                "match": "prefix",  # `打卡 第3天` checks in; `我忘记打卡了` does not
                "points": 10,
                "streak_rewards": [{"days": 3, "points": 30, "badge": "三日打卡"}],
                "grace_days": 0,
            },
        },
        {
            "kind": "challenge",
            "title": "活跃挑战：发言10条",
            "starts_at": start.isoformat(),
            "ends_at": ends.isoformat(),
            "params": {"goal_messages": 10, "points": 100, "badge": "活跃之星"},
        },
        {
            "kind": "poll",
            "title": "下期分享主题投票",
            "starts_at": start.isoformat(),
            "ends_at": ends.isoformat(),
            "params": {"question": "下次分享选哪个？", "options": ["护肤入门", "彩妆技巧", "穿搭"]},
        },
        {
            "kind": "feedback",
            "title": "群友反馈",
            "starts_at": start.isoformat(),
            "ends_at": ends.isoformat(),
            "params": {"tag": "#反馈", "categories": ["bug", "idea"], "points_accepted": 20},
        },
        {
            "kind": "invite",
            "title": "老带新：好友留满 1 天得 10 分",
            "starts_at": start.isoformat(),
            "ends_at": ends.isoformat(),
            "params": {"points_per_invitee": 10, "retain_days": 1},
        },
    ]


# What `_print_examples` shows of each kind's own list, besides its participants.
KIND_EXAMPLES: dict[str, tuple[str, str, Any]] = {
    "poll": ("results", "votes per option",
             lambda a: [(o.get("text"), o.get("votes")) for o in a.get("options", [])]),
    "feedback": ("feedback?limit=3", "feedback inbox (first 3)",
                 lambda a: [(f.get("category"), f.get("text")) for f in a.get("feedback", [])]),
}  # fmt: skip


class Api:
    """A small authenticated client of the stack's REST APIs that reports what is missing."""

    def __init__(self, *, host: str, token: str, ports: dict[str, int] | None = None) -> None:
        self.host = host.rstrip("/")
        self.token = token
        self.ports = ports or PORTS
        self.client = httpx.Client(timeout=15, headers={"Authorization": f"Bearer {token}"})
        self.problems: list[str] = []

    def url(self, service: str, path: str) -> str:
        """Return the full URL of a path on a service."""
        return f"{self.host}:{self.ports[service]}{path}"

    def call(self, method: str, service: str, path: str, **kwargs: Any) -> Any:
        """Call the API; return the JSON answer, or None after noting the problem."""
        try:
            resp = self.client.request(method, self.url(service, path), **kwargs)
        except httpx.HTTPError as exc:
            self.problems.append(f"{method} {service}{path}: {type(exc).__name__}")
            return None
        if resp.status_code >= 400:
            self.problems.append(f"{method} {service}{path}: {resp.status_code} {resp.text[:200]}")
            return None
        return resp.json() if resp.content else {}

    def curl(self, service: str, path: str) -> str:
        """Return the curl command a user can paste."""
        auth = shlex.quote(f"Authorization: Bearer {self.token}")
        return f"curl -s -H {auth} {shlex.quote(self.url(service, path))}"


def _set_up_moderation(
    api: Api, group: str, rules: list[dict[str, Any]] = RULES, policy: dict[str, Any] = POLICY
) -> None:
    api.call("PUT", "moderation", f"/v1/groups/{group}/policy", json=policy)
    existing = api.call("GET", "moderation", f"/v1/groups/{group}/rules", params={"limit": 100})
    names = {r.get("name") for r in (existing or {}).get("rules", [])}
    for rule in rules:
        if rule["name"] not in names:
            api.call("POST", "moderation", f"/v1/groups/{group}/rules", json=rule)


def _set_up_campaigns(api: Api, group: str, start: datetime) -> list[dict[str, Any]]:
    path = f"/v1/groups/{group}/campaigns"
    existing = api.call("GET", "campaigns", path, params={"limit": 100}) or {}
    by_title = {c.get("title"): c for c in existing.get("campaigns", [])}
    made = []
    for campaign in _campaigns(start=start):
        found = by_title.get(campaign["title"])
        if found is None:
            found = api.call("POST", "campaigns", path, json=campaign)
        if found:
            made.append(found)
    return made


def _counted_messages(api: Api, *, group: str, first: str, last: str) -> int | None:
    """Return the messages metrics has counted for the group in [first, last] (None: no answer).

    A group metrics has not seen yet (404) has counted none.
    """
    try:
        answer = api.client.get(
            api.url("metrics", f"/v1/groups/{group}/activity"),
            params={"from": first, "to": last},
        )
    except httpx.HTTPError:
        return None
    if answer.status_code == 404:
        return 0
    if answer.status_code != 200:
        return None
    return sum(d.get("messages", 0) for d in answer.json().get("days", []))


def _wait_for_metrics(
    api: Api, *, group: str, first: str, last: str, before: int, messages: int, timeout: float
) -> int:
    """Poll until metrics counts this run's messages on top of `before`; return how many it has.

    Counted against what this run sent: the group may hold earlier runs' messages too.
    """
    seen, steady = 0, 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        total = _counted_messages(api, group=group, first=first, last=last)
        if total is not None:
            steady = steady + 1 if total - before == seen and seen > 0 else 0
            seen = total - before
            # Messages moderation deletes never count, so the total can settle below `messages`.
            if seen >= messages or steady >= 3:
                return seen
        time.sleep(1)
    return seen


def _connect(args: argparse.Namespace) -> tuple[Api, Source] | None:
    """Return the API client and the demo's generic source, or None after saying what is wrong."""
    config_path, token_path = Path(args.config), Path(args.token_file)
    if not config_path.exists() or not token_path.exists():
        print(f"{config_path} or {token_path} missing: start the stack with `make run` first")
        return None
    source = load_config(config_path).source(args.source)
    if source is None or source.platform != "generic":
        print(f"{config_path} has no generic source {args.source!r}")
        return None
    api = Api(host=args.host, token=token_path.read_text().strip())
    for service in PORTS:
        try:
            httpx.get(api.url(service, "/healthz"), timeout=3).raise_for_status()
        except httpx.HTTPError:
            print(f"{service} does not answer on {api.url(service, '/healthz')}: run `make run`")
            return None
    return api, source


def _send(
    api: Api, args: argparse.Namespace, source: Source, events: list[dict[str, Any]]
) -> dict[str, Any]:
    record = open(args.record, "wb") if args.record else None  # noqa: SIM115
    try:
        return send_webhook_batches(
            url=api.url("ingest", ""),
            source_id=args.source,
            secret=source.secret,
            events=events,
            batch_size=args.batch_size,
            rate=args.rate,
            record=record,
            progress=not args.no_progress,
            total=len(events),
        )
    finally:
        if record is not None:
            record.close()


def run_demo(args: argparse.Namespace) -> int:
    """Set up and fill the demo group, then print example API calls with their answers."""
    connected = _connect(args)
    if connected is None:
        return 1
    api, source = connected
    group = args.group
    now = datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(days=args.days)
    _set_up_moderation(api, group)
    campaigns = _set_up_campaigns(api, group, start - timedelta(hours=1))
    events = list(
        generate(
            seed=args.seed,
            group_ids=[group],
            members=args.members,
            days=args.days,
            start=start,
            source=args.source,
            messages_per_member=max(args.messages_per_member, 1.5),
            # New ids each run: a rerun adds traffic instead of being dropped as duplicates.
            id_prefix=f"demo{args.seed}-{now:%Y%m%d%H%M%S}",
        )
    )
    messages = sum(e["type"] == "message.created" for e in events)
    first = (start - timedelta(days=1)).date().isoformat()
    last = (now + timedelta(days=1)).date().isoformat()
    before = _counted_messages(api, group=group, first=first, last=last) or 0
    print(f"sending {len(events)} events ({messages} messages) for group {group!r}…")
    stats = _send(api, args, source, events)
    print(f"ingest accepted {stats['accepted']} (duplicates {stats['duplicates']})")
    seen = _wait_for_metrics(
        api, group=group, first=first, last=last, before=before, messages=messages, timeout=60
    )
    earlier = f" (plus {before} from earlier runs)" if before else ""
    print(
        f"metrics counted {seen} of the {messages} messages this run sent{earlier}"
        + (" (the rest were ads moderation deleted: they never count)" if seen < messages else "")
    )
    time.sleep(2)  # moderation and campaigns consume the same events in parallel
    _print_examples(
        api, group=group, first=first, last=last, today=now.date().isoformat(), campaigns=campaigns
    )
    _print_problems(api)
    api.problems.clear()
    _delivery_part(api, args)
    _print_problems(api)
    return 0


def _print_problems(api: Api) -> None:
    if api.problems:
        print("\nthese calls failed (is every service complete?):")
        for problem in api.problems:
            print(f"  {problem}")


def _print_examples(
    api: Api, *, group: str, first: str, last: str, today: str, campaigns: list[dict[str, Any]]
) -> None:
    g = group
    examples: list[tuple[str, str, str, Any]] = [
        ("metrics", f"/v1/groups/{g}/activity?from={first}&to={last}", "messages per day",
         lambda a: [d.get("messages") for d in a.get("days", [])]),
        ("metrics", f"/v1/groups/{g}/active?date={today}", "dau / wau / mau",
         lambda a: f"{a.get('dau')} / {a.get('wau')} / {a.get('mau')}"),
        ("metrics", f"/v1/groups/{g}/retention?cohort=day&from={first}&to={last}&periods=3",
         "cohort sizes", lambda a: [c.get("size") for c in a.get("cohorts", [])]),
        ("metrics", f"/v1/groups/{g}/leaderboard?days=7&limit=5", "top members",
         lambda a: [(m.get("member_id"), m.get("messages")) for m in a.get("members", [])]),
        ("metrics", f"/v1/groups/{g}/members/dormant?days=2&limit=5", "dormant (first 5)",
         lambda a: [m.get("member_id") for m in a.get("members", [])]),
        ("moderation", f"/v1/groups/{g}/cases?limit=5", "cases (first 5)",
         lambda a: [(c.get("member_id"), c.get("action")) for c in a.get("cases", [])]),
        ("moderation", f"/v1/groups/{g}/rules", "rules",
         lambda a: [r.get("name") for r in a.get("rules", [])]),
        ("campaigns", f"/v1/groups/{g}/points/leaderboard?limit=5", "points leaderboard",
         lambda a: [(m.get("member_id"), m.get("points")) for m in a.get("members", [])]),
    ]  # fmt: skip
    for campaign in campaigns:
        cid = campaign.get("id")
        examples.append(
            ("campaigns", f"/v1/groups/{g}/campaigns/{cid}/participants?limit=5",
             f"{campaign.get('title')} participants (first 5)",
             lambda a: [(p.get("member_id"), p.get("count")) for p in a.get("participants", [])])
        )  # fmt: skip
        if (own := KIND_EXAMPLES.get(str(campaign.get("kind")))) is not None:
            tail, label, show = own
            path = f"/v1/groups/{g}/campaigns/{cid}/{tail}"
            examples.append(("campaigns", path, f"{campaign.get('title')} {label}", show))
    print("\ntry these (answers as of now):\n")
    for service, path, label, show in examples:
        answer = api.call("GET", service, path)
        shown = "(failed)" if answer is None else _short(show(answer))
        print(f"  # {label}: {shown}\n  {api.curl(service, path)}\n")


def _short(value: Any, limit: int = 160) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# Delivery: the platform double stands in for Telegram ---------------------------------------

DOUBLE_PORT = 8090
DEMO_SOURCE = "demo-telegram"
DEMO_RULES: list[dict[str, Any]] = [
    {
        "name": "广告链接",
        "kind": "links",
        "params": {"allowed_domains": ["mp.weixin.qq.com"]},
        "action": "delete",
    },
    {
        "name": "广告词",
        "kind": "keywords",
        "params": {"keywords": ["加微信", "vx同号", "兼职日结", "扫码进群"], "match": "substring"},
        "action": "mute",
        "mute_seconds": 600,
    },
]
DEMO_POLICY: dict[str, Any] = {"notices": {"mute": "{member} 因 {reason} 被禁言 {duration}"}}
EVENT_KINDS = ("announce", "reminder", "started", "ended")
LOTTERY_KINDS = (*EVENT_KINDS, "winners")


@dataclass(frozen=True)
class Member:
    """A Telegram user of the demo groups."""

    id: int
    name: str


@dataclass(frozen=True)
class DemoGroup:
    """A demo Telegram group and the campaign it runs ("event" or "lottery")."""

    chat: int
    title: str
    campaign: str

    @property
    def group_id(self) -> str:
        return f"telegram:{self.chat}"


@dataclass(frozen=True)
class Timing:
    """Seconds from the campaigns' creation: the reminder, the start, the length, the draw,
    and how much longer than the lottery the poll runs (`poll_grace`: its votes, sent at
    once, have time to be counted on a busy laptop)."""

    reminder_before: int = 5
    starts_in: int = 10
    lasts: int = 10
    draw_delay: int = 2
    poll_grace: int = 15


GROUPS = (
    DemoGroup(-1001000000001, "护肤交流群", "event"),
    DemoGroup(-1001000000002, "周末读书会", "lottery"),
)
XIAOHONG, AJIE, LILI = Member(5000001, "小红"), Member(5000002, "阿杰"), Member(5000003, "莉莉")
SPAMMER = Member(6660001, "福利君")
CHAT = [
    (XIAOHONG, "早上好呀，今天天气真好"),
    (AJIE, "有人试过那款新出的面霜吗？"),
    (SPAMMER, "高仿名牌包一折起 https://cheap-bags.example.com/sale"),
    (LILI, "试过，挺保湿的，就是有点贵"),
    (SPAMMER, "兼职日结 300 元，加微信 fuli8888 了解"),
    (XIAOHONG, "周末一起去看展吗？"),
]
ENTRIES = [(XIAOHONG, "签到 参加抽奖"), (AJIE, "签到，参加抽奖！"), (LILI, "来啦 参加抽奖")]
NEWCOMERS = [Member(5100001, "小雨"), Member(5100002, "Mia"), Member(5100003, "晓峰")]
QUESTION = (NEWCOMERS[0], "请问群规是什么？")
RULES_REPLY = "{member} 群规：不发广告、不刷屏，详见置顶～"
# The reading group's poll (小红 changes her mind: her 3 replaces her 1), feedback, invitees.
VOTES = [(XIAOHONG, "投票 1"), (AJIE, "投票２"), (LILI, "投票 2"), (XIAOHONG, "投票 3")]
FEEDBACK = [(LILI, "#反馈 bug 签到后积分没到账"), (AJIE, "#反馈 idea 希望每周整理一次书单")]
INVITED = [Member(5200001, "阿星"), Member(5200002, "Coco")]  # 阿杰 adds them
BOOKS = ("《百年孤独》", "《三体》", "《活着》")


@dataclass
class DeliveryDemo:
    """One run of the delivery demo: where things are, what was sent, what to wait for."""

    api: Api
    double_url: str
    secret: str
    timing: Timing = field(default_factory=Timing)
    stamp: int = field(default_factory=lambda: int(time.time() * 1000) % 10**9)
    sent: int = 0
    ads: dict[int, list[str]] = field(default_factory=dict)  # chat → ad message ids
    campaigns: dict[int, dict[str, Any]] = field(default_factory=dict)  # chat → campaign
    # The first group's welcome, auto-reply and broadcast, the second's poll, feedback and
    # invite campaigns, with the posts each must make.
    tools: list[tuple[dict[str, Any], tuple[str, ...]]] = field(default_factory=list)

    def admin(self, method: str, path: str, **kwargs: Any) -> Any:
        """Call the double's admin API."""
        resp = HTTP.request(method, self.double_url + "/_double" + path, timeout=10, **kwargs)
        resp.raise_for_status()
        return resp.json() if resp.content else None

    def update(self, group: DemoGroup, member: Member, text: str) -> dict[str, Any]:
        """A Bot API `Update` with a group message (also seeded at the double)."""
        self.sent += 1
        message_id = self.stamp * 100 + self.sent
        seed = {"member": str(member.id), "text": text, "id": str(message_id)}
        self.admin("POST", f"/groups/telegram/{group.chat}/messages", json=seed)
        return {
            "update_id": message_id,
            "message": {
                "message_id": message_id,
                "date": int(time.time()),
                "chat": {"id": group.chat, "type": "supergroup", "title": group.title},
                "from": {"id": member.id, "is_bot": False, "first_name": member.name},
                "text": text,
            },
        }

    def joins(
        self, group: DemoGroup, members: list[Member], by: Member | None = None
    ) -> list[dict[str, Any]]:
        """The Bot API `chat_member` updates of members joining together (one join wave),
        added by `by` (an inviter) or by themselves."""
        updates = []
        for member in members:
            self.sent += 1
            user = {"id": member.id, "is_bot": False, "first_name": member.name}
            update_id, date = self.stamp * 100 + self.sent, int(time.time())
            inviter = {"id": by.id, "is_bot": False, "first_name": by.name} if by else None
            updates.append(
                member_joined(
                    update_id=update_id, chat=group.chat, user=user, date=date, by=inviter
                )
            )
        return updates

    def webhook(self, update: dict[str, Any]) -> httpx.Response:
        """POST one update to ingest the way Telegram does."""
        return HTTP.post(
            self.api.url("ingest", f"/v1/webhooks/{DEMO_SOURCE}"),
            json=update,
            headers={"X-Telegram-Bot-Api-Secret-Token": self.secret},
            timeout=10,
        )

    def say(self, group: DemoGroup, lines: list[tuple[Member, str]]) -> None:
        """Send members' messages into a group; remember which were ads."""
        for member, text in lines:
            update = self.update(group, member, text)
            self.webhook(update).raise_for_status()
            if member == SPAMMER:
                self.ads.setdefault(group.chat, []).append(str(update["message"]["message_id"]))


def add_demo_source(
    config_path: Path, double_url: str, *, rate_per_group_per_minute: float | None = None
) -> Source:
    """Add (or point at `double_url`) the Telegram source `demo-telegram` in the config.

    Everything else in the file is kept (its comments aside: write_config writes TOML).
    """
    config = load_config(config_path)
    found = config.source(DEMO_SOURCE)
    source = Source(
        id=DEMO_SOURCE,
        platform="telegram",
        secret=found.secret if found else secrets.token_hex(16),
        bot_token=DoubleConfig().telegram_token,
        api_base=double_url,
        rate_per_group_per_minute=rate_per_group_per_minute,
    )
    if found != source:
        config.sources = [s for s in config.sources if s.id != DEMO_SOURCE] + [source]
        note = f"`make demo` added the source {DEMO_SOURCE} (the platform double)."
        write_config(config_path, config, comment=f"Development config of `make run`; {note}")
    return source


def _reloaded(demo: DeliveryDemo, group: DemoGroup) -> bool:
    """Whether ingest and delivery both know the source (the bot says hello when they do)."""
    private = {"update_id": demo.stamp * 100, "message": {
        "message_id": 1, "date": int(time.time()), "chat": {"id": 1, "type": "private"},
        "from": {"id": 1, "is_bot": False, "first_name": "x"}, "text": "/start"}}  # fmt: skip
    try:
        if not demo.webhook(private).is_success:
            return False
        hello = {"text": f"大家好，我是群助手（{group.title}）", "source": DEMO_SOURCE}
        resp = demo.api.client.post(
            demo.api.url("delivery", f"/v1/groups/{group.group_id}/messages"), json=hello
        )
    except httpx.HTTPError:
        return False
    return resp.status_code == 202


def _wait(check: Any, timeout: float, interval: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := check()) and time.monotonic() < deadline:
        time.sleep(interval)
    return result


def _campaign(group: DemoGroup, timing: Timing, now: datetime) -> dict[str, Any]:
    starts = now + timedelta(seconds=timing.starts_in)
    body: dict[str, Any] = {
        "announce_at": now.isoformat(),
        "starts_at": starts.isoformat(),
        "ends_at": (starts + timedelta(seconds=timing.lasts)).isoformat(),
        "reminders": [f"PT{timing.reminder_before}S"],
    }
    if group.campaign == "event":
        return body | {"kind": "event", "title": f"线上护肤分享会 {now:%H:%M}",
                       "params": {"location": "群语音", "attendance_keyword": "签到"}}  # fmt: skip
    params = {
        "entry_keyword": "参加抽奖",
        "prizes": [{"name": "读书会帆布袋", "quantity": 2}],
        "draw_delay_seconds": timing.draw_delay,
    }
    return body | {"kind": "lottery", "title": f"周末抽奖 {now:%H:%M}", "params": params}


def _tool_campaigns(timing: Timing, now: datetime) -> list[tuple[dict[str, Any], tuple[str, ...]]]:
    """A welcome, an auto-reply and two scheduled posts for the first group, each with the
    notification kinds it must post."""
    window = {
        "starts_at": (now - timedelta(seconds=10)).isoformat(),
        "ends_at": (now + timedelta(seconds=timing.starts_in + timing.lasts + 60)).isoformat(),
    }
    # From the clock as it is now: `now` may have passed while the other campaigns were made.
    base = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
    first, second = (base + timedelta(seconds=s) for s in (timing.starts_in // 2, timing.starts_in))
    return [
        (window | {"kind": "welcome", "title": "新人欢迎",
                   "params": {"text": "欢迎 {members} 加入！请先看置顶的群规～",
                              "batch_seconds": 3}}, ("welcome",)),
        (window | {"kind": "autoreply", "title": "常见问题",
                   "params": {"triggers": [{"keywords": ["群规"], "reply": RULES_REPLY}],
                              "cooldown_seconds": 60}}, ("reply",)),
        (window | {"kind": "broadcast", "title": "护肤 SOP",
                   "params": {"messages": [
                       {"at": first.isoformat(), "text": "早安！今天的话题：冬季护肤"},
                       {"at": second.isoformat(), "text": "分享会开始啦，欢迎大家提问～"}]}},
         ("broadcast",)),
    ]  # fmt: skip


def _reading_campaigns(
    timing: Timing, now: datetime
) -> list[tuple[dict[str, Any], tuple[str, ...]]]:
    """A poll (ending `timing.poll_grace` seconds after the lottery), a feedback channel and
    an invite campaign (invitees retained `timing.lasts` seconds) for the second group, each
    with the posts it must make."""
    ends = now + timedelta(seconds=timing.starts_in + timing.lasts + timing.poll_grace)
    window = {
        "starts_at": (now - timedelta(seconds=10)).isoformat(),
        "ends_at": (now + timedelta(seconds=timing.starts_in + timing.lasts + 60)).isoformat(),
    }
    return [
        ({"kind": "poll", "title": f"下期共读投票 {now:%H:%M}",
          "starts_at": window["starts_at"], "ends_at": ends.isoformat(),
          "params": {"question": "下个月读哪本？", "options": list(BOOKS),
                     "results_delay_seconds": timing.draw_delay}},
         ("started", "ended", "results")),
        (window | {"kind": "feedback", "title": "读书会反馈",
                   "params": {"tag": "#反馈", "categories": ["bug", "idea"],
                              "points_accepted": 20}}, ("started",)),
        (window | {"kind": "invite", "title": "老带新",
                   "params": {"points_per_invitee": 10, "retain_days": timing.lasts / 86400}},
         ("started",)),
    ]  # fmt: skip


def _inviter_rewarded(demo: DeliveryDemo) -> bool:
    """Whether 阿杰 earned his points for the two members he added (both stayed)."""
    path = f"/v1/groups/{GROUPS[1].group_id}/members/telegram:{AJIE.id}/rewards"
    rewards = demo.api.call("GET", "campaigns", path) or {}
    return len([e for e in rewards.get("ledger", []) if e["reason"].startswith("invitee:")]) == 2


def _cases_enforced(demo: DeliveryDemo) -> bool:
    for group in GROUPS:
        path = f"/v1/groups/{group.group_id}/cases"
        cases = (demo.api.call("GET", "moderation", path) or {}).get("cases", [])
        mine = [c for c in cases if c.get("message_id") in demo.ads.get(group.chat, [])]
        if len(mine) < len(demo.ads.get(group.chat, [])) or any(
            not c.get("enforcement") for c in mine
        ):
            return False
    return True


def _notifications_delivered(demo: DeliveryDemo) -> bool:
    for group in GROUPS:
        campaign = demo.campaigns.get(group.chat)
        if campaign is None:
            continue
        path = f"/v1/groups/{group.group_id}/campaigns/{campaign['id']}/notifications"
        found = (demo.api.call("GET", "campaigns", path) or {}).get("notifications", [])
        done = {n["kind"] for n in found if n.get("delivery")}
        wanted = EVENT_KINDS if group.campaign == "event" else LOTTERY_KINDS
        if not set(wanted) <= done:
            return False
    for campaign, kinds in demo.tools:
        path = f"/v1/groups/{campaign['group_id']}/campaigns/{campaign['id']}/notifications"
        found = (demo.api.call("GET", "campaigns", path) or {}).get("notifications", [])
        if not set(kinds) <= {n["kind"] for n in found if n.get("delivery")}:
            return False
    return True


def run_delivery_demo(
    api: Api,
    *,
    config_path: Path,
    double_url: str,
    timing: Timing | None = None,
    rate_per_group_per_minute: float | None = None,
    out: Any = print,
) -> bool:
    """Carry out the demo's ads, mutes and campaign posts at the double; True when all done."""
    source = add_demo_source(
        config_path, double_url, rate_per_group_per_minute=rate_per_group_per_minute
    )
    demo = DeliveryDemo(api, double_url, source.secret, timing or Timing())
    if not all(_wait(lambda g=g: _reloaded(demo, g), 15) for g in GROUPS):
        out(f"the services did not pick up {DEMO_SOURCE!r} from {config_path} within 15 s")
        return False
    out(f"\nTelegram source {DEMO_SOURCE!r} (api_base {double_url}) in {config_path}: reloaded")
    for group in GROUPS:
        _set_up_moderation(api, group.group_id, DEMO_RULES, DEMO_POLICY)
    out(f"sending Telegram updates to {api.url('ingest', '/v1/webhooks/' + DEMO_SOURCE)}…")
    for group in GROUPS:
        demo.say(group, CHAT)
    # The campaigns post through the source of each group's latest event: seen by now.
    _wait(lambda: _cases_enforced(demo), 30)
    # Whole seconds: a Telegram message's `date` is one, and the entries must not predate it.
    now = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
    for group in GROUPS:
        path = f"/v1/groups/{group.group_id}/campaigns"
        made = api.call("POST", "campaigns", path, json=_campaign(group, demo.timing, now))
        if made:
            demo.campaigns[group.chat] = made
    welcoming = GROUPS[0]
    for body, kinds in _tool_campaigns(demo.timing, now):
        path = f"/v1/groups/{welcoming.group_id}/campaigns"
        if made := api.call("POST", "campaigns", path, json=body):
            demo.tools.append((made, kinds))
    # Three newcomers join together (one welcome post greets them), one asks about the rules.
    for join in demo.joins(welcoming, NEWCOMERS):
        demo.webhook(join).raise_for_status()
    demo.say(welcoming, [QUESTION])
    out(f"{welcoming.title}: 3 newcomers joined, one asked 群规; 2 scheduled posts are due")
    reading = GROUPS[1]
    for body, kinds in _reading_campaigns(demo.timing, now):
        path = f"/v1/groups/{reading.group_id}/campaigns"
        if made := api.call("POST", "campaigns", path, json=body):
            demo.tools.append((made, kinds))
    for join in demo.joins(reading, INVITED, by=AJIE):
        demo.webhook(join).raise_for_status()
    demo.say(reading, VOTES + FEEDBACK)
    out(f"{reading.title}: {AJIE.name} added 2 members (an invite campaign rewards staying ones)")
    t = demo.timing
    out(f"an event and a lottery start in {t.starts_in} s and last {t.lasts} s; waiting…")
    starts = now + timedelta(seconds=t.starts_in)
    time.sleep(max(0.0, (starts - datetime.now(UTC)).total_seconds()) + 0.1)
    for group in GROUPS:
        demo.say(group, ENTRIES)
    budget = t.lasts + t.draw_delay + 60
    done = _wait(
        lambda: (
            _cases_enforced(demo) and _notifications_delivered(demo) and _inviter_rewarded(demo)
        ),
        budget,
        1,
    )
    if not done:
        out("delivery had not carried out everything in time; the summary shows what it did")
    _print_double(demo, out)
    _print_reading(demo, out)
    return bool(done)


def _print_reading(demo: DeliveryDemo, out: Any) -> None:
    """The reading group's feedback inbox and the inviter's points, from the campaigns API."""
    for campaign, _ in demo.tools:
        base = f"/v1/groups/{campaign['group_id']}/campaigns/{campaign['id']}"
        if campaign["kind"] == "feedback":
            items = (demo.api.call("GET", "campaigns", f"{base}/feedback") or {}).get("feedback")
            shown = [f"[{i['category'] or '-'}] {i['text']}" for i in items or []]
            out(f"\n  feedback inbox of {campaign['title']}: {shown}")
            out(f"    {demo.api.curl('campaigns', base + '/feedback?status=new')}")
    path = f"/v1/groups/{GROUPS[1].group_id}/members/telegram:{AJIE.id}/rewards"
    rewards = demo.api.call("GET", "campaigns", path) or {}
    out(f"  {AJIE.name}'s points for inviting: {rewards.get('points')}")


def _print_double(demo: DeliveryDemo, out: Any) -> None:
    out("\nthe fake Telegram groups at the platform double now:")
    for group in GROUPS:
        state = demo.admin("GET", f"/groups/telegram/{group.chat}")
        ads = demo.ads.get(group.chat, [])
        gone = [m["id"] for m in state["messages"] if m["deleted"]]
        muted = [m for m in state["muted"] if m == str(SPAMMER.id)]
        out(f"\n  {group.title} ({group.group_id})")
        out(f"    ads deleted: {len(set(ads) & set(gone))} of {len(ads)} "
            f"(rule 广告链接 deletes; rule 广告词 deletes and mutes); other messages deleted: "
            f"{len(set(gone) - set(ads))}")  # fmt: skip
        out(f"    muted: {', '.join(f'{SPAMMER.name} ({m})' for m in muted) or 'nobody'}")
        out(f"    the bot posted {len(state['posts'])} messages:")
        for post in state["posts"]:
            out(f"      {_short(post['text'].replace(chr(10), ' / '), 100)}")
    out(f"\n  page: {demo.double_url}/   state as JSON: {demo.double_url}/_double/state")


def start_or_reuse_double(port: int) -> tuple[str, DoubleHandle | None]:
    """The double's URL, and its handle when this process started it (None: reused)."""
    url = f"http://127.0.0.1:{port}"
    if port_open(port):
        try:
            httpx.get(url + "/_double/state", timeout=3).raise_for_status()
            return url, None
        except httpx.HTTPError:
            port = 0  # something else listens there: any free port
    handle = start_double(port=port)
    return handle.base_url, handle


def _delivery_part(api: Api, args: argparse.Namespace) -> None:
    port = int(os.environ.get("DEMO_DOUBLE_PORT", DOUBLE_PORT))
    url, handle = start_or_reuse_double(port)
    started = "started" if handle else "already running, reused"
    print(f"\nplatform double (stands in for Telegram): {url}/ ({started})")
    run_delivery_demo(api, config_path=Path(args.config), double_url=url)
    if handle is None:
        print(f"\nthe platform double was already running on port {port}: it stays up there")
        return
    print("\nthe platform double keeps running so the page stays up: Ctrl-C stops it")
    try:
        while handle.thread.is_alive():
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("\nplatform double stopped")
    finally:
        handle.stop()


if __name__ == "__main__":
    from tools.simulate import main

    sys.exit(main(["demo", *sys.argv[1:]]))
