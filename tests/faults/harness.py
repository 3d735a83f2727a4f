"""Shared pieces of the process-level fault tests: scale, ground truth, process control,
waiting, reading the services' answers back and the one-line figures each test prints.

The ground truth is computed here in plain Python from the contract's definitions and
the events ingest acknowledged; it never calls a service's own code.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import threading
import time
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import orjson

from services.common.settings import Settings
from tests.support import SOURCE_SECRETS, auth
from tools.localstack import free_port, stop, wait_for_port
from tools.simulate import generate, send_webhook_batches, sign_generic
from tools.stack import RunningStack, settings_env, start_service, wait_ready

SOURCE = "generic-test"
SECRET = SOURCE_SECRETS[SOURCE][1]
CONSUMERS = ("metrics", "moderation", "campaigns")
AD_KEYWORDS = ("代购", "团购", "加微信", "扫码进群", "vx同号")
CHECKIN_KEYWORD = "打卡"
CHECKIN_POINTS = 10
STREAK_DAYS, STREAK_POINTS, STREAK_BADGE = 2, 5, "连续打卡"
TIMEZONE = "Asia/Shanghai"


# --- scale -------------------------------------------------------------------------


@dataclass(frozen=True)
class Scale:
    """How big a fault run is: `make test` (small) or `make faults` (large)."""

    name: str
    groups: int
    members: int
    days: int
    messages_per_member: float
    stream_seconds: float
    kills_per_consumer: int

    def traffic(self, *, seed: int, group_prefix: str) -> list[dict[str, Any]]:
        """Return this scale's simulated events (the same seed gives the same events)."""
        return list(
            generate(
                seed=seed,
                groups=self.groups,
                members=self.members,
                days=self.days,
                source=SOURCE,
                group_prefix=group_prefix,
                messages_per_member=self.messages_per_member,
                id_prefix=f"{group_prefix}-s{seed}",
            )
        )


SMALL = Scale("small", groups=4, members=300, days=4, messages_per_member=0.9,
              stream_seconds=30, kills_per_consumer=2)  # fmt: skip
LARGE = Scale("large", groups=6, members=620, days=6, messages_per_member=1.0,
              stream_seconds=90, kills_per_consumer=4)  # fmt: skip


def current_scale() -> Scale:
    """Return the scale QUNYUN_FAULTS_SCALE asks for (small unless "large")."""
    return LARGE if os.environ.get("QUNYUN_FAULTS_SCALE", "").lower() == "large" else SMALL


# --- figures -----------------------------------------------------------------------

FIGURES: list[str] = []


@dataclass
class Figures:
    """The numbers a fault test reports: what was sent, acknowledged and counted."""

    test: str
    sent: int = 0
    acknowledged: int = 0
    counted: int = 0
    lost: int = 0
    doubled: int = 0
    status_503: int = 0
    kills: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        """Return the one-line summary."""
        more = "".join(f" {k}={v}" for k, v in self.extra.items())
        return (
            f"[faults:{self.test}] sent={self.sent} acknowledged={self.acknowledged} "
            f"counted={self.counted} lost={self.lost} doubled={self.doubled} "
            f"503s={self.status_503} kills={self.kills}{more}"
        )

    def report(self) -> str:
        """Print the summary, keep it for the session's terminal summary and return it."""
        text = self.line()
        print(text)
        FIGURES.append(text)
        return text


# --- waiting -----------------------------------------------------------------------


def wait_until(check: Callable[[], Any], *, timeout: float, interval: float = 0.3) -> Any:
    """Return check()'s first truthy result within timeout, else its last result."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() >= deadline:
            return result
        time.sleep(interval)


# --- ground truth ------------------------------------------------------------------


def folded(text: str) -> str:
    """NFKC, case-folded, without whitespace: how keyword rules see a message."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text).casefold())


