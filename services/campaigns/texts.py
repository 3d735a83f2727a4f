"""What campaigns post: the default templates per campaign kind and notification, checking an
operator's overrides (`params.texts`), and rendering a post fit for a real group.

Members are named `@<display name>` (a member whose name campaigns never learnt is
`@群友`) and go into the post's `mentions`, with the name into `mention_names`, so
delivery turns each `@name` into the platform's mention; internal ids never show. Times
are shown in the group's timezone (`QUNYUN_TIMEZONE`) with the zone, e.g.
`2026-12-01 09:00 (Asia/Shanghai, UTC+8)`. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from string import Formatter
from typing import Annotated
from zoneinfo import ZoneInfo

from pydantic import AfterValidator
from pydantic import Field as PydField

from services.common.text import chinese_duration

UNKNOWN_NAME = "群友"
KIND_NAMES = {
    "checkin": "打卡",
    "lottery": "抽奖",
    "challenge": "挑战",
    "event": "活动",
    "poll": "投票",
    "feedback": "反馈",
    "invite": "邀请",
}

SCHEDULE = ("title", "kind", "starts_at", "ends_at", "details")
PLACEHOLDERS: dict[str, tuple[str, ...]] = {
    "announce": SCHEDULE,
    "reminder": (*SCHEDULE, "before"),
    "started": SCHEDULE,
    "ended": (*SCHEDULE, "participants"),
    "winners": ("title", "winners"),
    "welcome": ("title", "members", "count"),
    "reply": ("title", "member"),
    "results": ("title", "question", "results", "voters"),
}
"""The placeholders each notification's template may use."""

DEFAULTS: dict[str, str] = {
    "announce": "【{kind}预告】{title}\n时间：{starts_at} 至 {ends_at}{details}",
    "reminder": "【提醒】{title} 将于 {starts_at} 开始（还有 {before}）{details}",
    "started": "【开始】{title} 已开始，{ends_at} 结束{details}",
    "ended": "【结束】{title} 已结束，共 {participants} 人参与",
    "winners": "【开奖】{title}：{winners}",
    "welcome": "欢迎 {members} 加入！",
    "results": "【投票结果】{title}：{question}\n{results}\n共 {voters} 人投票",
}
"""Default templates; a kind posts a notification whose template is empty not at all."""

QUIET_KINDS = frozenset({"welcome", "autoreply", "broadcast"})
"""Kinds that are tools rather than activities: no start or end notice unless a template
is given in `params.texts` (their announcement and reminders still go out when asked for)."""


def placeholders(template: str, known: Iterable[str]) -> list[str]:
    """Return a template's placeholder names; ValueError names an unknown one or bad braces."""
    allowed = tuple(known)
    names: list[str] = []
    try:
        parsed = list(Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"not a valid template: {exc} (write {{{{ and }}}} for braces)") from None
    for _literal, name, spec, conversion in parsed:
        if name is None:
            continue
        if name not in allowed or spec or conversion:
            shown = "{" + name + (f"!{conversion}" if conversion else "")
            shown += (f":{spec}" if spec else "") + "}"
            listed = ", ".join("{" + p + "}" for p in allowed) or "none"
            raise ValueError(f"unknown placeholder {shown} (known: {listed})")
        names.append(name)
    return names


def checker(notification: str) -> Callable[[str], str]:
    """A pydantic after-validator of `notification`'s template (422 naming the placeholder)."""
    known = PLACEHOLDERS[notification]

    def check(value: str) -> str:
        placeholders(value, known)
        return value

    return check


def _doc(notification: str) -> str:
    listed = " ".join("{" + p + "}" for p in PLACEHOLDERS[notification])
    return f"Placeholders: {listed}"


AnnounceTemplate = Annotated[
    str,
    PydField(max_length=2000, description=_doc("announce")),
    AfterValidator(checker("announce")),
]
ReminderTemplate = Annotated[
    str,
    PydField(max_length=2000, description=_doc("reminder")),
    AfterValidator(checker("reminder")),
]
StartedTemplate = Annotated[
    str, PydField(max_length=2000, description=_doc("started")), AfterValidator(checker("started"))
]
EndedTemplate = Annotated[
    str, PydField(max_length=2000, description=_doc("ended")), AfterValidator(checker("ended"))
]
WinnersTemplate = Annotated[
    str, PydField(max_length=2000, description=_doc("winners")), AfterValidator(checker("winners"))
]
WelcomeTemplate = Annotated[
    str,
    PydField(min_length=1, max_length=2000, description=_doc("welcome")),
    AfterValidator(checker("welcome")),
]
ResultsTemplate = Annotated[
    str, PydField(max_length=2000, description=_doc("results")), AfterValidator(checker("results"))
]
ReplyTemplate = Annotated[
    str,
    PydField(min_length=1, max_length=4000, description=_doc("reply")),
    AfterValidator(checker("reply")),
]


def template_for(kind: str, notification: str, texts: Mapping[str, str] | None) -> str:
    """The template a campaign of `kind` posts `notification` with ("" posts nothing)."""
    given = (texts or {}).get(notification)
    if given is not None:
        return given
    if kind in QUIET_KINDS and notification in ("started", "ended"):
        return ""
    return DEFAULTS.get(notification, "")


