"""Check-ins through the real broker: once per local day, streaks, grace, redelivery."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from services.campaigns.app import create_app
from tests.campaigns.helpers import campaign_body, message, read_group, wait_until
from tests.conftest import auth, produce_events

SHANGHAI = ZoneInfo("Asia/Shanghai")


def local(day: datetime, hour: int, minute: int = 0) -> datetime:
    return day.replace(hour=hour, minute=minute, second=0, microsecond=0, tzinfo=SHANGHAI)


def rewards_of(client, token, group, member):
    return client.get(f"/v1/groups/{group}/members/{member}/rewards", headers=auth(token)).json()


def test_checkin_once_a_day_streaks_in_local_time_and_redelivery(
    make_settings, run_app, tokens, unique, producer, kafka_bootstrap
):
    settings = make_settings(qunyun_timezone="Asia/Shanghai")
    group = unique("g-checkin")
    params = {
        "keyword": "打卡",
        "points": 10,
        "streak_rewards": [
            {"days": 3, "points": 50, "badge": "三日打卡"},
            {"days": 5, "points": 99, "badge": "五日打卡"},
        ],
        "grace_days": 0,
    }
    base = datetime.now(SHANGHAI) + timedelta(days=1)
    # 23:30 and 00:30 Shanghai fall on the same UTC day: only local days make this a streak.
    alice = [
        message(group, "alice", "打卡", local(base, 23, 30)),
        message(group, "alice", "打卡！", local(base + timedelta(1), 0, 30)),
        message(group, "alice", "＃打卡 🎉", local(base + timedelta(1), 20)),
        message(group, "alice", "打卡", local(base + timedelta(2), 9)),
    ]
    # bob checks in twice a day, then misses two days: his streak breaks.
    bob = [
        message(group, "bob", "打卡", local(base, 9)),
        message(group, "bob", "ＤＡ卡? no: 打卡", local(base, 10)),
        message(group, "bob", "hello", local(base + timedelta(1), 10)),
        message(group, "bob", "打卡", local(base + timedelta(1), 11)),
        message(group, "bob", "打卡", local(base + timedelta(4), 11)),
    ]
    events = alice + bob
    with run_app(create_app(settings)) as client:
        admin = auth(tokens.admin)
        body = campaign_body("checkin", start_in=-60, end_in=6 * 86400, params=params)
        r = client.post(f"/v1/groups/{group}/campaigns", json=body, headers=admin)
        assert r.status_code == 201, r.text
        cid = r.json()["id"]
        produce_events(producer, settings.topic_events, events)

        expected_grants = 3 + 1 + 3  # alice 3 check-ins + streak:3; bob 3 check-ins
        grants = read_group(
            kafka_bootstrap, settings.topic_campaign_rewards, group, expect=expected_grants
        )
        assert len(grants) == expected_grants
        a = rewards_of(client, tokens.reader, group, "alice")
        assert a["points"] == 3 * 10 + 50
        assert a["badges"] == ["三日打卡"]
        assert sorted(e["reason"] for e in a["ledger"]) == sorted(
            [f"checkin:{(base + timedelta(i)).date()}" for i in range(3)] + ["streak:3"]
        )
        b = rewards_of(client, tokens.reader, group, "bob")
        assert b["points"] == 30 and b["badges"] == []

        participants = client.get(
            f"/v1/groups/{group}/campaigns/{cid}/participants", headers=admin
        ).json()["participants"]
        assert {p["member_id"]: p["count"] for p in participants} == {"alice": 3, "bob": 3}

        # Redelivery (same source and ids) grants nothing again.
        produce_events(producer, settings.topic_events, events)
        late = message(group, "carol", "打卡", local(base, 12))
        produce_events(producer, settings.topic_events, [late])
        assert wait_until(lambda: rewards_of(client, tokens.reader, group, "carol")["points"] == 10)
        all_grants = read_group(
            kafka_bootstrap,
            settings.topic_campaign_rewards,
            group,
            expect=expected_grants + 1,
            settle=1.5,
        )
        assert len(all_grants) == expected_grants + 1
        assert len({g["id"] for g in all_grants}) == len(all_grants)
        assert rewards_of(client, tokens.reader, group, "alice")["points"] == 80

        board = client.get(f"/v1/groups/{group}/points/leaderboard", headers=admin).json()
        assert board["members"][0] == {"member_id": "alice", "points": 80}


def test_missed_day_beyond_grace_breaks_the_streak(
    make_settings, run_app, tokens, unique, producer, kafka_bootstrap
):
    settings = make_settings(qunyun_timezone="Asia/Shanghai")
    group = unique("g-grace")
    params = {
        "keyword": "签到",
        "points": 1,
        "streak_rewards": [{"days": 2, "points": 5, "badge": "b2"}, {"days": 3, "points": 7}],
        "grace_days": 1,
    }
    base = datetime.now(SHANGHAI) + timedelta(days=1)
    days = [0, 2, 5, 6]  # 0→2 within grace (streak 2), 2→5 breaks, 5→6 streak 2 again
    events = [message(group, "dora", "签到", local(base + timedelta(d), 8)) for d in days]
    with run_app(create_app(settings)) as client:
        body = campaign_body("checkin", start_in=-60, end_in=8 * 86400, params=params)
        assert (
            client.post(
                f"/v1/groups/{group}/campaigns", json=body, headers=auth(tokens.admin)
            ).status_code
            == 201
        )
        produce_events(producer, settings.topic_events, events)
        grants = read_group(
            kafka_bootstrap, settings.topic_campaign_rewards, group, expect=5, settle=1.5
        )
        reasons = sorted(g["reason"] for g in grants)
        assert reasons == sorted(
            [f"checkin:{(base + timedelta(d)).date()}" for d in days] + ["streak:2"]
        )
        d = rewards_of(client, tokens.reader, group, "dora")
        assert d["points"] == 4 + 5 and d["badges"] == ["b2"]
