"""One view over every group a token may read: members, DAU/WAU/MAU, the last 7 days.

The groups come from the index `qy:groups` (the only key outside the per-group hash
tags; the apply pipeline keeps it). Each group's line is one call of lua/overview.lua on
the group's slot, all in one pipeline; the lines are sorted and paged in Python.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Collection
from importlib.resources import files
from typing import cast

import orjson
import redis

from services.common.redis_client import queue_script, run_pipeline
from services.metrics.keys import GROUP_INDEX, GroupKeys, day_of_number
from services.metrics.models import Overview, OverviewGroup, OverviewSort

OVERVIEW_LUA = (files("services.metrics") / "lua" / "overview.lua").read_text(encoding="utf-8")
_FIELDS = ("members", "dau", "wau", "mau", "messages_7d", "joins_7d", "leaves_7d")


class InvalidOverviewCursor(ValueError):
    """A cursor the overview did not hand out."""


def encode_cursor(value: int, group_id: str) -> str:
    """Return the opaque cursor after a line (its sort value and group id)."""
    return base64.urlsafe_b64encode(orjson.dumps([value, group_id])).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str]:
    """Return the (sort value, group id) a cursor stands for; raise InvalidOverviewCursor."""
    try:
        value, group_id = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError) as exc:
        raise InvalidOverviewCursor("cursor is not one this API returned") from exc
    if not isinstance(value, int) or not isinstance(group_id, str):
        raise InvalidOverviewCursor("cursor is not one this API returned")
    return value, group_id


def seen_groups(client: redis.Redis, allowed: Collection[str] | None) -> list[str]:
    """Return the indexed groups, all of them (allowed None) or those allowed."""
    indexed = [g.decode() for g in cast(list[bytes], client.zrange(GROUP_INDEX, 0, -1))]
    if allowed is None:
        return indexed
    return [g for g in indexed if g in allowed]


def read_overview(
    client: redis.Redis,
    *,
    allowed: Collection[str] | None,
    day: int,
    sort: OverviewSort,
    limit: int,
    cursor: tuple[int, str] | None,
) -> Overview:
    """Return a page of group lines, by `sort` descending, then group id."""
    groups = seen_groups(client, allowed)
    script = client.register_script(OVERVIEW_LUA)
    pipe = client.pipeline(transaction=False)
    for group_id in groups:
        keys = GroupKeys(group_id)
        queue_script(pipe, script, keys=[keys.ids], args=[keys.prefix, day])
    lines = [
        OverviewGroup(group_id=g, **dict(zip(_FIELDS, map(int, answer), strict=True)))
        for g, answer in zip(groups, run_pipeline(pipe) if groups else [], strict=True)
    ]
    lines.sort(key=lambda line: (-getattr(line, sort), line.group_id))
    if cursor is not None:
        after = (-cursor[0], cursor[1])
        lines = [line for line in lines if (-getattr(line, sort), line.group_id) > after]
    page = lines[:limit]
    more = len(lines) > limit
    return Overview(
        date=day_of_number(day),
        groups=page,
        next_cursor=encode_cursor(getattr(page[-1], sort), page[-1].group_id) if more else None,
    )
