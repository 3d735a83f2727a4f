"""Pacing at the double: 200 posts to one Telegram group, with a short configured rate.

Telegram allows 20 messages a minute in one group, so 200 posts need ≥ 10 minutes. The test
does not wait that long: its source posts at `SCALE` times Telegram's rate, so one real
second here stands for `SCALE` seconds at Telegram and a 60-second window for 60/`SCALE`.
The per-group bucket has a capacity of one token (no burst, services/delivery/pacing.py).

The run takes ~50 s, not ~10: a group told to wait is claimed again only at the
dispatcher's next cycle (0.2 s poll), so one group posts at ~4/s whatever its configured
rate. The assertions hold either way: they bound the rate from above, not from below.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from services.common.auth import token_entry
from services.common.contracts.notifications import CampaignNotification
from services.common.settings import QunyunConfig, Source, write_config
from services.delivery.pacing import PLATFORM_RATES
from tests.conftest import Tokens
from tests.delivery.conftest import chat_number, sources
from tests.support import wait_until
from tools.platform_double import Call, DoubleHandle

TELEGRAM_PER_MINUTE = PLATFORM_RATES["telegram"].per_group_per_minute  # 20, the real limit
SCALE = 60  # one real second here = one Telegram minute
PER_MINUTE = TELEGRAM_PER_MINUTE * SCALE  # 1200/min configured: 20 posts/s
RATE = PER_MINUTE / 60  # posts per real second
BURST = 1  # the group bucket's capacity
WINDOW = 60 / SCALE  # a 60-second window at Telegram, in real seconds
# Seconds two calls' trips to the double may differ by: a token's time. The bucket spaces
# the moments tokens are taken; on a loaded 2-core machine the call that follows can land
# up to that much later (40 ms seen in CI), which 60x time compression makes look like a
# burst. The window check below still fails on a bucket that lets two posts through.
JITTER = 1 / (TELEGRAM_PER_MINUTE * SCALE / 60)
BUSY_POSTS = 200
OTHER_POSTS = 5


@pytest.fixture(scope="module")
def delivery_config(
    tmp_path_factory: pytest.TempPathFactory, double: DoubleHandle, tokens: Tokens
) -> Path:
    """The shared sources plus `tg-pace`: Telegram at SCALE× its per-group rate."""
    c = double.state.config
    paced = Source(
        id="tg-pace",
        platform="telegram",
        secret="s-tg-pace",
        bot_token=c.telegram_token,
        api_base=double.base_url,
        rate_per_second=1000.0,  # the source's bucket never binds: the group's is under test
        rate_per_group_per_minute=PER_MINUTE,
    )
    api_tokens = [token_entry("admin", tokens.admin, ["*"], ["read", "write"])]
    path = tmp_path_factory.mktemp("delivery-pacing") / "qunyun.toml"
    return write_config(path, QunyunConfig(sources=[*sources(double), paced], tokens=api_tokens))


def post(group_id: str, campaign: str, n: int) -> dict[str, Any]:
    """A campaigns.notifications.v1 record, through its contract."""
    record = CampaignNotification(
        id=f"{campaign}:reminder:{n}",
        group_id=group_id,
        source="tg-pace",
        campaign_id=campaign,
        kind="reminder",
        text=f"{campaign} #{n}",
        created_at=datetime.now(UTC),
    )
    return record.model_dump(mode="json")


def most_in_window(calls: list[Call], window: float) -> int:
    """The most calls that arrived within any `window` seconds of each other."""
    times = [c.at for c in calls]
    most, j = 0, 0
    for i, start in enumerate(times):
        while j < len(times) and times[j] < start + window:
            j += 1
        most = max(most, j - i)
    return most


def test_200_posts_keep_the_group_rate_and_hold_no_other_group(delivery):
    campaign = f"cmp{random.randrange(16**8):08x}"
    busy = f"-{chat_number()}"
    others = [f"-{chat_number()}", f"-{chat_number()}"]
    busy_records = [post(f"telegram:{busy}", campaign, n) for n in range(BUSY_POSTS)]
    other_records = {
        chat: [post(f"telegram:{chat}", f"{campaign}-{k}", n) for n in range(OTHER_POSTS)]
        for k, chat in enumerate(others)
    }
    with delivery() as h:
        state = h.double.state
        h.notifications(*busy_records)
        # The busy group is draining before the others are even sent.
        assert wait_until(lambda: len(state.calls_of("telegram", "sendMessage", busy)) >= 10)
        sent_others_at = time.time()
        for records in other_records.values():
            h.notifications(*records)

        receipts = h.receipts(BUSY_POSTS + 2 * OTHER_POSTS, timeout=90, settle=1)

        # (3) every record has exactly one receipt, and each was delivered.
        ref_ids = [r["ref_id"] for r in receipts]
        every_id = [r["id"] for r in busy_records] + [
            r["id"] for records in other_records.values() for r in records
        ]
        assert sorted(ref_ids) == sorted(every_id)
        assert {r["outcome"] for r in receipts} == {"delivered"}

        # (3) the 200 arrived once each, in order.
        calls = state.calls_of("telegram", "sendMessage", busy)
        texts = [r["text"] for r in busy_records]
        assert [c.body["text"] for c in calls] == texts
        assert [p.text for p in h.group("telegram", busy).posts()] == texts

        # Simulated budget: after the one token of burst, each post costs 1/RATE seconds,
        # so the spacing at the double implies ≥ (200 - 1) / 20 min at Telegram's real rate.
        simulated_minutes = (calls[-1].at - calls[0].at + JITTER) * SCALE / 60
        assert simulated_minutes >= (BUSY_POSTS - BURST) / TELEGRAM_PER_MINUTE, simulated_minutes

        # (1) no 60-second-equivalent window sees more than the per-group rate (+ burst);
        # and, more finely, the bucket's bound holds between any two calls.
        assert most_in_window(calls, WINDOW) <= TELEGRAM_PER_MINUTE + BURST
        for i, a in enumerate(calls):
            for j in range(i + 1, len(calls)):
                allowed = BURST + RATE * (calls[j].at - a.at + JITTER)
                assert j - i + 1 <= allowed + 1e-9, (i, j, calls[j].at - a.at)

        # (2) the other groups flowed meanwhile: all their posts arrived, in order, well
        # before the busy group finished (it still had most of its posts to go).
        for chat, records in other_records.items():
            their = state.calls_of("telegram", "sendMessage", chat)
            assert [c.body["text"] for c in their] == [r["text"] for r in records]
            done_at = their[-1].at
            assert done_at - sent_others_at < 5, done_at - sent_others_at
            busy_by_then = sum(1 for c in calls if c.at <= done_at)
            assert busy_by_then < BUSY_POSTS / 2, busy_by_then
            assert calls[-1].at - done_at > 3
