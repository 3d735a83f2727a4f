"""The size of a fault run, the constants the traffic and checks share, and the one-line
figures each test prints."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from tests.support import SOURCE_SECRETS
from tools.simulate import generate

SOURCE = "generic-test"
SECRET = SOURCE_SECRETS[SOURCE][1]
CONSUMERS = ("metrics", "moderation", "campaigns")
AD_KEYWORDS = ("代购", "团购", "加微信", "扫码进群", "vx同号")
CHECKIN_KEYWORD = "打卡"
CHECKIN_POINTS = 10
STREAK_DAYS, STREAK_POINTS, STREAK_BADGE = 2, 5, "连续打卡"
TIMEZONE = "Asia/Shanghai"


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
    # How long Redis is stopped / the broker frozen mid-stream: longer than the consumers'
    # 6 s session timeout, so the broker's view of their membership lapses too.
    outage_seconds: float = 10.0

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


# `make test` runs every scenario once at SMALL: big enough that each kill lands on a
# consumer with a backlog and the truth holds ads, check-ins and 2-day streaks (~1,500
# events, ~10 offending, ~90 check-ins, ~12 streaks), small enough to stream in 12 s.
# `make faults` runs LARGE: many more events and kills, the same checks.
SMALL = Scale("small", groups=3, members=150, days=3, messages_per_member=0.9,
              stream_seconds=12, kills_per_consumer=1, outage_seconds=7)  # fmt: skip
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
