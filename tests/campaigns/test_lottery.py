"""Lotteries through the real broker: eligibility, a verifiable draw, reroll and claims."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from services.campaigns.app import create_app
from services.campaigns.lottery import rank
from tests.campaigns.helpers import (
    campaign_body,
    joined,
    message,
    now,
    read_group,
    wait_until,
)
from tests.conftest import auth, produce_events


def test_lottery_draw_is_eligible_distinct_and_reproducible(
    settings, run_app, tokens, unique, producer, kafka_bootstrap
):
    group = unique("g-lottery")
    admin = auth(tokens.admin)
    created = now()
    params = {
        "entry_keyword": "抽奖",
        "prizes": [{"name": "周边", "quantity": 2}, {"name": "书", "quantity": 1, "points": 30}],
        "eligibility": {"joined_before": created.isoformat(), "min_messages": 2},
        "draw_delay_seconds": 1,
    }
    body = campaign_body("lottery", start_in=1, end_in=9, params=params)
    inside = created + timedelta(seconds=3)
    events = [joined(group, f"old{i}", created - timedelta(days=3)) for i in range(1, 7)]
    events.append(joined(group, "new1", created + timedelta(seconds=1)))
    for member in ["old1", "old2", "old3", "old4", "unknown1", "new1"]:
        events += [message(group, member, "我要抽奖", inside), message(group, member, "hi", inside)]
    events.append(message(group, "old5", "抽奖", inside))  # one message: below min_messages
    events += [message(group, "old6", "hi", inside), message(group, "old6", "yo", inside)]
    eligible = sorted(["old1", "old2", "old3", "old4", "unknown1"])

    with run_app(create_app(settings)) as client:
        r = client.post(f"/v1/groups/{group}/campaigns", json=body, headers=admin)
        assert r.status_code == 201, r.text
        cid = r.json()["id"]
        base = f"/v1/groups/{group}/campaigns/{cid}"
        produce_events(producer, settings.topic_events, events)

        def entrants() -> list[str]:
            listed = client.get(f"{base}/participants", headers=admin).json()["participants"]
            return [p["member_id"] for p in listed]

        # Those who sent the entry keyword, and only them: old6 chatted but never entered.
        assert wait_until(lambda: len(entrants()) == 7)
        assert entrants() == sorted([*eligible, "new1", "old5"])
        assert client.get(f"{base}/winners", headers=admin).json()["seed"] is None

        notes = read_group(
            kafka_bootstrap, settings.topic_campaign_notifications, group, expect=3, timeout=30
        )
        by_kind = {n["kind"]: n for n in notes}
        assert sorted(by_kind) == ["ended", "started", "winners"]
        seed = by_kind["winners"]["data"]["seed"]
        assert (
            hashlib.sha256(bytes.fromhex(seed)).hexdigest()
            == (by_kind["started"]["data"]["seed_sha256"])
        )
        assert by_kind["winners"]["data"]["eligible"] == eligible
        ranked = rank(seed, eligible)
        expected = [
            {"member_id": ranked[0], "prize": "周边"},
            {"member_id": ranked[1], "prize": "周边"},
            {"member_id": ranked[2], "prize": "书"},
        ]
        assert by_kind["winners"]["data"]["winners"] == expected

        winners = client.get(f"{base}/winners", headers=admin).json()
        assert winners["seed"] == seed
        assert [(w["member_id"], w["prize"]) for w in winners["winners"]] == [
            (w["member_id"], w["prize"]) for w in expected
        ]
        rewards = client.get(
            f"/v1/groups/{group}/members/{ranked[2]}/rewards", headers=admin
        ).json()
        assert rewards["points"] == 30 and rewards["ledger"][0]["reason"] == "prize:书"

        # The third-ranked winner claims; the first forfeits and the next in rank takes it.
        claim = client.post(f"{base}/winners/{ranked[2]}/claim", headers=admin)
        assert claim.status_code == 200 and claim.json()["status"] == "claimed"
        r = client.post(f"{base}/reroll", json={"member_ids": [ranked[2]]}, headers=admin)
        assert r.status_code == 409
        r = client.post(f"{base}/reroll", json={"member_ids": [ranked[0]]}, headers=admin)
        assert r.status_code == 200, r.text
        current = {(w["member_id"], w["prize"], w["status"]) for w in r.json()["winners"]}
        assert (ranked[0], "周边", "forfeited") in current
        assert (ranked[3], "周边", "won") in current
        assert (
            client.post(f"{base}/reroll", json={"member_ids": ["old5"]}, headers=admin).status_code
            == 409
        )

        notes = read_group(
            kafka_bootstrap, settings.topic_campaign_notifications, group, expect=4, settle=1
        )
        reroll = [n for n in notes if n["kind"] == "winners" and n["data"]["round"] == 1]
        assert len(notes) == 4 and len(reroll) == 1
        assert reroll[0]["data"]["winners"] == [{"member_id": ranked[3], "prize": "周边"}]
        assert rank(seed, reroll[0]["data"]["eligible"])[0] == ranked[3]

        grants = read_group(
            kafka_bootstrap, settings.topic_campaign_rewards, group, expect=4, settle=1
        )
        assert sorted((g["member_id"], g["reason"]) for g in grants) == sorted(
            [(w["member_id"], "prize:" + w["prize"]) for w in expected]
            + [(ranked[3], "prize:周边")]
        )
