"""Redis key names and the calendar they are cut by.

Every key of a group starts with `qy:{<group>}:` so the group id is the Redis
Cluster hash tag and every multi-key operation of a group stays in one slot.
Days are named by their day number: days since 1970-01-01 of the local date in
QUNYUN_TIMEZONE, so the Lua scripts can do day arithmetic without a calendar.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from services.common.redis_client import hash_tag

EPOCH_ORDINAL = date(1970, 1, 1).toordinal()

# One member record in the `mem` string, read and written with BITFIELD at id * RECORD_BITS.
RECORD_BITS = 384
RECORD_BYTES = RECORD_BITS // 8
RECORD_FORMAT = ">qqqqIIII"  # first_join, last_join, last_leave, last_active (ms), messages,
# active_days, first_join_day, last_active_day (of counted messages, 0 for none)
# One acquisition record in the `jn` string: channel id, inviter's dense id, first active
# day of a member never seen joining, 1 when the member is in the acquisition counts.
JOIN_BITS = 128
JOIN_BYTES = JOIN_BITS // 8
JOIN_FORMAT = ">IIII"
# A message stays findable by its id this many days after its day, so a later deletion
# by moderation can take it out of the counts.
MESSAGE_INDEX_DAYS = 3
# The index of groups seen (ZSET group id -> last applied ms), the only key outside the
# per-group hash tags; the overview reads it.
GROUP_INDEX = "qy:groups"
# Silence scores of never-spoke members are their join time minus this (~317 years), so
# they sort before every member who spoke.
NEVER_SPOKE_OFFSET = 10**13


def group_prefix(group_id: str) -> str:
    """Return the key prefix of a group, escaping braces so the hash tag is the whole id."""
    return f"qy:{hash_tag(group_id)}:"


def day_number(day: date) -> int:
    """Return the day number of a calendar date."""
    return day.toordinal() - EPOCH_ORDINAL


def day_of_number(number: int) -> date:
    """Return the calendar date of a day number."""
    return date.fromordinal(number + EPOCH_ORDINAL)


def local_day(moment: datetime, tz: ZoneInfo) -> int:
    """Return the day number of an aware datetime in the timezone."""
    return day_number(moment.astimezone(tz).date())


def today(tz: ZoneInfo, now: datetime | None = None) -> int:
    """Return today's day number in the timezone."""
    return local_day(now or datetime.now(tz), tz)


def week_start(day: int) -> int:
    """Return the day number of the Monday of the ISO week holding the day."""
    return day - day_of_number(day).weekday()


def start_of_day_ms(day: int, tz: ZoneInfo) -> int:
    """Return the epoch milliseconds at which the local day begins."""
    start = datetime.combine(day_of_number(day), datetime.min.time(), tz)
    return int(start.timestamp() * 1000)


class GroupKeys:
    """The names of one group's keys."""

    def __init__(self, group_id: str) -> None:
        self.prefix = group_prefix(group_id)
        self.ids = self.prefix + "ids"  # HASH member_id -> dense id
        self.names = self.prefix + "names"  # HASH dense id -> member_id
        self.seq = self.prefix + "seq"  # STRING the last dense id given out
        self.members = self.prefix + "mem"  # STRING of member records (BITFIELD)
        self.recent = self.prefix + "recent"  # ZSET dense id -> last activity ms (≈ 25 h)
        self.quiet = self.prefix + "quiet"  # ZSET current members by silence (dormant order)
        self.joins = self.prefix + "jn"  # STRING of acquisition records (BITFIELD)
        self.channels = self.prefix + "ch"  # HASH n:<channel> -> id, i:<id> -> channel, # seq
        self.display = self.prefix + "dn"  # HASH dense id -> "<ms>|<latest display name>"
        self.deleted = self.prefix + "del"  # SET message ids moderation deleted
        self.removed = self.prefix + "out"  # SET dense ids kicked or banned by moderation

    def day(self, day: int) -> str:
        """HASH of a day's totals: m messages, u active members, j joins, l leaves."""
        return f"{self.prefix}d:{day}"

    def active(self, day: int) -> str:
        """Bitmap of the members active on a day."""
        return f"{self.prefix}a:{day}"

    def counts(self, day: int) -> str:
        """u16 array (BITFIELD) of each member's messages on a day."""
        return f"{self.prefix}c:{day}"

    def cohort(self, day: int) -> str:
        """Bitmap of the members whose first join was on a day."""
        return f"{self.prefix}co:{day}"

    def first_seen(self, day: int) -> str:
        """Bitmap of the members never seen joining whose first activity was on a day."""
        return f"{self.prefix}fs:{day}"

    def channel_counts(self, day: int) -> str:
        """HASH of packed acquisition counts per channel of the members first joined on a day."""
        return f"{self.prefix}ac:{day}"

    def inviter_counts(self, day: int) -> str:
        """HASH of packed acquisition counts per inviter of the members first joined on a day."""
        return f"{self.prefix}ai:{day}"

    def minutes(self, hour: int) -> str:
        """HASH minute-of-hour -> messages, for the epoch hour."""
        return f"{self.prefix}mh:{hour}"

    def temp(self, tag: str) -> str:
        """A scratch key of one query."""
        return f"{self.prefix}tmp:{tag}"
