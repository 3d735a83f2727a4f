"""A hand-built scenario over three weeks in Asia/Shanghai, checked number by number.

Every expected number below was worked out by hand from the definitions in
DESIGN.md (see the timeline), not by running the service. Several events sit
within seconds of local midnight, where the UTC date differs from the local one,
and some arrive out of order. The same events replayed straight to Kafka must
leave every number unchanged.

Timeline (local days Dk = B + k, B a Monday; W0 = D0..D6, W1 = D7..D13, W2 = D14..D20,
today is in W3):
  D0  alice joins 10:00, speaks 11:00 and 12:30; bob joins 23:59:50
  D1  carol joins 00:00:10 (never speaks); dave joins 09:00, speaks 10:00;
      bob speaks 20:00; alice speaks 23:59:30
  D2  alice speaks 00:00:30; dave 08:00; frank (no join seen) 09:00
  D3  bob speaks          D4  bob leaves
  D7  erin speaks 09:00, 09:05, 09:10 (her join at 08:30 arrives after them); alice speaks
      (that event arrives after her D14 one)
  D8  grace joins (never speaks); dave and erin speak
  D9  bob joins again and speaks     D10 bob speaks      D12 dave leaves
  D14 alice and erin speak           D15 erin speaks, alice renames herself
  D16 frank speaks 00:00:01
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from services.metrics.app import create_app
from services.metrics.telemetry import DUPLICATES_SKIPPED
from tests.metrics.helpers import SHANGHAI, event, local, monday_before
from tests.support import auth, produce_events, wait_until


@pytest.fixture
def scenario(unique):
    group = unique("metrics:scenario")
    today = datetime.now(SHANGHAI).date()
    base = monday_before(today - timedelta(days=21))
    d = [base + timedelta(days=k) for k in range(21)]

    def e(kind: str, member: str, k: int, at: str):
        return event(kind, group, member, local(d[k], at))

    events = [
        e("member.joined", "alice", 0, "10:00"),
        e("message.created", "alice", 0, "11:00"),
        e("message.created", "alice", 0, "12:30"),
        e("member.joined", "bob", 0, "23:59:50"),
        e("member.joined", "carol", 1, "00:00:10"),
        e("member.joined", "dave", 1, "09:00"),
        e("message.created", "alice", 1, "23:59:30"),
        e("message.created", "bob", 1, "20:00"),
        e("message.created", "dave", 1, "10:00"),
        e("message.created", "alice", 2, "00:00:30"),
        e("message.created", "dave", 2, "08:00"),
        e("message.created", "frank", 2, "09:00"),
        e("message.created", "bob", 3, "18:00"),
        e("member.left", "bob", 4, "12:00"),
        e("message.created", "erin", 7, "09:00"),
        e("message.created", "erin", 7, "09:05"),
        e("message.created", "erin", 7, "09:10"),
        e("member.joined", "erin", 7, "08:30"),
        e("message.created", "alice", 14, "10:00"),
        e("message.created", "alice", 7, "10:00"),
        e("member.joined", "grace", 8, "07:00"),
        e("message.created", "dave", 8, "12:00"),
        e("message.created", "erin", 8, "13:00"),
        e("member.joined", "bob", 9, "09:00"),
        e("message.created", "bob", 9, "09:30"),
        e("message.created", "bob", 10, "22:00"),
        e("member.left", "dave", 12, "15:00"),
        e("message.created", "erin", 14, "11:00"),
        e("message.created", "erin", 15, "11:00"),
        e("member.updated", "alice", 15, "12:00"),
        e("message.created", "frank", 16, "00:00:01"),
    ]
    return group, today, d, events


def test_scenario_numbers_and_replay(
    scenario, make_settings, run_app, producer, tokens, kafka_bootstrap
):
    group, today, d, events = scenario
    settings = make_settings(qunyun_timezone="Asia/Shanghai")
    headers = auth(tokens.reader)
    with run_app(create_app(settings)) as client:

        def get(path: str, **params):
            r = client.get(f"/v1/groups/{group}/{path}", params=params, headers=headers)
            assert r.status_code == 200, r.text
            return r.json()

        def activity():
            return get("activity", **{"from": d[0].isoformat(), "to": d[16].isoformat()})

        def totals():
            params = {"from": d[0].isoformat(), "to": d[16].isoformat()}
            r = client.get(f"/v1/groups/{group}/activity", params=params, headers=headers)
            if r.status_code == 404:  # nothing consumed yet
                return None
            days = r.json()["days"]
            return tuple(sum(x[f] for x in days) for f in ("messages", "joins", "leaves"))

        produce_events(producer, settings.topic_events, events)
        assert wait_until(lambda: totals() == (21, 7, 2), timeout=45), totals()

        def check_everything() -> None:
            check_activity(activity())
            check_active(get, d)
            check_retention(get, d)
            check_lifecycle(get, d)
            check_dormant(get, d, today)
            check_leaderboard(get, d, today)
            check_members(client, group, headers, d)

        check_everything()

        # Replay every event straight to Kafka, bypassing ingest's dedup.
        before = DUPLICATES_SKIPPED._value.get()
        produce_events(producer, settings.topic_events, events)
        assert wait_until(lambda: DUPLICATES_SKIPPED._value.get() - before >= 30, timeout=45)
        assert DUPLICATES_SKIPPED._value.get() - before == 30
        check_everything()


def check_activity(body) -> None:
    assert body["timezone"] == "Asia/Shanghai"
    got = [(x["messages"], x["active_members"], x["joins"], x["leaves"]) for x in body["days"]]
    assert got == [
        (2, 1, 2, 0),  # D0
        (3, 3, 2, 0),  # D1
        (3, 3, 0, 0),  # D2
        (1, 1, 0, 0),  # D3
        (0, 0, 0, 1),  # D4
        (0, 0, 0, 0),  # D5
        (0, 0, 0, 0),  # D6
        (4, 2, 1, 0),  # D7
        (2, 2, 1, 0),  # D8
        (1, 1, 1, 0),  # D9
        (1, 1, 0, 0),  # D10
        (0, 0, 0, 0),  # D11
        (0, 0, 0, 1),  # D12
        (0, 0, 0, 0),  # D13
        (2, 2, 0, 0),  # D14
        (1, 1, 0, 0),  # D15
        (1, 1, 0, 0),  # D16
    ]


def check_active(get, d) -> None:
    def active(k: int):
        body = get("active", date=d[k].isoformat())
        assert body["date"] == d[k].isoformat()
        return body["dau"], body["wau"], body["mau"], body["stickiness"]

    assert active(8) == (2, 5, 5, 0.4)
    assert active(14) == (2, 4, 5, 0.4)
    assert active(16) == (1, 4, 5, 0.2)


def check_retention(get, d) -> None:
    def table(cohort: str, mode: str, first, last):
        body = get(
            "retention",
            cohort=cohort,
            mode=mode,
            periods=3,
            **{"from": first.isoformat(), "to": last.isoformat()},
        )
        assert body["cohort"] == cohort and body["mode"] == mode
        return [
            (c["cohort"], c["size"], [(p["count"], p["rate"]) for p in c["periods"]])
            for c in body["cohorts"]
        ]

    zero = [(0, 0.0)] * 3
    day_exact = table("day", "exact", d[0], d[8])
    assert day_exact == [
        (d[0].isoformat(), 2, [(2, 1.0), (1, 0.5), (1, 0.5)]),
        (d[1].isoformat(), 2, [(1, 0.5), (0, 0.0), (0, 0.0)]),
        *[(d[k].isoformat(), 0, zero) for k in range(2, 7)],
        (d[7].isoformat(), 1, [(1, 1.0), (0, 0.0), (0, 0.0)]),
        (d[8].isoformat(), 1, zero),
    ]
    day_unbounded = table("day", "unbounded", d[0], d[8])
    assert day_unbounded == [
        (d[0].isoformat(), 2, [(2, 1.0), (2, 1.0), (2, 1.0)]),
        (d[1].isoformat(), 2, [(1, 0.5), (1, 0.5), (1, 0.5)]),
        *[(d[k].isoformat(), 0, zero) for k in range(2, 7)],
        (d[7].isoformat(), 1, [(1, 1.0), (1, 1.0), (1, 1.0)]),
        (d[8].isoformat(), 1, zero),
    ]
    # Week cohorts: W0 = {alice, bob, carol, dave}, W1 = {erin, grace}; today is in W3,
    # so W1's third period (W4) has not begun.
    week_exact = table("week", "exact", d[2], d[9])
    assert week_exact == [
        (d[0].isoformat(), 4, [(3, 0.75), (1, 0.25), (0, 0.0)]),
        (d[7].isoformat(), 2, [(1, 0.5), (0, 0.0), (None, None)]),
    ]
    week_unbounded = table("week", "unbounded", d[2], d[9])
    assert week_unbounded == [
        (d[0].isoformat(), 4, [(3, 0.75), (1, 0.25), (0, 0.0)]),
        (d[7].isoformat(), 2, [(1, 0.5), (0, 0.0), (None, None)]),
    ]


def check_lifecycle(get, d) -> None:
    def table(period: str, first, last):
        body = get(
            "lifecycle", period=period, **{"from": first.isoformat(), "to": last.isoformat()}
        )
        assert body["period"] == period
        return [
            (p["period"], p["new"], p["returning"], p["resurrecting"], p["dormant"])
            for p in body["periods"]
        ]

    assert table("day", d[1], d[4]) == [
        (d[1].isoformat(), 1, 1, 1, 0),
        (d[2].isoformat(), 1, 2, 0, 1),  # frank, never seen joining, is new on his first day
        (d[3].isoformat(), 0, 0, 1, 3),
        (d[4].isoformat(), 0, 0, 0, 1),
    ]
    assert table("week", d[0], d[20]) == [
        (d[0].isoformat(), 4, 0, 0, 0),
        (d[7].isoformat(), 1, 3, 0, 1),
        (d[14].isoformat(), 0, 2, 1, 2),
    ]


def check_dormant(get, d, today) -> None:
    silent_since_d15 = (today - d[15]).days + 1
    first = get("members/dormant", days=silent_since_d15, limit=3)
    assert [m["member_id"] for m in first["members"]] == ["carol", "grace", "bob"]
    assert first["members"][0]["last_active_at"] is None
    assert datetime.fromisoformat(first["members"][0]["joined_at"]) == local(d[1], "00:00:10")
    assert datetime.fromisoformat(first["members"][2]["last_active_at"]) == local(d[10], "22:00")
    assert first["next_cursor"]
    second = get("members/dormant", days=silent_since_d15, limit=3, cursor=first["next_cursor"])
    assert [m["member_id"] for m in second["members"]] == ["alice"]
    assert second["next_cursor"] is None
    everyone = get("members/dormant", days=1)
    assert [m["member_id"] for m in everyone["members"]] == [
        "carol",
        "grace",
        "bob",
        "alice",
        "erin",
        "frank",
    ]


def check_leaderboard(get, d, today) -> None:
    since_d0 = (today - d[0]).days + 1
    board = get("leaderboard", days=since_d0, limit=100)["members"]
    assert [(m["member_id"], m["messages"]) for m in board] == [
        ("alice", 6),
        ("erin", 6),
        ("bob", 4),
        ("dave", 3),
        ("frank", 2),
    ]
    top = get("leaderboard", days=since_d0, limit=3)["members"]
    assert [m["member_id"] for m in top] == ["alice", "erin", "bob"]
    since_d14 = (today - d[14]).days + 1
    recent = get("leaderboard", days=since_d14)["members"]
    assert [(m["member_id"], m["messages"]) for m in recent] == [
        ("erin", 2),
        ("alice", 1),
        ("frank", 1),
    ]


def check_members(client, group, headers, d) -> None:
    def member(name: str):
        r = client.get(f"/v1/groups/{group}/members/{name}", headers=headers)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["member_id"] == name
        return (
            _dt(body["joined_at"]),
            _dt(body["left_at"]),
            _dt(body["last_active_at"]),
            body["messages"],
            body["active_days"],
        )

    assert member("alice") == (local(d[0], "10:00"), None, local(d[14], "10:00"), 6, 5)
    assert member("bob") == (local(d[0], "23:59:50"), None, local(d[10], "22:00"), 4, 4)
    assert member("carol") == (local(d[1], "00:00:10"), None, None, 0, 0)
    assert member("dave") == (
        local(d[1], "09:00"),
        local(d[12], "15:00"),
        local(d[8], "12:00"),
        3,
        3,
    )
    assert member("erin") == (local(d[7], "08:30"), None, local(d[15], "11:00"), 6, 4)
    assert member("frank") == (None, None, local(d[16], "00:00:01"), 2, 2)
    assert member("grace") == (local(d[8], "07:00"), None, None, 0, 0)
    missing = client.get(f"/v1/groups/{group}/members/nobody", headers=headers)
    assert missing.status_code == 404


def _dt(value):
    return datetime.fromisoformat(value) if value is not None else None
