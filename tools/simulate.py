"""Realistic community traffic: generate it with a seed, send it via the webhooks or Kafka.

`python -m tools.simulate --help` for the CLI; `make demo` runs the `demo`
subcommand against a running `make run` stack. Importable pieces:
- generate(...): the deterministic event stream (dicts of the community.events.v1 contract);
- send_webhook_batches(...): signed generic batches to ingest, retrying 503s;
- send_kafka(...): straight to the events topic keyed by group id;
both sinks can record the acknowledged events as JSON lines (the ground truth).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import math
import os
import random
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import httpx
import orjson

from tools import textgen

# Hour-of-day weights of a Chinese hobby group: quiet at night, peaks at lunch and evening.
HOUR_WEIGHTS = (
    1, 1, 0.5, 0.3, 0.3, 0.5, 2, 4, 6, 5, 4, 5, 8, 6, 4, 4, 4, 5, 6, 8, 10, 11, 9, 4,
)  # fmt: skip
LURKER_SHARE = 0.45
PARETO_ALPHA = 1.16  # the 80/20 shape
DAY = timedelta(days=1)


@dataclass
class _Member:
    id: str
    name: str
    joined_at: datetime
    weight: float
    checkin_prob: float
    spammer: bool
    left_at: datetime | None = None
    messages: int = 0
    channel: str | None = None
    invited_by: str | None = None


@dataclass
class _Group:
    id: str
    topic: str
    rng: random.Random
    members: list[_Member] = field(default_factory=list)
    recent: list[str] = field(default_factory=list)
    serial: int = 0


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def _roster(
    *, group: _Group, members: int, days: int, start: datetime, founders: float
) -> list[_Member]:
    rng = group.rng
    roster = []
    spammers = max(1, members // 50) if members >= 20 else 0
    for j in range(members):
        if rng.random() < founders:
            joined = start + timedelta(seconds=rng.uniform(0, 3600))
        else:
            joined = start + timedelta(seconds=rng.uniform(0, days * 86400))
        spammer = j >= members - spammers
        lurker = rng.random() < LURKER_SHARE
        weight = 0.0 if (lurker or spammer) else rng.paretovariate(PARETO_ALPHA)
        checkin_prob = 0.0 if spammer else (0.35 if rng.random() < 0.25 else 0.01)
        roster.append(
            _Member(
                id=f"{group.id}:u{j:05d}",
                name=textgen.display_name(rng, conforming=rng.random() < 0.85),
                joined_at=joined,
                weight=weight,
                checkin_prob=checkin_prob,
                spammer=spammer,
            )
        )
    _acquire(roster, random.Random(rng.random()))
    return roster


def _acquire(roster: list[_Member], rng: random.Random) -> None:
    """Give members channels of different quality and invitation chains (see textgen.CHANNELS).

    老带新 members are invited by an earlier member who talks; 地推扫码 members by one of the
    promoters (early members), whose invitees mostly never speak.
    """
    ordered = sorted(roster, key=lambda m: m.joined_at)
    promoters = [m.id for m in ordered[: textgen.PROMOTERS]]
    names = [c[0] for c in textgen.CHANNELS]
    shares = [c[1] for c in textgen.CHANNELS]
    lurking = {c[0]: c[2] for c in textgen.CHANNELS}
    talkers: list[_Member] = []
    for n, m in enumerate(ordered):
        m.channel = rng.choices(names, weights=shares)[0] if n >= len(promoters) else None
        if not m.spammer:
            if rng.random() < lurking[m.channel]:
                m.weight = 0.0
                m.checkin_prob = 0.0 if m.channel == "地推扫码" else m.checkin_prob
            elif m.weight == 0.0:
                m.weight = rng.paretovariate(PARETO_ALPHA)
        if m.channel == "老带新" and talkers:
            m.invited_by = rng.choice(talkers).id
        elif m.channel == "地推扫码":
            m.invited_by = rng.choice(promoters)
        if m.weight > 0:
            talkers.append(m)


def _moment(
    rng: random.Random, *, lo: datetime, hi: datetime, day_start: datetime
) -> datetime | None:
    """Pick a time in [lo, hi) shaped by the hour-of-day weights; None when the window is empty."""
    if hi <= lo:
        return None
    for _ in range(4):
        hour = rng.choices(range(24), weights=HOUR_WEIGHTS)[0]
        moment = day_start + timedelta(hours=hour, seconds=rng.uniform(0, 3600))
        if lo <= moment < hi:
            return moment
    return lo + (hi - lo) * rng.random()


class _Builder:
    """Turn decisions into contract events with stable ids."""

    def __init__(self, *, source: str, id_prefix: str) -> None:
        self.source = source
        self.id_prefix = id_prefix

    def _envelope(
        self, group: _Group, member: _Member, kind: str, at: datetime, data: dict[str, Any]
    ) -> tuple[datetime, dict[str, Any]]:
        group.serial += 1
        event_id = f"{self.id_prefix}-{group.id}-{group.serial}"
        return at, {
            "id": event_id,
            "source": self.source,
            "type": kind,
            "group_id": group.id,
            "member_id": member.id,
            "occurred_at": _iso(at),
            "data": data,
        }

    def joined(self, group: _Group, member: _Member) -> tuple[datetime, dict[str, Any]]:
        method = group.rng.choice(("invite", "invite", "qrcode", "link", "approval"))
        return self._envelope(
            group,
            member,
            "member.joined",
            member.joined_at,
            {"display_name": member.name, "method": method}
            | ({"channel": member.channel} if member.channel else {})
            | ({"invited_by": member.invited_by, "method": "invite"} if member.invited_by else {}),
        )

    def left(self, group: _Group, member: _Member) -> tuple[datetime, dict[str, Any]]:
        assert member.left_at is not None
        return self._envelope(group, member, "member.left", member.left_at, {"reason": "left"})

    def renamed(
        self, group: _Group, member: _Member, at: datetime
    ) -> tuple[datetime, dict[str, Any]]:
        member.name = textgen.display_name(group.rng)
        return self._envelope(group, member, "member.updated", at, {"display_name": member.name})

    def message(
        self,
        group: _Group,
        member: _Member,
        at: datetime,
        text: str,
        *,
        kind: str = "text",
        mentions: Sequence[str] = (),
        reply_to: str | None = None,
        attachments: Sequence[dict[str, Any]] = (),
    ) -> tuple[datetime, dict[str, Any]]:
        member.messages += 1
        event = self._envelope(group, member, "message.created", at, {})
        message_id = "m-" + event[1]["id"]
        data: dict[str, Any] = {
            "message_id": message_id,
            "text": text,
            "kind": kind,
            "display_name": member.name,
        }
        if mentions:
            data["mentions"] = list(mentions)
        if reply_to:
            data["reply_to"] = reply_to
        if attachments:
            data["attachments"] = list(attachments)
        event[1]["data"] = data
        group.recent = (group.recent + [message_id])[-20:]
        return event


def _day_events(
    *, group: _Group, build: _Builder, day: int, day_start: datetime, per_member: float
) -> list[tuple[datetime, dict[str, Any]]]:
    rng = group.rng
    day_end = day_start + DAY
    out: list[tuple[datetime, dict[str, Any]]] = []
    for m in group.members:
        if day_start <= m.joined_at < day_end:
            out.append(build.joined(group, m))
    present = [m for m in group.members if m.joined_at < day_end and m.left_at is None]
    for m in present:
        # Lurkers drift away more than talkers; spammers leave soon after posting.
        p_leave = 0.25 if m.spammer else (0.01 if m.weight == 0 else 0.004)
        if day > 0 and rng.random() < p_leave:
            lo = max(m.joined_at, day_start) + timedelta(minutes=30)
            m.left_at = lo + (day_end - lo) * rng.random() if lo < day_end else None

    def window(m: _Member) -> tuple[datetime, datetime]:
        lo = max(day_start, m.joined_at + timedelta(seconds=1))
        return lo, min(day_end, m.left_at) if m.left_at else day_end

    talkers = [m for m in present if m.weight > 0]
    if talkers:
        mean = per_member * len(present)
        count = max(0, round(rng.gauss(mean, math.sqrt(mean)))) if mean > 0 else 0
        picks = rng.choices(talkers, weights=[m.weight for m in talkers], k=count)
        for m in picks:
            at = _moment(rng, lo=window(m)[0], hi=window(m)[1], day_start=day_start)
            if at is None:
                continue
            out.append(_ordinary(group=group, build=build, member=m, at=at, present=present))
    for m in present:
        if m.checkin_prob and rng.random() < m.checkin_prob:
            lo, hi = window(m)
            at = _moment(
                rng, lo=max(lo, day_start + timedelta(hours=6)), hi=hi, day_start=day_start
            )
            if at is not None:
                text = textgen.checkin(rng, topic=group.topic, day=day + 1)
                out.append(build.message(group, m, at, text))
        if m.spammer and rng.random() < 0.6:
            lo, hi = window(m)
            at = _moment(rng, lo=lo, hi=hi, day_start=day_start)
            if at is not None:
                out.extend(_spam(group=group, build=build, member=m, at=at))
        if rng.random() < 0.002:
            at = _moment(rng, lo=window(m)[0], hi=window(m)[1], day_start=day_start)
            if at is not None:
                out.append(build.renamed(group, m, at))
    # The demo's poll and feedback campaigns: some talkers vote, a few send feedback.
    for m in talkers:
        for chance, write in ((0.04, textgen.vote), (0.01, textgen.feedback)):
            if rng.random() < chance:
                at = _moment(rng, lo=window(m)[0], hi=window(m)[1], day_start=day_start)
                if at is not None:
                    out.append(build.message(group, m, at, write(rng)))
    if talkers and rng.random() < 0.3:
        flooder = rng.choice(talkers)
        lo, hi = window(flooder)
        at = _moment(rng, lo=lo, hi=hi - timedelta(seconds=30), day_start=day_start)
        if at is not None:
            text = rng.choice(textgen.REPLIES) + rng.choice(textgen.EMOJI)
            for k in range(rng.randint(6, 12)):
                out.append(build.message(group, flooder, at + timedelta(seconds=k * 0.8), text))
    for m in present:
        if m.left_at is not None and day_start <= m.left_at < day_end:
            out.append(build.left(group, m))
    return out


def _ordinary(
    *, group: _Group, build: _Builder, member: _Member, at: datetime, present: list[_Member]
) -> tuple[datetime, dict[str, Any]]:
    rng = group.rng
    roll = rng.random()
    reply_to = rng.choice(group.recent) if group.recent and rng.random() < 0.12 else None
    mentions = [rng.choice(present).id] if rng.random() < 0.05 else []
    if roll < 0.05:
        url = f"https://img.example.cn/{group.serial}.jpg"
        attachment = {"kind": "image", "url": url, "name": "photo.jpg"}
        return build.message(group, member, at, "", kind="image", attachments=[attachment])
    if roll < 0.07:
        return build.message(group, member, at, rng.choice(textgen.EMOJI), kind="sticker")
    if roll < 0.08:
        return build.message(group, member, at, textgen.link(rng), kind="link")
    text = textgen.chat(rng, topic=group.topic)
    return build.message(group, member, at, text, mentions=mentions, reply_to=reply_to)


def _spam(
    *, group: _Group, build: _Builder, member: _Member, at: datetime
) -> list[tuple[datetime, dict[str, Any]]]:
    rng = group.rng
    out = [build.message(group, member, at, textgen.ad(rng))]
    roll = rng.random()
    later = at + timedelta(seconds=rng.uniform(5, 120))
    if roll < 0.4:
        title = textgen.miniprogram_title(rng)
        card = {"kind": "miniprogram", "url": "https://mp.example.cn/card", "name": title}
        out.append(
            build.message(group, member, later, title, kind="miniprogram", attachments=[card])
        )
    elif roll < 0.7:
        out.append(build.message(group, member, later, textgen.link(rng), kind="link"))
    return out


def generate(
    *,
    seed: int,
    groups: int = 3,
    members: int = 200,
    days: int = 7,
    start: datetime | None = None,
    source: str = "sim",
    group_ids: Sequence[str] | None = None,
    group_prefix: str = "sim",
    messages_per_member: float = 0.6,
    founders: float = 0.3,
    id_prefix: str | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield a community's events in time order; the same arguments always give the same events.

    Members join over `days` (a `founders` share on day 0) with heavy-tailed activity
    (45% lurkers, Pareto weights for the rest), check-ins, spammers posting ads, links and
    mini-program cards, occasional floods, renames and leaves. `start` defaults to `days`
    days before now.
    """
    start = start or datetime.now(UTC).replace(microsecond=0) - days * DAY
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    ids = list(group_ids) if group_ids else [f"{group_prefix}:g{g}" for g in range(groups)]
    build = _Builder(source=source, id_prefix=id_prefix or f"sim{seed}")
    state = []
    for index, gid in enumerate(ids):
        group = _Group(
            id=gid,
            topic=textgen.TOPICS[index % len(textgen.TOPICS)],
            rng=random.Random(f"{seed}:{gid}"),
        )
        group.members = _roster(
            group=group, members=members, days=days, start=start, founders=founders
        )
        state.append(group)
    for day in range(days):
        day_start = start + day * DAY
        batch: list[tuple[datetime, dict[str, Any]]] = []
        for group in state:
            batch.extend(
                _day_events(
                    group=group,
                    build=build,
                    day=day,
                    day_start=day_start,
                    per_member=messages_per_member,
                )
            )
        batch.sort(key=lambda item: (item[0], item[1]["id"]))
        for _, event in batch:
            yield event


