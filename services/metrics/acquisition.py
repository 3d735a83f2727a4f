"""Where members come from and whether they stay: counts per channel and per inviter.

The apply script keeps, per first-join day, packed counts of the members who first
joined that day, per channel (`ac:<day>`, fields `c<id>`/`C<id>`) and per inviter
(`ai:<day>`, fields `i<id>`/`I<id>`), moving a member between them whenever its record
changes (a re-ordered first join, a leave, a message, a deletion). A read sums the days'
hashes: no member is visited. Channels are summed here; inviters (tens of thousands of
fields over 90 days) are summed and ranked inside Redis by lua/inviters.lua, which returns
only the page's candidates.
"""

from __future__ import annotations

import sys
from array import array
from collections import defaultdict
from collections.abc import Sequence
from importlib.resources import files
from typing import cast

import redis

from services.metrics.keys import JOIN_BYTES, GroupKeys
from services.metrics.models import ChannelRow, InviterRow

NO_CHANNEL = "(none)"
INVITERS_LUA = (files("services.metrics") / "lua" / "inviters.lua").read_text(encoding="utf-8")
_LANE17, _LANE26 = (1 << 17) - 1, (1 << 26) - 1

Counts = tuple[int, int, int, int, int]  # joins, still_members, spoke, retained_d7, retained_d30


def _sum_counts(client: redis.Redis, keys: Sequence[str], low: str, high: str) -> dict[int, Counts]:
    """Sum the packed fields of the days' hashes into five counts per id."""
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.hgetall(key)
    packed: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    lows, highs = low.encode(), high.encode()
    for fields in pipe.execute():
        for name, value in cast(dict[bytes, bytes], fields).items():
            tag, ident = name[:1], int(name[1:])
            if tag == lows:
                packed[ident][0] += int(value)
            elif tag == highs:
                packed[ident][1] += int(value)
    return {ident: _unpack(lo, hi) for ident, (lo, hi) in packed.items() if lo & _LANE17}


def _unpack(lo: int, hi: int) -> Counts:
    return (lo & _LANE17, (lo >> 17) & _LANE17, lo >> 34, hi & _LANE26, hi >> 26)


def display_names(
    client: redis.Redis, keys: GroupKeys, dense_ids: Sequence[int]
) -> list[str | None]:
    """Return the latest display name of each member (None when none was seen)."""
    if not dense_ids:
        return []
    values = client.hmget(keys.display, [str(i) for i in dense_ids])
    return [
        v.decode().split("|", 1)[1] if v is not None else None
        for v in cast(list[bytes | None], values)
    ]


def read_channels(
    client: redis.Redis, *, group_id: str, first_day: int, last_day: int
) -> list[ChannelRow]:
    """Return the five counts per channel of the members first joined in the days."""
    keys = GroupKeys(group_id)
    days = [keys.channel_counts(d) for d in range(first_day, last_day + 1)]
    counts = _sum_counts(client, days, "c", "C")
    ids = [i for i in counts if i]
    names = client.hmget(keys.channels, [f"i:{i}" for i in ids]) if ids else []
    label = {i: cast(bytes, n).decode() for i, n in zip(ids, names, strict=True) if n}
    label[0] = NO_CHANNEL
    rows = [ChannelRow(channel=label.get(i, f"#{i}"), **_fields(c)) for i, c in counts.items()]
    rows.sort(key=lambda r: (-r.joins, r.channel))
    return rows


def _fields(c: Counts) -> dict[str, int]:
    return dict(
        zip(("joins", "still_members", "spoke", "retained_d7", "retained_d30"), c, strict=True)
    )


def read_inviters(
    client: redis.Redis, *, group_id: str, first_day: int, last_day: int, limit: int
) -> list[InviterRow]:
    """Return the five counts per inviter, by retained_d7, joins (descending), member id.

    The days are summed and ranked inside Redis (lua/inviters.lua); only the page's
    candidates come back: those ranked above the page's last key and the smallest
    member ids of the tie at the cut.
    """
    keys = GroupKeys(group_id)
    flat = cast(
        list[bytes | int],
        client.register_script(INVITERS_LUA)(
            keys=[keys.names], args=[keys.prefix, first_day, last_day, limit]
        ),
    )
    found = [
        (int(flat[n]), cast(bytes, flat[n + 1]), _unpack(int(flat[n + 2]), int(flat[n + 3])))
        for n in range(0, len(flat), 4)
    ]
    found.sort(key=lambda row: (-row[2][3], -row[2][0], row[1]))
    page = found[:limit]
    shown = display_names(client, keys, [dense for dense, _, _ in page])
    return [
        InviterRow(member_id=member.decode(), display_name=name, **_fields(counts))
        for (_, member, counts), name in zip(page, shown, strict=True)
    ]


def channel_bitmap(client: redis.Redis, *, group_id: str, channel: str) -> bytes | None:
    """Return a bitmap of the members whose first join came through the channel.

    None when the channel was never seen. The `jn` records are read whole and scanned.
    """
    keys = GroupKeys(group_id)
    if channel == NO_CHANNEL:
        wanted = 0
    else:
        found = client.hget(keys.channels, f"n:{channel}")
        if found is None:
            return None
        wanted = int(cast(bytes, found))
    blob = cast(bytes, client.get(keys.joins) or b"")
    blob += b"\0" * (-len(blob) % JOIN_BYTES)
    lanes = array("I", blob)
    if sys.byteorder == "little":
        lanes.byteswap()
    bitmap = bytearray((len(lanes) // 4 + 7) // 8)
    # Members outside any cohort match too (channel 0); the cohort bitmaps leave them out.
    for dense, found_channel in enumerate(lanes[0::4]):
        if found_channel == wanted:
            bitmap[dense >> 3] |= 0x80 >> (dense & 7)
    return bytes(bitmap)
