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

The dispatcher paces a whole round of calls at once (`acquire_all`): the groups' buckets
and pauses in one pipeline, then the sources' buckets of the calls their groups granted in
a second, and refunds (rare) in a third — two round trips for the round instead of two
per call. A rate of `UNPACED` calls per second or more is no rate at all (a source set up
with pacing out of the way, as the benchmarks do): its bucket is not called, only its
pause is read, so a platform's rate-limit hint still holds every replica.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

import redis

from services.common.redis_client import hash_tag, queue_script, run_pipeline
from services.common.settings import Source

PACE_LUA = (files("services.delivery") / "lua" / "pace.lua").read_text(encoding="utf-8")
UNPACED = 10_000.0  # calls per second: at or above, a rate paces nothing (pauses still hold)


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


@dataclass(frozen=True)
class Ask:
    """One call to pace: its source, group, the source's rates, and whether it posts."""

    source: str
    group_id: str
    rates: Rates
    post: bool

    @property
    def source_rate(self) -> float | None:
        """The source's calls per second, or None when it paces nothing."""
        rate = self.rates.per_second
        return rate if rate and rate < UNPACED else None

    @property
    def group_rate(self) -> float | None:
        """The group's posts per second when this call is a paced post, else None."""
        per_minute = self.rates.per_group_per_minute
        rate = per_minute / 60.0 if per_minute and self.post else None
        return rate if rate and rate < UNPACED else None


def _seconds(answer: Any) -> float:
    """A script's wait or a PTTL, in milliseconds, as seconds to wait (0: go)."""
    milliseconds = int(answer)
    return milliseconds / 1000.0 if milliseconds > 0 else 0.0


class Pacer:
    """Takes pacing tokens and sets pauses in Redis."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._script = client.register_script(PACE_LUA)

    def _take(
        self, pipe: redis.client.Pipeline, keys: tuple[str, str], rate: float, cost: int
    ) -> None:
        """Queue a take from a group's bucket (no burst: posts spaced evenly)."""
        queue_script(pipe, self._script, keys=list(keys), args=[rate, 1, cost])

    def _take_source(self, pipe: redis.client.Pipeline, source: str, rate: float) -> None:
        """Queue a take from a source's bucket (a one-second burst)."""
        keys = list(source_keys(source))
        queue_script(pipe, self._script, keys=keys, args=[rate, max(rate, 1.0), 1])

    def acquire(self, *, source: str, group_id: str, rates: Rates, post: bool) -> float:
        """Take a token for one call; 0 when granted, else seconds until it could be."""
        return self.acquire_all([Ask(source, group_id, rates, post)])[0]

    def acquire_all(self, asks: Sequence[Ask]) -> list[float]:
        """Take a token for each call of a round; per call 0 when granted, else the wait.

        The group is asked first (a post's bucket, else only its pause), then the source
        for the calls their group granted (its bucket, or only its pause when unpaced);
        a post's group token is given back when its source then says wait.
        """
        if not asks:
            return []
        pipe = self._client.pipeline(transaction=False)
        for ask in asks:
            group, rate = group_keys(ask.source, ask.group_id), ask.group_rate
            if rate is not None:
                self._take(pipe, group, rate, 1)
            else:
                pipe.pttl(group[1])
        unpaced = sorted({ask.source for ask in asks if ask.source_rate is None})
        for source in unpaced:
            pipe.pttl(source_keys(source)[1])
        answers = run_pipeline(pipe)
        waits = [_seconds(answer) for answer in answers[: len(asks)]]
        paused = dict(zip(unpaced, map(_seconds, answers[len(asks) :]), strict=True))
        paced: list[int] = []
        for i, ask in enumerate(asks):
            if waits[i] == 0 and ask.source_rate is None:
                waits[i] = paused[ask.source]
            elif waits[i] == 0:
                paced.append(i)
        if paced:
            pipe = self._client.pipeline(transaction=False)
            for i in paced:
                self._take_source(pipe, asks[i].source, asks[i].source_rate or 0.0)
            for i, answer in zip(paced, run_pipeline(pipe), strict=True):
                waits[i] = _seconds(answer)
        refunds = [i for i in paced if waits[i] > 0 and asks[i].group_rate is not None]
        if refunds:
            pipe = self._client.pipeline(transaction=False)
            for i in refunds:
                ask = asks[i]
                self._take(pipe, group_keys(ask.source, ask.group_id), ask.group_rate or 0.0, -1)
            run_pipeline(pipe)
        return waits

    def pause(self, *, source: str, group_id: str | None, seconds: float) -> None:
        """Make every replica wait `seconds` before calling for the source (or the group)."""
        key = source_keys(source)[1] if group_id is None else group_keys(source, group_id)[1]
        self._client.set(key, "1", px=max(int(seconds * 1000), 1))