# --- sinks ---------------------------------------------------------------------------


class Progress:
    """A one-line progress bar with events/s on stderr."""

    def __init__(self, *, label: str, total: int | None = None, enabled: bool = True) -> None:
        self.label, self.total, self.enabled = label, total, enabled
        self.count = 0
        self.retries = 0
        self.started = time.monotonic()
        self._shown = 0.0

    def update(self, n: int) -> None:
        """Count n more events and redraw at most five times a second."""
        self.count += n
        now = time.monotonic()
        if self.enabled and now - self._shown >= 0.2:
            self._shown = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        rate = self.count / max(now - self.started, 1e-9)
        if self.total:
            done = min(self.count / self.total, 1.0)
            bar = "#" * int(done * 24)
            head = f"[{bar:<24}] {self.count}/{self.total}"
        else:
            head = f"{self.count}"
        extra = f"  retries {self.retries}" if self.retries else ""
        sys.stderr.write(f"\r{self.label} {head} events  {rate:,.0f} ev/s{extra}   ")
        sys.stderr.flush()

    def close(self) -> None:
        """Draw the final state and end the line."""
        if self.enabled:
            self._draw(time.monotonic())
            sys.stderr.write("\n")
            sys.stderr.flush()


class Pacer:
    """Hold a sender to `rate` events/s on average (None: no limit)."""

    def __init__(self, rate: float | None) -> None:
        self.rate = rate
        self.started = time.monotonic()
        self.sent = 0

    def wait(self, n: int) -> None:
        """Sleep until n more events may go."""
        if self.rate:
            due = self.started + self.sent / self.rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        self.sent += n


