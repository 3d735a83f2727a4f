"""`make demo`: rules, a check-in and a challenge, then days of traffic into a `make run` stack.

Prints example API calls afterwards, each with the figure it returns right now.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from services.common.settings import Source, load_config
from tools.simulate import generate, send_webhook_batches

PORTS = {"ingest": 8001, "metrics": 8002, "moderation": 8003, "campaigns": 8004}

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
    ]


class Api:
    """A small authenticated client of the stack's REST APIs that reports what is missing."""

    def __init__(self, *, host: str, token: str) -> None:
        self.host = host.rstrip("/")
        self.token = token
        self.client = httpx.Client(timeout=15, headers={"Authorization": f"Bearer {token}"})
        self.problems: list[str] = []

    def url(self, service: str, path: str) -> str:
        """Return the full URL of a path on a service."""
        return f"{self.host}:{PORTS[service]}{path}"

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


def _set_up_moderation(api: Api, group: str) -> None:
    api.call("PUT", "moderation", f"/v1/groups/{group}/policy", json=POLICY)
    existing = api.call("GET", "moderation", f"/v1/groups/{group}/rules", params={"limit": 100})
    names = {r.get("name") for r in (existing or {}).get("rules", [])}
    for rule in RULES:
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
    seen = 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        total = _counted_messages(api, group=group, first=first, last=last)
        if total is not None:
            seen = total - before
            if seen >= messages:
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
    print(f"metrics counted {seen} of the {messages} messages this run sent{earlier}")
    time.sleep(2)  # moderation and campaigns consume the same events in parallel
    _print_examples(
        api, group=group, first=first, last=last, today=now.date().isoformat(), campaigns=campaigns
    )
    if api.problems:
        print("\nthese calls failed (is every service complete?):")
        for problem in api.problems:
            print(f"  {problem}")
    return 0


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
    print("\ntry these (answers as of now):\n")
    for service, path, label, show in examples:
        answer = api.call("GET", service, path)
        shown = "(failed)" if answer is None else _short(show(answer))
        print(f"  # {label}: {shown}\n  {api.curl(service, path)}\n")


def _short(value: Any, limit: int = 160) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


if __name__ == "__main__":
    from tools.simulate import main

    sys.exit(main(["demo", *sys.argv[1:]]))
