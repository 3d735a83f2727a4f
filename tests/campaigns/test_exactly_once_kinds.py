"""Exactly once for polls, feedback and invites: concurrent PATCHes accepting one feedback
item grant once; schedulers settling the same invitees at once grant each retained invitee
once (a controllable clock: `settle_due(now=…)`); and a poll's results and the invite
grants come out once while two campaigns replicas run and one of them, a real process, is
SIGKILLed mid-stream and again around the due time, then restarted."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
from sqlmodel import Session, col, func, select

from services.campaigns import feedback, invites
from services.campaigns.app import create_app
from services.campaigns.effects import Effects, Topics
from services.campaigns.models import Campaign, Grant, Invitee, Notification, Outbox, Vote
from services.campaigns.planning import create_campaign
from services.campaigns.schemas import CampaignCreate, FeedbackUpdate
from services.common.contracts.events import Event, MemberJoined, MemberLeft, parse_event
from services.common.settings import Settings
from tests.campaigns.helpers import campaign_body, message, now, read_group, wait_until
from tests.conftest import auth, produce_events
from tests.faults.harness import Services
from tools.localstack import free_port
from tools.stack import RunningStack, start_service


def _campaign(engine: Any, group: str, body: dict[str, Any]) -> Campaign:
    with Session(engine) as session:
        campaign = create_campaign(
            session=session,
            group_id=group,
            body=CampaignCreate.model_validate(body),
            now=now(),
        )
        session.commit()
        session.refresh(campaign)
        session.expunge(campaign)
    return campaign


def _race(n: int, work: Any) -> list[BaseException]:
    """Run `work()` in n threads released together; return what they raised."""
    barrier = threading.Barrier(n)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            work()
        except BaseException as exc:  # noqa: BLE001 - reported by the caller
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return errors


def _rewards_queued(engine: Any, settings: Settings, group: str) -> int:
    with Session(engine) as session:
        return int(
            session.exec(
                select(func.count()).where(
                    col(Outbox.topic) == settings.topic_campaign_rewards, col(Outbox.key) == group
                )
            ).one()
        )


def test_concurrent_patches_accepting_an_item_grant_once(settings, engine, unique):
    group = unique("g-fb-race")
    params = {"categories": ["bug"], "points_accepted": 20}
    campaign = _campaign(
        engine, group, campaign_body("feedback", start_in=-10, end_in=600, params=params)
    )
    with Session(engine) as session:
        [stored] = feedback.collect(
            session=session,
            campaign=campaign,
            messages=[message(group, "ann", "#反馈 bug 闪退", now())],  # type: ignore[list-item]
            now=now(),
        )
        session.commit()
        listed = feedback.list_feedback(
            session=session,
            group_id=group,
            campaign_id=campaign.id,
            status=None,
            limit=5,
            cursor=None,
        )
    [item] = listed.feedback
    assert (item.member_id, item.category, item.status) == ("ann", "bug", "new")

    def accept() -> None:
        with Session(engine) as session:
            feedback.update_item(
                session=session,
                group_id=group,
                campaign_id=campaign.id,
                item_id=item.id,
                body=FeedbackUpdate(status="accepted"),
                now=now(),
                effects=Effects(Topics.of(settings)),
            )
            session.commit()

    assert not _race(8, accept)
    accept()  # and once more later
    with Session(engine) as session:
        grants = session.exec(select(Grant).where(col(Grant.campaign_id) == campaign.id)).all()
    assert [(g.member_id, g.reason, g.points) for g in grants] == [
        ("ann", f"feedback:{item.id}", 20)
    ]
    assert _rewards_queued(engine, settings, group) == 1


def _join(group: str, member: str, inviter: str | None, at: datetime) -> MemberJoined:
    event = parse_event(
        {
            "id": uuid.uuid4().hex,
            "source": "campaigns-test",
            "type": "member.joined",
            "group_id": group,
            "member_id": member,
            "occurred_at": at.isoformat(),
            "data": {"invited_by": inviter, "method": "invite" if inviter else "link"},
        }
    )
    assert isinstance(event, MemberJoined)
    return event


def _leave(group: str, member: str, at: datetime) -> MemberLeft:
    event = parse_event(
        {
            "id": uuid.uuid4().hex,
            "source": "campaigns-test",
            "type": "member.left",
            "group_id": group,
            "member_id": member,
            "occurred_at": at.isoformat(),
            "data": {"reason": "left"},
        }
    )
    assert isinstance(event, MemberLeft)
    return event


def test_racing_schedulers_settle_each_invitee_once(settings, engine, unique):
    group = unique("g-invite-race")
    campaign = _campaign(
        engine,
        group,
        campaign_body(
            "invite", start_in=-3600, end_in=600, params={"points_per_invitee": 5, "retain_days": 1}
        ),
    )
    t = now() - timedelta(minutes=30)
    joins = [_join(group, f"new{i}", f"inv{i % 3}", t + timedelta(seconds=i)) for i in range(30)]
    joins.append(_join(group, "self", "self", t))  # a self-invite counts nothing
    joins.append(_join(group, "new1", "inv2", t + timedelta(minutes=5)))  # a re-join: nothing
    leaves = [_leave(group, f"new{i}", t + timedelta(hours=1)) for i in range(0, 30, 5)]
    leaves.append(_leave(group, "new1", t + timedelta(days=2)))  # left after being due: counts
    with Session(engine) as session:
        counted = invites.record_joins(session=session, joins=joins)
        invites.record_leaves(session=session, leaves=leaves)
        session.commit()
    assert len(counted) == 30
    # The clock is an argument: an hour early nothing is due, a day later everyone is.
    early, due = t + timedelta(hours=23), t + timedelta(days=1, minutes=1)
    with Session(engine) as session:
        nothing = invites.settle_due(
            session=session,
            now=early,
            effects=Effects(Topics.of(settings)),
            campaign_ids=[campaign.id],
        )
        session.commit()
    assert not nothing

    def settle() -> None:
        with Session(engine) as session:
            invites.settle_due(
                session=session,
                now=due,
                effects=Effects(Topics.of(settings)),
                campaign_ids=[campaign.id],
            )
            session.commit()

    assert not _race(4, settle)
    settle()
    with Session(engine) as session:
        grants = session.exec(select(Grant).where(col(Grant.campaign_id) == campaign.id)).all()
        outcomes = Counter(
            session.exec(
                select(Invitee.outcome).where(col(Invitee.campaign_id) == campaign.id)
            ).all()
        )
    retained = [i for i in range(30) if i % 5]
    assert sorted((g.member_id, g.reason) for g in grants) == sorted(
        (f"inv{i % 3}", f"invitee:new{i}") for i in retained
    )
    assert outcomes == {"retained": len(retained), "left": 6}
    assert _rewards_queued(engine, settings, group) == len(retained)


# ---- two replicas, one of them SIGKILLed ---------------------------------------------------

VOTERS = 60
INVITEES = 40
RETAIN_SECONDS = 8


def _stream(
    producer: Any,
    settings: Settings,
    poll_group: str,
    invite_group: str,
    t0: datetime,
    seconds: float,
) -> list[Event]:
    """Votes (half of them changed a second later) and invited joins (every fifth invitee
    leaving a second after joining), sent over `seconds`, then a fifth replayed. Their
    `occurred_at` runs from t0 in 20 ms steps, whatever the machine's load."""
    rng = random.Random(7)
    sent: list[Event] = []
    steps, chunks = VOTERS + INVITEES, 10
    batch: list[Event] = []
    for step in range(steps):
        at = t0 + timedelta(milliseconds=20 * step)
        if step < VOTERS:
            i = step
            batch.append(message(poll_group, f"v{i}", f"投票 {i % 3 + 1}", at))
            if i % 2:
                later = at + timedelta(seconds=1)
                batch.append(message(poll_group, f"v{i}", f"投票{(i + 1) % 3 + 1}", later))
        else:
            i = step - VOTERS
            batch.append(_join(invite_group, f"n{i}", f"inv{i % 4}", at))
            if i % 5 == 0:
                batch.append(_leave(invite_group, f"n{i}", at + timedelta(seconds=1)))
        if (step + 1) % (steps // chunks) == 0:
            produce_events(producer, settings.topic_events, batch)
            sent += batch
            batch = []
            time.sleep(seconds / chunks)
    replay = rng.sample(sent, len(sent) // 5)
    produce_events(producer, settings.topic_events, replay)
    return sent


def _start_campaigns(
    url: str, headers: dict[str, str], poll_group: str, invite_group: str
) -> tuple[str, str]:
    """A poll ending in 10 s (results 6 s later) and an invite retaining for 8 s."""
    poll_body = campaign_body(
        "poll",
        start_in=-5,
        end_in=10,
        params={"question": "选哪个？", "options": ["A", "B", "C"], "results_delay_seconds": 6},
    )
    invite_body = campaign_body(
        "invite",
        start_in=-5,
        end_in=600,
        params={"points_per_invitee": 3, "retain_days": RETAIN_SECONDS / 86400},
    )
    ids = []
    with httpx.Client(base_url=url, headers=headers, timeout=30) as api:
        for group, body in ((poll_group, poll_body), (invite_group, invite_body)):
            r = api.post(f"/v1/groups/{group}/campaigns", json=body)
            assert r.status_code == 201, r.text
            ids.append(str(r.json()["id"]))
    return ids[0], ids[1]


def test_poll_results_and_invite_grants_once_with_two_replicas_and_sigkill(
    settings, engine, run_app, tokens, unique, producer, tmp_path: Path
):
    poll_group, invite_group = unique("g-poll-kill"), unique("g-invite-kill")
    admin = auth(tokens.admin)
    port = free_port()
    log = tmp_path / "campaigns.log"
    stack = RunningStack(ports={"campaigns": port}, logs={"campaigns": log})
    services = Services(stack, settings)
    stack.processes["campaigns"] = start_service("campaigns", port, services.env, log)
    try:
        with run_app(create_app(settings)) as replica:  # the second replica, in this process
            services.ready(["campaigns"])
            t0 = now()
            poll, invite = _start_campaigns(stack.url("campaigns"), admin, poll_group, invite_group)
            thread = threading.Thread(
                target=_stream, args=(producer, settings, poll_group, invite_group, t0, 4.0)
            )
            thread.start()
            time.sleep(2)
            services.kill("campaigns")  # mid-stream: its batches come again to someone
            services.restart("campaigns")
            thread.join(60)
            # Again just before the results are due (the invitees are settled meanwhile).
            time.sleep(max(0.0, (t0 + timedelta(seconds=15.5) - now()).total_seconds()))
            services.kill("campaigns")
            services.restart("campaigns")  # the replica in this process carries on meanwhile

            def settled() -> bool:
                with Session(engine) as session:
                    pending = session.exec(
                        select(func.count()).where(
                            col(Invitee.campaign_id) == invite, col(Invitee.settled_at).is_(None)
                        )
                    ).one()
                    posted = session.get(Notification, f"{poll}:results")
                return pending == 0 and posted is not None

            assert wait_until(settled, timeout=60), stack.log_tail("campaigns")
            results = replica.get(
                f"/v1/groups/{poll_group}/campaigns/{poll}/results", headers=admin
            )
            inviters = replica.get(
                f"/v1/groups/{invite_group}/campaigns/{invite}/participants", headers=admin
            ).json()["participants"]
            notes = read_group(
                settings.kafka_bootstrap_servers,
                settings.topic_campaign_notifications,
                poll_group,
                expect=3,
                settle=1,
            )
            grants = read_group(
                settings.kafka_bootstrap_servers,
                settings.topic_campaign_rewards,
                invite_group,
                expect=INVITEES - INVITEES // 5,
                settle=1,
            )
            with Session(engine) as session:
                votes = session.exec(
                    select(func.count()).where(col(Vote.campaign_id) == poll)
                ).one()
                granted = session.exec(
                    select(Grant.member_id, Grant.reason).where(col(Grant.campaign_id) == invite)
                ).all()
    finally:
        stack.stop("campaigns")
    assert services.kills["campaigns"] == 2

    # Truth, by hand: v_i's last vote is option (i+1)%3+1 when i is odd, else i%3+1.
    final = [((i + 1) % 3 + 1) if i % 2 else (i % 3 + 1) for i in range(VOTERS)]
    tally = Counter(final)
    expected = {
        "question": "选哪个？",
        "options": [{"option": o, "text": "ABC"[o - 1], "votes": tally[o]} for o in (1, 2, 3)],
        "voters": VOTERS,
    }
    assert results.json() == expected
    assert votes == VOTERS
    results_records = [n for n in notes if n["kind"] == "results"]
    assert {n["id"] for n in results_records} == {f"{poll}:results"}  # one notification
    assert {orjson.dumps({k: n["data"][k] for k in expected}) for n in results_records} == {
        orjson.dumps(expected)
    }
    retained = [i for i in range(INVITEES) if i % 5]
    wanted = sorted((f"inv{i % 4}", f"invitee:n{i}") for i in retained)
    assert sorted(granted) == wanted  # the database: one grant each
    assert sorted({(g["member_id"], g["reason"]) for g in grants}) == wanted
    # A record published twice (a kill between Kafka's ack and the outbox mark) keeps its id.
    by_reason = {g["reason"]: g["id"] for g in grants}
    assert all(by_reason[g["reason"]] == g["id"] for g in grants)
    assert {p["member_id"]: p["count"] for p in inviters} == {
        f"inv{k}": INVITEES // 4 for k in range(4)
    }