def _new_stats() -> dict[str, Any]:
    return {"events": 0, "accepted": 0, "duplicates": 0, "batches": 0, "retries": 0}


def _batches(events: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for event in events:
        batch.append(event)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def sign_generic(*, secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """Return the X-Qunyun-Timestamp and X-Qunyun-Signature headers for a generic body."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {
        "Content-Type": "application/json",
        "X-Qunyun-Timestamp": ts,
        "X-Qunyun-Signature": f"v1={digest}",
    }


class WebhookRejected(RuntimeError):
    """Ingest refused a batch for a reason retrying will not fix."""


def _write_record(record: IO[bytes] | None, events: Sequence[dict[str, Any]]) -> None:
    if record is not None:
        record.write(b"".join(orjson.dumps(e) + b"\n" for e in events))
        record.flush()


def send_webhook_batches(
    *,
    url: str,
    source_id: str,
    secret: str,
    events: Iterable[dict[str, Any]],
    batch_size: int = 500,
    rate: float | None = None,
    record: IO[bytes] | None = None,
    progress: bool = False,
    total: int | None = None,
    max_wait_seconds: float = 120.0,
    on_accepted: Callable[[list[dict[str, Any]], float], None] | None = None,
    client: httpx.Client | None = None,
) -> dict[str, Any]:
    """POST the events as signed generic batches to ingest at `url`; return counts.

    503s (honouring Retry-After) and connection errors are retried with the same ids,
    which ingest deduplicates; other refusals raise WebhookRejected. Each acknowledged
    batch is written to `record` (JSON lines) and passed to `on_accepted` with its time.
    `client` (e.g. a FastAPI TestClient) replaces the default HTTP client.
    """
    if not 1 <= batch_size <= 1000:
        raise ValueError("batch_size must be within 1..1000")
    endpoint = f"{url.rstrip('/')}/v1/webhooks/{source_id}"
    stats = _new_stats()
    bar = Progress(label="webhook", total=total, enabled=progress)
    pacer = Pacer(rate)
    started = time.monotonic()
    with ExitStack() as stack:
        if client is None:
            client = stack.enter_context(httpx.Client(timeout=30))
        for batch in _batches(events, batch_size):
            pacer.wait(len(batch))
            body = orjson.dumps({"events": batch})
            give_up = time.monotonic() + max_wait_seconds
            while True:
                try:
                    resp = client.post(
                        endpoint, content=body, headers=sign_generic(secret=secret, body=body)
                    )
                except httpx.TransportError as exc:
                    if time.monotonic() > give_up:
                        raise WebhookRejected(f"ingest unreachable: {exc!r}") from exc
                    stats["retries"] += 1
                    bar.retries += 1
                    time.sleep(0.5)
                    continue
                if resp.status_code == 202:
                    break
                if resp.status_code == 503 and time.monotonic() < give_up:
                    stats["retries"] += 1
                    bar.retries += 1
                    time.sleep(_retry_after(resp.headers.get("Retry-After")))
                    continue
                raise WebhookRejected(f"ingest answered {resp.status_code}: {resp.text[:500]}")
            answer = resp.json()
            stats["events"] += len(batch)
            stats["accepted"] += int(answer.get("accepted", 0))
            stats["duplicates"] += int(answer.get("duplicates", 0))
            stats["batches"] += 1
            _write_record(record, batch)
            if on_accepted is not None:
                on_accepted(batch, time.perf_counter())
            bar.update(len(batch))
    bar.close()
    stats["seconds"] = time.monotonic() - started
    return stats


def _retry_after(value: str | None) -> float:
    try:
        return min(max(float(value or 1), 0.05), 30.0)
    except ValueError:
        return 1.0


def send_kafka(
    *,
    bootstrap: str,
    topic: str,
    events: Iterable[dict[str, Any]],
    rate: float | None = None,
    record: IO[bytes] | None = None,
    progress: bool = False,
    total: int | None = None,
    chunk: int = 1000,
) -> dict[str, Any]:
    """Produce the events to `topic` keyed by group id (acks=all), stamping received_at."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    bar = Progress(label="kafka", total=total, enabled=progress)
    pacer = Pacer(rate)
    stats = _new_stats()
    started = time.monotonic()
    try:
        for batch in _batches(
            events, chunk if not rate else max(1, min(chunk, int(rate / 10) or 1))
        ):
            pacer.wait(len(batch))
            received = _iso(datetime.now(UTC))
            stamped = [{**e, "received_at": e.get("received_at") or received} for e in batch]
            futures = [
                producer.send(topic, key=e["group_id"].encode(), value=orjson.dumps(e))
                for e in stamped
            ]
            producer.flush(timeout=60)
            for future in futures:
                future.get(timeout=60)
            stats["events"] += len(batch)
            stats["accepted"] += len(batch)
            stats["batches"] += 1
            _write_record(record, stamped)
            bar.update(len(batch))
    finally:
        producer.close(timeout=10)
        bar.close()
    stats["seconds"] = time.monotonic() - started
    return stats


# --- CLI -----------------------------------------------------------------------------


def _source_secret(*, config: str | None, source: str, secret: str | None) -> str:
    if secret:
        return secret
    from services.common.settings import load_config

    found = load_config(config).source(source) if config else None
    if found is None:
        raise SystemExit(f"no secret: pass --secret or a --config holding source {source!r}")
    return found.secret


def _add_traffic_args(parser: argparse.ArgumentParser, *, days: int, members: int) -> None:
    parser.add_argument("--seed", type=int, default=None, help="same seed, same traffic")
    parser.add_argument("--members", type=int, default=members, help="members per group")
    parser.add_argument("--days", type=int, default=days, help="days of traffic")
    parser.add_argument(
        "--messages-per-member",
        type=float,
        default=0.6,
        help="average messages per member and day (heavy-tailed across members)",
    )
    parser.add_argument("--rate", type=float, default=None, help="events/s limit (default none)")
    parser.add_argument("--batch-size", type=int, default=500, help="events per webhook batch")
    parser.add_argument("--record", type=Path, default=None, help="write acked events (JSONL)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def build_parser() -> argparse.ArgumentParser:
    """Return the CLI parser with its `run` and `demo` subcommands."""
    parser = argparse.ArgumentParser(
        prog="python -m tools.simulate",
        description="Simulate community chat traffic (Chinese hobby groups) into qunyun.",
        epilog="`run --help` and `demo --help` list each command's options; "
        "without a command, `run` is assumed.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="generate traffic and send it (default command)")
    run.add_argument("--groups", type=int, default=3, help="number of groups")
    run.add_argument("--group-prefix", default="sim", help="group ids are PREFIX:gN")
    run.add_argument("--start", default=None, help="ISO time of day 0 (default: now - days)")
    run.add_argument("--via", choices=("webhook", "kafka", "stdout"), default="webhook")
    run.add_argument("--url", default="http://127.0.0.1:8001", help="ingest base URL")
    run.add_argument("--source", default="dev", help="webhook source id (a generic source)")
    run.add_argument("--secret", default=None, help="the source's secret (or use --config)")
    run.add_argument("--config", default=os.environ.get("QUNYUN_CONFIG", "var/dev-config.toml"))
    run.add_argument(
        "--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    )
    run.add_argument("--topic", default=os.environ.get("TOPIC_EVENTS", "community.events.v1"))
    _add_traffic_args(run, days=7, members=200)
    demo = sub.add_parser("demo", help="fill a running `make run` stack with a few days of data")
    demo.add_argument("--group", default="demo", help="the demo group id")
    demo.add_argument("--host", default="http://127.0.0.1", help="where `make run` listens")
    demo.add_argument("--config", default="var/dev-config.toml")
    demo.add_argument("--token-file", default="var/dev-token")
    demo.add_argument("--source", default="dev")
    _add_traffic_args(demo, days=3, members=150)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI."""
    args_in = list(sys.argv[1:] if argv is None else argv)
    if args_in and args_in[0] not in ("run", "demo", "-h", "--help"):
        args_in.insert(0, "run")
    if not args_in:
        args_in = ["run"]
    args = build_parser().parse_args(args_in)
    if args.seed is None:
        args.seed = int(time.time())
    if args.command == "demo":
        from tools.demo import run_demo

        return run_demo(args)
    start = datetime.fromisoformat(args.start) if args.start else None
    if start is not None and start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    events = generate(
        seed=args.seed,
        groups=args.groups,
        members=args.members,
        days=args.days,
        start=start,
        source=args.source,
        group_prefix=args.group_prefix,
        messages_per_member=args.messages_per_member,
    )
    record = open(args.record, "wb") if args.record else None  # noqa: SIM115
    try:
        if args.via == "stdout":
            for event in events:
                sys.stdout.buffer.write(orjson.dumps(event) + b"\n")
            return 0
        if args.via == "kafka":
            stats = send_kafka(
                bootstrap=args.bootstrap,
                topic=args.topic,
                events=events,
                rate=args.rate,
                record=record,
                progress=not args.no_progress,
            )
        else:
            stats = send_webhook_batches(
                url=args.url,
                source_id=args.source,
                secret=_source_secret(config=args.config, source=args.source, secret=args.secret),
                events=events,
                batch_size=args.batch_size,
                rate=args.rate,
                record=record,
                progress=not args.no_progress,
            )
    finally:
        if record is not None:
            record.close()
    print(orjson.dumps({"seed": args.seed, **stats}).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
