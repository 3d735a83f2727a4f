"""Redis state for the metrics benchmarks, written straight through the apply script.

`fill_group`: one big group (members joining over the days through 8 channels, half of
them invited by an earlier member, each active on a few days); `fill_groups`: many small
groups for the overview; `group_memory`: what a group's keys hold.
"""

from __future__ import annotations

import random
import time
import uuid
from zoneinfo import ZoneInfo

import redis

from services.metrics.apply import Applier, Row, script_row
from services.metrics.keys import GroupKeys, start_of_day_ms, today

UTC_ZONE = ZoneInfo("UTC")


def fill_group(
    client: redis.Redis, *, group_id: str, members: int, days: int, active_days: int
) -> int:
    """Apply joins and one message per active day for every member; return events applied."""
    applier = Applier(client, tz=UTC_ZONE, history_days=400)
    rng = random.Random(members)
    first = today(UTC_ZONE) - days + 1
    batch: list[Row] = []
    applied = 0
    pipe = client.pipeline(transaction=False)

    def flush() -> None:
        nonlocal batch, pipe
        if batch:
            applier.queue(pipe, group_id, batch)
            batch = []
        if len(pipe) >= 20:
            pipe.execute()
            pipe = client.pipeline(transaction=False)

    for member in range(members):
        member_id = f"u:{member:06d}"
        join_day = first + member * days // members
        ms = start_of_day_ms(join_day, UTC_ZONE) + rng.randrange(86_400_000)
        inviter = f"u:{rng.randrange(member):06d}" if member and rng.random() < 0.5 else ""
        batch.append(
            script_row(
                kind="j",
                source="bench",
                event_id=f"j{member}",
                member_id=member_id,
                ts_ms=ms,
                day=join_day,
                extra=(f"channel-{member % 8}", inviter),
            )
        )
        span = range(join_day, first + days)
        for n, day in enumerate(rng.sample(span, min(active_days, len(span)))):
            ms = start_of_day_ms(day, UTC_ZONE) + rng.randrange(86_400_000)
            batch.append(
                script_row(
                    kind="m",
                    source="bench",
                    event_id=f"m{member}-{n}",
                    member_id=member_id,
                    ts_ms=ms,
                    day=day,
                    extra=(f"m{member}-{n}",),
                )
            )
        applied += 1 + min(active_days, len(span))
        if len(batch) >= 5000:
            flush()
    flush()
    pipe.execute()
    return applied


def group_memory(client: redis.Redis, group_id: str) -> tuple[int, int, int, int]:
    """Return bytes of all the group's keys, of its dedup keys, of its channel/inviter keys,
    and the number of keys."""
    total = dedup = acquired = keys = 0
    prefix = GroupKeys(group_id).prefix
    acquisition_keys = tuple(f"{prefix}{k}".encode() for k in ("jn", "ch", "ac:", "ai:"))
    for key in client.scan_iter(match=prefix + "*", count=5000):
        used = client.memory_usage(key, samples=0) or 0
        total += used
        keys += 1
        if key.startswith((prefix + "dd:").encode()):
            dedup += used
        if key.startswith(acquisition_keys):
            acquired += used
    return total, dedup, acquired, keys


def fill_groups(client: redis.Redis, *, groups: int, members: int) -> list[str]:
    """Fill small groups (members join, half speak today) for the overview; return their ids."""
    applier = Applier(client, tz=UTC_ZONE, history_days=400)
    ids = [f"bench:overview:{uuid.uuid4().hex[:8]}:{n}" for n in range(groups)]
    day, ms = today(UTC_ZONE), int(time.time() * 1000)
    pipe = client.pipeline(transaction=False)
    for group in ids:
        rows = [
            script_row(
                kind="j",
                source="b",
                event_id=f"j{m}",
                member_id=f"u{m}",
                ts_ms=ms - 1000,
                day=day,
                extra=("", ""),
            )
            for m in range(members)
        ]
        rows += [
            script_row(
                kind="m",
                source="b",
                event_id=f"m{m}",
                member_id=f"u{m}",
                ts_ms=ms,
                day=day,
                extra=(f"m{m}",),
            )
            for m in range(members // 2)
        ]
        applier.queue(pipe, group, rows)
    applier.index(pipe, ids)
    pipe.execute()
    return ids