def zone_label(value: datetime, tz: ZoneInfo) -> str:
    """The zone as a group reads it: `UTC`, or `Asia/Shanghai, UTC+8` (`UTC+5:30`)."""
    offset = value.astimezone(tz).utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    if tz.key == "UTC" or (minutes == 0 and tz.key in ("Etc/UTC", "UTC", "Etc/GMT")):
        return "UTC"
    sign = "+" if minutes >= 0 else "-"
    hours, rest = divmod(abs(minutes), 60)
    shown = f"UTC{sign}{hours}" + (f":{rest:02d}" if rest else "")
    return f"{tz.key}, {shown}"


def local_time(value: datetime, tz: ZoneInfo) -> str:
    """A time in the group's timezone with the zone shown: `2026-12-01 09:00 (UTC)`."""
    return f"{value.astimezone(tz):%Y-%m-%d %H:%M} ({zone_label(value, tz)})"


def details(kind: str, params: Mapping[str, object]) -> str:
    """What a member needs to take part, one line each, each line starting with a newline:
    an event's place, link and attendance keyword; a check-in's or lottery's keyword."""
    lines: list[str] = []
    if kind == "event":
        if params.get("location"):
            lines.append(f"地点：{params['location']}")
        if params.get("url"):
            lines.append(f"链接：{params['url']}")
        if params.get("attendance_keyword"):
            lines.append(f"签到：发送“{params['attendance_keyword']}”")
    elif kind == "checkin" and params.get("keyword"):
        lines.append(f"参与：发送“{params['keyword']}”打卡")
    elif kind == "lottery":
        keyword = params.get("entry_keyword")
        lines.append(f"参与：发送“{keyword}”" if keyword else "参与：活动期间在群里发言即可")
    elif kind == "poll":
        lines += _poll_lines(params)
    elif kind == "feedback" and params.get("tag"):
        example = f"{params['tag']} 内容"
        raw = params.get("categories")
        categories = [str(c) for c in raw] if isinstance(raw, list) else []
        if categories:
            example = f"{params['tag']} {categories[0]} 内容"
            lines.append("分类：" + " / ".join(categories))
        lines.append(f"参与：发送“{example}”")
    elif kind == "invite":
        points, days = params.get("points_per_invitee"), params.get("retain_days")
        lines.append(f"规则：邀请好友入群，好友留满 {_days(days)}，邀请人得 {points} 积分")
    return "".join("\n" + line for line in lines)


def _poll_lines(params: Mapping[str, object]) -> list[str]:
    """A poll's question, numbered options and how to vote."""
    raw = params.get("options")
    options = [str(o) for o in raw] if isinstance(raw, list) else []
    keyword = params.get("vote_keyword") or "投票"
    lines = [f"问题：{params.get('question')}"]
    lines += [f"{i}. {text}" for i, text in enumerate(options, start=1)]
    how = f"投票：发送“{keyword} 编号”，如“{keyword} 1”"
    lines.append(how + ("（可多选）" if params.get("multiple") else "（以最后一次为准）"))
    return lines


def _days(value: object) -> str:
    """`7` → `7 天`; a fraction of a day in hours, minutes or seconds."""
    days = float(value) if isinstance(value, int | float) else 0.0
    if days == int(days):
        return f"{int(days)} 天"
    return chinese_duration(round(days * 86400))


@dataclass(frozen=True)
class Post:
    """A rendered post: its text, the members it mentions (in order of appearance) and the
    name its `@name` uses for each."""

    text: str
    mentions: list[str] = field(default_factory=list)
    mention_names: dict[str, str] = field(default_factory=dict)


@dataclass
class Named:
    """Members to name in a post: `label()` gives `@<name>` and remembers the mention."""

    names: Mapping[str, str]
    mentions: list[str] = field(default_factory=list)
    used: dict[str, str] = field(default_factory=dict)

    def label(self, member_id: str) -> str:
        """`@<display name>` (`@群友` when unknown), the member mentioned once."""
        name = self.names.get(member_id) or UNKNOWN_NAME
        if member_id not in self.used:
            self.mentions.append(member_id)
            self.used[member_id] = name
        return "@" + name


MemberText = Callable[["Named"], str]
"""A placeholder's value that names members: called with the post's `Named` only when the
template uses the placeholder, so a template leaving members out mentions nobody."""


def render(
    template: str, values: Mapping[str, object | MemberText], names: Mapping[str, str]
) -> Post | None:
    """Fill a template (only the placeholders it uses are looked up); None when it is empty."""
    if not template:
        return None
    named = Named(names)
    filled = {}
    for name in _names_in(template):
        value = values[name]
        filled[name] = value(named) if callable(value) else value
    return Post(template.format_map(filled), list(named.mentions), dict(named.used))


def _names_in(template: str) -> list[str]:
    found = (name for _, name, _, _ in Formatter().parse(template) if name is not None)
    return list(dict.fromkeys(found))
