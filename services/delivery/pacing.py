"""Pacing shared by every replica: Redis token buckets per source and per group, and pauses.

Each source has a global bucket (`rate_per_second`, a one-second burst) and each of its
groups a bucket for posts (`rate_per_group_per_minute`, no burst: posts are spaced evenly,
so no window ever sees more than the rate). Deletes, mutes and kicks only take from the
source's bucket: the platforms' per-chat limits are about messages sent, and an ad must
not wait behind a quota meant for posts. Defaults are the platforms' documented limits
(docs/delivery.md); a source's own values override them.

A rate-limit hint sets a pause key with the hint as TTL: every replica's next take on that
source (or group) answers "wait" until it expires. One script (lua/pace.lua) takes from one
bucket after checking its pause; keys carry a hash tag (`{src:…}` or the group `{…}`), so on
a Redis Cluster each call stays within one slot. The group is checked first and refunded
when the source then says wait, so a group's quota is never spent without a call.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files

import redis

from services.common.redis_client import hash_tag
from services.common.settings import Source

PACE_LUA = (files("services.delivery") / "lua" / "pace.lua").read_text(encoding="utf-8")


@dataclass(frozen=True)
class Rates:
    """A source's pacing: calls per second overall, posts per minute per group (None: none)."""

    per_second: float | None
    per_group_per_minute: float | None


PLATFORM_RATES: dict[str, Rates] = {
    "telegram": Rates(30.0, 20.0),
    "slack": Rates(None, 60.0),
    "feishu": Rates(50.0, 300.0),
    "onebot": Rates(2.0, None),
    # WeCom: 10,000 calls a minute and 150,000 an hour per API per corp (the hour is the
    # binding one: ~41/s). Group posts are tasks the sender confirms, and each group takes a
    # limited number a month (by default one a day): WeCom enforces that, not a call rate.
    "wecom": Rates(40.0, None),
}


def rates_for(source: Source) -> Rates:
    """The source's rates: its overrides, else its platform's defaults."""
    default = PLATFORM_RATES.get(source.platform, Rates(None, None))
    return Rates(
        source.rate_per_second or default.per_second,
        source.rate_per_group_per_minute or default.per_group_per_minute,
    )


def source_keys(source: str) -> tuple[str, str]:
    """The source's bucket and pause keys (hash tag: the source)."""
    tag = hash_tag(f"src:{source}")
    return f"delivery:bucket:{tag}", f"delivery:pause:{tag}"


def group_keys(source: str, group_id: str) -> tuple[str, str]:
    """The group's bucket and pause keys (hash tag: the group, braces escaped)."""
    tag = hash_tag(group_id)
    return f"delivery:bucket:{tag}:{source}", f"delivery:pause:{tag}:{source}"


class Pacer:
    """Takes pacing tokens and sets pauses in Redis."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._script = client.register_script(PACE_LUA)

    def _take(self, keys: tuple[str, str], rate: float, capacity: float, cost: int) -> float:
        wait_ms = self._script(keys=list(keys), args=[rate, capacity, cost])
        return int(wait_ms) / 1000.0

    def _paused(self, key: str) -> float:
        remaining = int(self._client.pttl(key))
        return remaining / 1000.0 if remaining > 0 else 0.0

    def acquire(self, *, source: str, group_id: str, rates: Rates, post: bool) -> float:
        """Take a token for one call; 0 when granted, else seconds until it could be."""
        group = group_keys(source, group_id)
        group_rate = rates.per_group_per_minute / 60.0 if rates.per_group_per_minute else None
        paced_group = post and group_rate is not None
        wait = self._take(group, group_rate or 0.0, 1, 1) if paced_group else self._paused(group[1])
        if wait > 0:
            return wait
        if not rates.per_second:
            wait = self._paused(source_keys(source)[1])
        else:
            wait = self._take(source_keys(source), rates.per_second, max(rates.per_second, 1), 1)
        if wait > 0 and paced_group:
            self._take(group, group_rate or 0.0, 1, -1)
        return wait

    def pause(self, *, source: str, group_id: str | None, seconds: float) -> None:
        """Make every replica wait `seconds` before calling for the source (or the group)."""
        key = source_keys(source)[1] if group_id is None else group_keys(source, group_id)[1]
        self._client.set(key, "1", px=max(int(seconds * 1000), 1))
