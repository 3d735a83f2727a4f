"""The OpenAPI descriptions of the metrics routes: what is counted, in which time zone,
the 404 of unseen groups and how pages work (docs/metrics.md has the full definitions)."""

from __future__ import annotations

_ZONE = (
    "Days are calendar days in the deployment's time zone (`QUNYUN_TIMEZONE`) of each "
    "event's `occurred_at`; dates are `YYYY-MM-DD`, `from ≤ to`, at most 400 days."
)
_UNSEEN = (
    'A group metrics has seen no event of answers 404 `{"detail": "no events seen for '
    'group <g>"}` (a bad parameter is still 422, a token without access 401/403).'
)
_NOT_PAGED = "Not paginated: one answer holds every row."
_SPAM = "Messages moderation deleted are not counted."


def _text(*parts: str) -> str:
    return "\n\n".join(parts)


DESCRIPTIONS = {
    "activity": _text(
        "Per local day from `from` to `to`: `messages` (counted `message.created`), "
        "`active_members` (members with at least one counted message), `joins` and `leaves` "
        "(join and leave events; a re-join counts again). The answer names its `timezone`.",
        _SPAM, _ZONE, _NOT_PAGED, _UNSEEN,
    ),
    "active": _text(
        "`dau`: members active on `date`; `wau`: in the 7 days ending on `date`; `mau`: in the "
        "30 days; `stickiness` = dau/mau rounded to 4 decimals (0 when mau = 0).",
        _SPAM, _ZONE, _UNSEEN,
    ),
    "rolling": _text(
        "Messages and active members (members whose latest message falls in the span) over "
        "whole minutes: the current minute and the window's others before it (`5m`, `1h`, "
        "`24h`; minutes of UTC time, so no time zone applies). Future-dated messages wait "
        "for their minute.",
        _SPAM, _UNSEEN,
    ),
    "retention": _text(
        "Cohorts by first join (`cohort=day` or ISO `week`, Monday first) from `from` to `to`; "
        "period k of a cohort counts its members active in the k-th day/week after joining "
        "(`exact`) or in it or any later one up to today (`unbounded`). Periods not begun "
        "are `null`; `rate` = count/size to 4 decimals. `channel` keeps only the members "
        'whose first join came through that channel (`"(none)"`: joins without one).',
        _SPAM, _ZONE, _NOT_PAGED, _UNSEEN,
    ),
    "lifecycle": _text(
        "Per day or ISO week from `from` to `to`: `new` (active and first joined in the "
        "period, or first active then when never seen joining), `returning` (active in this "
        "and the previous period), `resurrecting` (active now, not in the previous period, "
        "not new), `dormant` (active in the previous period, not in this one); "
        "`active` = new + returning + resurrecting.",
        _SPAM, _ZONE, _NOT_PAGED, _UNSEEN,
    ),
    "dormant": _text(
        "Current members (no leave after their latest join or message) with no message since "
        "the start of the local day `days`-1 days ago: never-spoke members first (oldest join "
        "first), then the longest silent.",
        _ZONE,
        "Paginated: `limit` 1..1000 (default 100); pass the answer's `next_cursor` as `cursor` "
        "for the next page (null on the last). A member who speaks between pages may drop "
        "out; nobody is listed twice.",
        _UNSEEN,
    ),
    "leaderboard": _text(
        "Members by counted messages on the last `days` local days, today included; ties by "
        "first-seen order; members with no message are not listed; members kicked or banned "
        "by moderation are left out until unbanned. `limit` 1..100 (default 10), one page.",
        _SPAM, _ZONE, _UNSEEN,
    ),
    "member": _text(
        "The member's first join (`joined_at`, its `channel` and `invited_by`), last leave "
        "while out (`left_at`), latest message (`last_active_at`, UTC, milliseconds), lifetime "
        "counted `messages` and `active_days`, and the latest `display_name`.",
        _SPAM,
        "404 `no event of this member was seen in this group` when no join, leave or message "
        "of the member was seen (a member only named as an inviter, or only renamed, too).",
        _UNSEEN,
    ),
    "channels": _text(
        "Per channel, over the members whose **first** join falls in `from`..`to` (each counted "
        "once, under that join's channel): `joins`, `still_members` (current members now), "
        "`spoke` (active on the join day or later), `retained_d7` / `retained_d30` (active on "
        'join day + 7 / + 30 or later). Joins without a channel count as `"(none)"`. Sorted '
        "by joins (descending), then channel.",
        _SPAM, _ZONE, _NOT_PAGED, _UNSEEN,
    ),
    "inviters": _text(
        "The same five counts per inviter (`invited_by` of the members' first join in "
        "`from`..`to`); members without an inviter make no row, an inviter who left is listed "
        "like any other. Sorted by retained_d7, then joins (descending), then member id.",
        _SPAM, _ZONE,
        "One page: the first `limit` rows (1..1000, default 100); no cursor.",
        _UNSEEN,
    ),
    "portfolio": _text(
        "Every group the token may read that metrics has seen (a token with listed groups "
        "sees only those; unseen ones are left out, not an error): `members` (current, "
        "whatever `date` is), `dau`/`wau`/`mau` on `date` (default today), and "
        "`messages_7d`, `joins_7d`, `leaves_7d` over the 7 local days ending on `date`.",
        _SPAM, _ZONE,
        "Sorted by `sort` (descending), then group id. Paginated: `limit` 1..1000 (default "
        "100); pass `next_cursor` as `cursor` for the next page (a page never repeats or skips "
        "a line that did not change between calls). 422 for an unknown sort or a bad cursor.",
    ),
}  # fmt: skip