def unique_events(events: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Return the events once each by (source, id), first copy wins."""
    seen: dict[tuple[str, str], Mapping[str, Any]] = {}
    for e in events:
        seen.setdefault((e["source"], e["id"]), e)
    return list(seen.values())


def _local_day(event: Mapping[str, Any], tz: ZoneInfo) -> date:
    return datetime.fromisoformat(event["occurred_at"]).astimezone(tz).date()


Cell = tuple[str, str, str]  # (group, day or member, field)


@dataclass
class Truth:
    """What the services must report, computed from the acknowledged events."""

    events: int
    cells: dict[Cell, int]  # activity and per-member message counts
    offending: dict[str, str]  # event id -> group id: messages the ad rule catches
    checkins: set[tuple[str, str, date]]  # (group, member, local day)
    streaks: set[tuple[str, str]]  # (group, member) with STREAK_DAYS consecutive check-ins
    groups: list[str]
    days: list[date]


def ground_truth(events: Iterable[Mapping[str, Any]], *, tz: ZoneInfo) -> Truth:
    """Compute per group and local day messages, active members, joins and leaves, per
    member message counts, the offending messages and the expected check-in grants."""
    unique = unique_events(events)
    messages: Counter[tuple[str, date]] = Counter()
    active: dict[tuple[str, date], set[str]] = defaultdict(set)
    joins: Counter[tuple[str, date]] = Counter()
    leaves: Counter[tuple[str, date]] = Counter()
    per_member: Counter[tuple[str, str]] = Counter()
    offending: dict[str, str] = {}
    checkins: set[tuple[str, str, date]] = set()
    for e in unique:
        group, member, day = e["group_id"], e["member_id"], _local_day(e, tz)
        if e["type"] == "message.created":
            messages[group, day] += 1
            active[group, day].add(member)
            per_member[group, member] += 1
            text = folded(e["data"].get("text") or "")
            if any(k in text for k in AD_KEYWORDS):
                offending[e["id"]] = group
            if CHECKIN_KEYWORD in text:
                checkins.add((group, member, day))
        elif e["type"] == "member.joined":
            joins[group, day] += 1
        elif e["type"] == "member.left":
            leaves[group, day] += 1
    keys = set(messages) | set(joins) | set(leaves)
    cells: dict[Cell, int] = {}
    for group, day in keys:
        d = day.isoformat()
        cells[group, d, "messages"] = messages[group, day]
        cells[group, d, "active_members"] = len(active[group, day])
        cells[group, d, "joins"] = joins[group, day]
        cells[group, d, "leaves"] = leaves[group, day]
    for (group, member), n in per_member.items():
        cells[group, member, "member_messages"] = n
    streaks = {
        (g, m)
        for g, m, d in checkins
        if all((g, m, d - timedelta(days=k)) in checkins for k in range(1, STREAK_DAYS))
    }
    days = sorted({day for _, day in keys})
    return Truth(
        events=len(unique),
        cells=cells,
        offending=offending,
        checkins=checkins,
        streaks=streaks,
        groups=sorted({g for g, _ in keys}),
        days=days,
    )


@dataclass
class Comparison:
    """Expected versus observed numbers, cell by cell."""

    expected: int = 0
    counted: int = 0
    lost: int = 0
    doubled: int = 0
    mismatches: list[str] = field(default_factory=list)

    def add(self, what: str, expected: int, observed: int) -> None:
        self.expected += expected
        self.counted += observed
        if observed < expected:
            self.lost += expected - observed
        if observed > expected:
            self.doubled += observed - expected
        if observed != expected and len(self.mismatches) < 20:
            self.mismatches.append(f"{what}: expected {expected}, got {observed}")

    @property
    def exact(self) -> bool:
        return self.lost == 0 and self.doubled == 0


# --- traffic -----------------------------------------------------------------------


class Acknowledged:
    """The events ingest answered 202 for (thread-safe; the ground truth's input)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.events: list[dict[str, Any]] = []
        self.times: list[float] = []  # time.perf_counter() of each 202

    def __call__(self, batch: list[dict[str, Any]], at: float) -> None:
        with self._lock:
            self.events.extend(batch)
            self.times.append(at)

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.events)


class Streamer(threading.Thread):
    """Send events to ingest in a background thread, paced, retrying 503s."""

    def __init__(
        self, *, url: str, events: Sequence[dict[str, Any]], seconds: float, batch_size: int = 50
    ) -> None:
        super().__init__(name="fault-streamer", daemon=True)
        self.url, self.events, self.batch_size = url, events, batch_size
        self.rate = max(len(events) / seconds, 1.0)
        self.acknowledged = Acknowledged()
        self.stats: dict[str, Any] = {}
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.stats = send_webhook_batches(
                url=self.url,
                source_id=SOURCE,
                secret=SECRET,
                events=self.events,
                batch_size=self.batch_size,
                rate=self.rate,
                on_accepted=self.acknowledged,
                max_wait_seconds=180,
            )
        except BaseException as exc:  # noqa: BLE001 - surfaced by finish()
            self.error = exc

    def finish(self, timeout: float) -> dict[str, Any]:
        """Wait for the stream to end; raise what the sender raised."""
        self.join(timeout)
        assert not self.is_alive(), f"the stream did not finish in {timeout}s"
        if self.error is not None:
            raise self.error
        return self.stats


def post_events(
    url: str, events: Sequence[Mapping[str, Any]], timeout: float = 30
) -> httpx.Response:
    """POST events as one signed generic batch to ingest at url."""
    body = orjson.dumps({"events": list(events)})
    return httpx.post(
        f"{url}/v1/webhooks/{SOURCE}",
        content=body,
        headers=sign_generic(secret=SECRET, body=body),
        timeout=timeout,
    )


def message(
    group: str, member: str, text: str, *, event_id: str, at: datetime | None = None
) -> dict[str, Any]:
    """Return a generic message.created event."""
    return {
        "id": event_id,
        "source": SOURCE,
        "type": "message.created",
        "group_id": group,
        "member_id": member,
        "occurred_at": (at or datetime.now(UTC)).isoformat(),
        "data": {"message_id": f"m-{event_id}", "text": text, "kind": "text"},
    }


# --- processes ---------------------------------------------------------------------


class Services:
    """Kill and restart the stack's service processes on their ports."""

    def __init__(self, stack: RunningStack, settings: Settings) -> None:
        self.stack = stack
        self.env = {**os.environ, **settings_env(settings), "HOST": "127.0.0.1"}
        self.env.pop("PORT", None)
        self.group_prefix = settings.consumer_group_prefix
        self.kills: Counter[str] = Counter()
        # Metrics events skipped as already applied, summed over the killed processes.
        self.skipped = 0

    def skipped_so_far(self) -> int:
        """Return the duplicates the running metrics process skipped (its /metrics)."""
        try:
            text = httpx.get(f"{self.url('metrics')}/metrics", timeout=5).text
        except httpx.HTTPError:
            return 0
        return int(
            sum(
                float(line.rsplit(" ", 1)[1])
                for line in text.splitlines()
                if line.startswith("qunyun_metrics_duplicates_skipped_total ")
            )
        )

    def url(self, name: str) -> str:
        return self.stack.url(name)

    def kill(self, name: str) -> None:
        """SIGKILL the service process (no shutdown, no commit, no flush)."""
        if name == "metrics":
            self.skipped += self.skipped_so_far()
        proc = self.stack.processes[name]
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        self.kills[name] += 1

    def restart(self, name: str) -> None:
        """Start the service again on the same port (do not wait for it)."""
        port = self.stack.ports[name]
        self.stack.processes[name] = start_service(name, port, self.env, self.stack.logs[name])

    def ready(self, names: Sequence[str] = (), timeout: float = 60) -> None:
        """Wait until the services answer /readyz 200; fail with their log tails."""
        ports = {n: self.stack.ports[n] for n in (names or self.stack.ports)}
        pending = wait_ready(ports, timeout)
        assert not pending, "not ready: " + "\n".join(
            f"--- {n}\n{self.stack.log_tail(n)}" for n in pending
        )


def kill_schedule(
    *, seed: int, names: Sequence[str], per_name: int, seconds: float
) -> list[tuple[float, str]]:
    """Return seeded (seconds after the stream starts, service) kill points, in time order."""
    rng = random.Random(seed)
    victims = [n for n in names for _ in range(per_name)]
    rng.shuffle(victims)
    slots = len(victims)
    # One kill per slot of the stream, at a random point inside it: spread, never bunched.
    return [
        (seconds * (0.05 + 0.85 * (i + rng.random()) / slots), name)
        for i, name in enumerate(victims)
    ]


def run_kills(
    services: Services, schedule: Sequence[tuple[float, str]], *, started: float, seed: int
) -> None:
    """SIGKILL and restart the services on the schedule. Each victim is first waited for
    until ready, then (for up to 3 s) until it exports a lag > 0 — it has a backlog, so it
    is polling and handling batches back to back and the kill most likely lands between
    a handled batch and its commit, which forces a redelivery."""
    rng = random.Random(seed + 1)
    for at, name in schedule:
        delay = started + at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        services.ready([name], timeout=60)
        if name in CONSUMERS:
            group = services.group_prefix + name
            wait_until(
                lambda n=name, g=group: (consumer_lag(services.url(n), g) or 0) > 0,
                timeout=3,
                interval=0.05,
            )
        time.sleep(rng.uniform(0, 0.1))
        services.kill(name)
        services.restart(name)


@dataclass
class RedisServer:
    """A private redis-server with an append-only file, restartable on its port with its data."""

    directory: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        log = open(self.directory / "redis.log", "ab")  # noqa: SIM115 - the child owns it
        try:
            self.proc = subprocess.Popen(
                [
                    "redis-server",
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--dir",
                    str(self.directory),
                    "--appendonly",
                    "yes",
                    "--appendfsync",
                    "always",
                    "--save",
                    "",
                ],  # fmt: skip
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        finally:
            log.close()
        wait_for_port(self.port)

    def stop(self) -> None:
        """Stop it the way an operator does (SIGTERM: the AOF is flushed)."""
        stop(self.proc)
        self.proc = None


@dataclass
class Frozen:
    """A process stopped with SIGSTOP: it holds its sockets but answers nothing."""

    proc: subprocess.Popen[bytes]

    def __enter__(self) -> Frozen:
        os.kill(self.proc.pid, signal.SIGSTOP)
        return self

    def __exit__(self, *_: object) -> None:
        os.kill(self.proc.pid, signal.SIGCONT)


# --- reading the services back -----------------------------------------------------


class Api:
    """GET the services' REST APIs with the admin token."""

    def __init__(self, services: Services | RunningStack, token: str) -> None:
        self.base = services
        self.client = httpx.Client(timeout=30, headers=auth(token))

    def get(self, service: str, path: str, **params: Any) -> Any:
        response = self.client.get(f"{self.base.url(service)}{path}", params=params)
        assert response.status_code == 200, (
            f"GET {service}{path}: {response.status_code} {response.text[:300]}"
        )
        return response.json()

    def post(self, service: str, path: str, body: Mapping[str, Any]) -> Any:
        response = self.client.post(f"{self.base.url(service)}{path}", json=dict(body))
        assert response.status_code in (200, 201), (
            f"POST {service}{path}: {response.status_code} {response.text[:300]}"
        )
        return response.json()

    def pages(self, service: str, path: str, key: str, **params: Any) -> Iterator[dict[str, Any]]:
        """Yield every item of a cursor-paginated list."""
        cursor = None
        while True:
            page = self.get(
                service, path, limit=500, **params, **({"cursor": cursor} if cursor else {})
            )
            yield from page[key]
            cursor = page.get("next_cursor")
            if not cursor:
                return

    def close(self) -> None:
        self.client.close()


def observed_metrics(api: Api, truth: Truth) -> dict[Cell, int]:
    """Read the metrics API for every cell of the ground truth."""
    seen: dict[Cell, int] = {}
    first, last = truth.days[0].isoformat(), truth.days[-1].isoformat()
    for group in truth.groups:
        answer = api.get("metrics", f"/v1/groups/{group}/activity", **{"from": first, "to": last})
        for day in answer["days"]:
            for name in ("messages", "active_members", "joins", "leaves"):
                seen[group, day["date"], name] = int(day[name])
    members = [(g, m) for g, m, f in truth.cells if f == "member_messages"]
    for group, member in members:
        answer = api.client.get(f"{api.base.url('metrics')}/v1/groups/{group}/members/{member}")
        seen[group, member, "member_messages"] = (
            int(answer.json()["messages"]) if answer.status_code == 200 else 0
        )
    return seen


def compare_metrics(truth: Truth, seen: Mapping[Cell, int]) -> Comparison:
    """Compare every ground-truth cell (and any extra non-zero cell) with the API."""
    result = Comparison()
    for cell, expected in sorted(truth.cells.items()):
        result.add("/".join(cell), expected, seen.get(cell, 0))
    for cell, observed in seen.items():
        if cell not in truth.cells and observed:
            result.add("/".join(cell), 0, observed)
    return result


def activity_totals(api: Api, truth: Truth) -> int:
    """Return the sum of messages, joins and leaves the metrics API reports."""
    first, last = truth.days[0].isoformat(), truth.days[-1].isoformat()
    total = 0
    for group in truth.groups:
        answer = api.get("metrics", f"/v1/groups/{group}/activity", **{"from": first, "to": last})
        total += sum(d["messages"] + d["joins"] + d["leaves"] for d in answer["days"])
    return total


def truth_totals(truth: Truth) -> int:
    """Return the sum of messages, joins and leaves in the ground truth."""
    return sum(v for (_, _, f), v in truth.cells.items() if f in ("messages", "joins", "leaves"))


def consumer_lag(url: str, group: str) -> float | None:
    """Return the summed lag one consumer process exports for its group, None before any."""
    try:
        text = httpx.get(f"{url}/metrics", timeout=5).text
    except httpx.HTTPError:
        return None
    values = [
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("qunyun_consumer_lag_messages{") and f'group="{group}"' in line
    ]
    return sum(values) if values else None


# --- operations set up through the REST APIs ---------------------------------------


@dataclass
class Operations:
    """The rule and check-in campaign created per group, and the canary events sent."""

    rules: dict[str, str]  # group -> rule id
    campaigns: dict[str, str]  # group -> campaign id
    canaries: list[dict[str, Any]]


def set_up_operations(
    api: Api, *, services: Services, groups: Sequence[str], starts_at: datetime, tag: str
) -> Operations:
    """Create an ad rule (delete) and a check-in campaign per group, then prove both are
    live in the consumers with a canary ad and a canary check-in per group."""
    rules, campaigns, canaries = {}, {}, []
    ends_at = datetime.now(UTC) + timedelta(days=2)
    for group in groups:
        rule = api.post(
            "moderation",
            f"/v1/groups/{group}/rules",
            {
                "name": "no ads",
                "kind": "keywords",
                "params": {"keywords": list(AD_KEYWORDS), "allow": [], "match": "substring"},
                "action": "delete",
            },
        )
        rules[group] = rule["id"]
        campaign = api.post(
            "campaigns",
            f"/v1/groups/{group}/campaigns",
            {
                "kind": "checkin",
                "title": "每日打卡",
                "starts_at": starts_at.isoformat(),
                "ends_at": ends_at.isoformat(),
                "params": {
                    "keyword": CHECKIN_KEYWORD,
                    "points": CHECKIN_POINTS,
                    "streak_rewards": [
                        {"days": STREAK_DAYS, "points": STREAK_POINTS, "badge": STREAK_BADGE}
                    ],
                },
            },
        )
        campaigns[group] = campaign["id"]
        member = f"{group}:canary"
        canaries += [
            message(group, member, "代购面膜，加微信", event_id=f"{tag}-{group}-canary-ad"),
            message(group, member, "今日打卡", event_id=f"{tag}-{group}-canary-checkin"),
        ]
    for group, campaign_id in campaigns.items():
        path = f"/v1/groups/{group}/campaigns/{campaign_id}"
        status = wait_until(
            lambda p=path: api.get("campaigns", p)["status"] == "active", timeout=30
        )
        assert status, f"campaign {campaign_id} never became active"
    assert post_events(services.url("ingest"), canaries).status_code == 202

    def missing() -> list[str]:
        gaps = []
        for g, c in campaigns.items():
            if not api.get("moderation", f"/v1/groups/{g}/cases")["cases"]:
                gaps.append(f"moderation case in {g}")
            path = f"/v1/groups/{g}/campaigns/{c}/participants"
            if not api.get("campaigns", path)["participants"]:
                gaps.append(f"campaign participant in {g}")
        return gaps

    gaps = wait_until(lambda: not missing(), timeout=120) or missing()
    assert gaps is True or not gaps, f"the canaries never reached: {gaps}\n" + "\n".join(
        f"--- {n}\n{services.stack.log_tail(n)}" for n in ("moderation", "campaigns")
    )
    return Operations(rules=rules, campaigns=campaigns, canaries=canaries)


def compare_moderation(
    api: Api, truth: Truth, actions: Sequence[Mapping[str, Any]]
) -> tuple[Comparison, dict[str, int]]:
    """One case per offending event and exactly one distinct action per case."""
    result = Comparison()
    cases = [
        c for g in truth.groups for c in api.pages("moderation", f"/v1/groups/{g}/cases", "cases")
    ]
    per_event = Counter(c["event_id"] for c in cases)
    for event_id in sorted(truth.offending):
        result.add(f"cases for {event_id}", 1, per_event.get(event_id, 0))
    for event_id, n in per_event.items():
        if event_id not in truth.offending:
            result.add(f"cases for non-offending {event_id}", 0, n)
    ids_per_case: dict[str, set[str]] = defaultdict(set)
    copies = Counter(a["id"] for a in actions)
    for a in actions:
        ids_per_case[a["case_id"]].add(a["id"])
    for case in cases:
        result.add(f"actions for case {case['id']}", 1, len(ids_per_case.pop(case["id"], set())))
    for case_id, ids in ids_per_case.items():
        result.add(f"actions for unknown case {case_id}", 0, len(ids))
    figures = {
        "cases": len(cases),
        "actions": len(copies),
        "actions_republished": sum(n - 1 for n in copies.values()),
    }
    return result, figures


def compare_campaigns(
    api: Api, truth: Truth, ops: Operations, grants: Sequence[Mapping[str, Any]]
) -> tuple[Comparison, dict[str, int]]:
    """Participants count one check-in per member per local day; each expected grant is on
    campaigns.rewards.v1 under exactly one id, and no other grant is."""
    result = Comparison()
    expected_days: Counter[tuple[str, str]] = Counter((g, m) for g, m, _ in truth.checkins)
    for group, campaign_id in ops.campaigns.items():
        path = f"/v1/groups/{group}/campaigns/{campaign_id}/participants"
        counts = {
            p["member_id"]: int(p["count"]) for p in api.pages("campaigns", path, "participants")
        }
        members = {m for g, m in expected_days if g == group} | set(counts)
        for member in sorted(members):
            result.add(
                f"check-ins of {member}", expected_days[group, member], counts.get(member, 0)
            )
    expected = {(ops.campaigns[g], m, f"checkin:{d.isoformat()}") for g, m, d in truth.checkins} | {
        (ops.campaigns[g], m, f"streak:{STREAK_DAYS}") for g, m in truth.streaks
    }
    ids: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    copies = Counter(r["id"] for r in grants)
    for r in grants:
        ids[r["campaign_id"], r["member_id"], r["reason"]].add(r["id"])
    for key in sorted(expected | set(ids)):
        result.add(f"grants {key}", 1 if key in expected else 0, len(ids.get(key, set())))
    figures = {
        "grants": len(copies),
        "grants_republished": sum(n - 1 for n in copies.values()),
    }
    return result, figures


def read_values(
    bootstrap: str, topic: str, *, expect: int, timeout: float = 30, settle: float = 2.0
) -> list[dict[str, Any]]:
    """Read a topic from the beginning and decode its JSON values."""
    from tests.support import read_topic

    return [
        orjson.loads(r.value)
        for r in read_topic(bootstrap, topic, expect=expect, timeout=timeout, settle=settle)
    ]


@dataclass
class Verdict:
    """Every comparison of a run, summed into lost and doubled."""

    metrics: Comparison
    moderation: Comparison
    campaigns: Comparison
    counted: int
    countable: int
    extra: dict[str, Any]

    @property
    def lost(self) -> int:
        return self.metrics.lost + self.moderation.lost + self.campaigns.lost

    @property
    def doubled(self) -> int:
        return self.metrics.doubled + self.moderation.doubled + self.campaigns.doubled

    def problems(self) -> str:
        """Name the first mismatches of each service."""
        return "\n".join(
            f"{name}: {c.mismatches}"
            for name, c in (
                ("metrics", self.metrics),
                ("moderation", self.moderation),
                ("campaigns", self.campaigns),
            )
            if not c.exact
        )


def settle_and_verify(
    *,
    api: Api,
    services: Services,
    settings: Settings,
    truth: Truth,
    ops: Operations,
    bootstrap: str,
    consumers: Sequence[str] = CONSUMERS,
) -> Verdict:
    """Wait until the consumers caught up (totals reached, lag 0), then compare every
    metrics cell, case, action and grant with the ground truth."""
    countable = truth_totals(truth)
    wait_until(lambda: activity_totals(api, truth) >= countable, timeout=120, interval=1)
    for name in consumers:
        group = settings.consumer_group_prefix + name
        wait_until(lambda n=name, g=group: consumer_lag(services.url(n), g) == 0, timeout=60)
    actions = read_values(bootstrap, settings.topic_moderation_actions, expect=len(truth.offending))
    expected_grants = len(truth.checkins) + len(truth.streaks)
    grants = read_values(bootstrap, settings.topic_campaign_rewards, expect=expected_grants)
    seen = observed_metrics(api, truth)
    moderation, mod_figures = compare_moderation(api, truth, actions)
    campaigns, camp_figures = compare_campaigns(api, truth, ops, grants)
    return Verdict(
        metrics=compare_metrics(truth, seen),
        moderation=moderation,
        campaigns=campaigns,
        counted=sum(v for (_, _, f), v in seen.items() if f in ("messages", "joins", "leaves")),
        countable=countable,
        extra={
            "metric_cells": len(truth.cells),
            "offending": len(truth.offending),
            **mod_figures,
            "expected_grants": expected_grants,
            **camp_figures,
        },
    )


def server_errors(url: str) -> int:
    """Return how many 5xx other than 503 a service process answered (its /metrics)."""
    text = httpx.get(f"{url}/metrics", timeout=5).text
    return int(
        sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("qunyun_http_requests_total{")
            and re.search(r'status="5\d\d"', line)
            and 'status="503"' not in line
        )
    )


def readyz(url: str) -> tuple[int, Any]:
    """Return a service's /readyz status code and body."""
    try:
        response = httpx.get(f"{url}/readyz", timeout=5)
    except httpx.HTTPError as exc:
        return 0, repr(exc)
    return response.status_code, response.json()
