"""Exactly once under concurrency: the last prizes, two scheduler processes, restarts."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

from sqlmodel import Session, col, func, select

from services.campaigns.app import create_app
from services.campaigns.effects import Effects, Topics, publish
from services.campaigns.models import Campaign, Grant, Outbox, Participant, PrizeStock, Winner
from services.campaigns.planning import create_campaign
from services.campaigns.rewards import take_prize
from services.campaigns.scheduler import Scheduler, advance
from services.campaigns.schemas import CampaignCreate
from services.common.kafka.producer import ProducerHandle
from tests.campaigns.helpers import campaign_body, now, read_group, wait_until
from tests.conftest import auth


def test_fifty_concurrent_attempts_take_exactly_the_last_prizes(settings, engine, unique):
    group = unique("g-prizes")
    body = CampaignCreate.model_validate(
        campaign_body(
            "lottery", start_in=-10, end_in=60, params={"prizes": [{"name": "杯子", "quantity": 5}]}
        )
    )
    with Session(engine) as session:
        campaign = create_campaign(session=session, group_id=group, body=body, now=now())
        session.commit()
        session.refresh(campaign)
        session.expunge(campaign)
    barrier = threading.Barrier(60)
    won: list[str] = []
    lock = threading.Lock()

    def attempt(member_id: str) -> None:
        with Session(engine) as session:
            barrier.wait()
            prize = take_prize(
                session=session,
                campaign=campaign,
                member_id=member_id,
                position=0,
                round=0,
                rank=0,
                now=now(),
                effects=Effects(Topics.of(settings)),
            )
            session.commit()
        if prize:
            with lock:
                won.append(member_id)

    members = [f"m{i}" for i in range(50)] + ["m0"] * 10  # ten repeats of one member
    threads = [threading.Thread(target=attempt, args=(m,)) for m in members]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    with Session(engine) as session:
        stock = session.get(PrizeStock, (campaign.id, 0))
        grants = session.exec(
            select(func.count()).where(col(Grant.campaign_id) == campaign.id)
        ).one()
        winners = session.exec(
            select(func.count()).where(col(Winner.campaign_id) == campaign.id)
        ).one()
        rewards = session.exec(
            select(func.count()).where(
                col(Outbox.topic) == settings.topic_campaign_rewards, col(Outbox.key) == group
            )
        ).one()
    assert stock is not None and stock.remaining == 0
    assert len(won) == len(set(won)) == 5
    assert grants == winners == rewards == 5


def test_two_scheduler_processes_publish_each_notification_once(
    settings, run_app, tokens, unique, kafka_bootstrap, engine
):
    group = unique("g-sched")
    admin = auth(tokens.admin)
    extra = [
        Scheduler(
            engine=engine, settings=settings, producer=ProducerHandle(settings), interval=0.02
        )
        for _ in range(2)
    ]
    with run_app(create_app(settings)) as one, run_app(create_app(settings)) as two:
        # Times from now, once both apps run: on a busy machine their start-up takes seconds,
        # and a reminder already past when the campaign is created is skipped.
        t0 = now()
        bodies = [
            campaign_body(
                "event",
                start_in=3,
                end_in=4,
                announce_at=(t0 + timedelta(seconds=1)).isoformat(),
                reminders=["PT1S", "PT2S"],
            ),
            campaign_body(
                "lottery",
                start_in=1,
                end_in=3,
                params={"prizes": [{"name": "x", "quantity": 1}], "draw_delay_seconds": 1},
            ),
            campaign_body("challenge", start_in=1, end_in=2, params={"goal_messages": 1}),
        ]
        ids = [
            client.post(f"/v1/groups/{group}/campaigns", json=b, headers=admin).json()["id"]
            for client, b in zip([one, two, one], bodies, strict=True)
        ]
        for s in extra:
            s.start()
        try:

            def ended() -> bool:
                return all(
                    one.get(f"/v1/groups/{group}/campaigns/{c}", headers=admin).json()["status"]
                    == "ended"
                    for c in ids
                )

            assert wait_until(ended, timeout=30)
            notes = read_group(
                kafka_bootstrap, settings.topic_campaign_notifications, group, expect=10, settle=3
            )
        finally:
            for s in extra:
                s.stop()
    assert Counter(n["id"] for n in notes).most_common(1)[0][1] == 1
    assert Counter(n["kind"] for n in notes) == {
        "announce": 1,
        "reminder": 2,
        "started": 3,
        "ended": 3,
        "winners": 1,
    }


def test_restarted_scheduler_catches_up_every_missed_step(settings, engine, unique):
    group = unique("g-restart")
    body = CampaignCreate.model_validate(
        campaign_body(
            "event",
            start_in=3600,
            end_in=7200,
            announce_at=(now() + timedelta(minutes=10)).isoformat(),
            reminders=["PT10M", "PT30M"],
        )
    )
    with Session(engine) as session:
        cid = create_campaign(session=session, group_id=group, body=body, now=now()).id
        session.commit()
    later = now() + timedelta(hours=3)
    # advance() is what tick() does per due campaign; called directly so that other tests'
    # campaigns in the shared database are left alone.
    for _ in range(2):  # the second pass finds nothing left to do
        with Session(engine) as session:
            advance(
                session=session,
                campaign_id=cid,
                now=later,
                tz=settings.tz,
                effects=Effects(Topics.of(settings)),
            )
            session.commit()
    with Session(engine) as session:
        rows = session.exec(
            select(Outbox.message_id).where(col(Outbox.key) == group).order_by(col(Outbox.seq))
        ).all()
        done = session.get(Campaign, cid)
    assert done is not None and done.status == "ended" and done.next_due_at is None
    assert rows == [
        f"{cid}:announce",
        f"{cid}:reminder:0",
        f"{cid}:reminder:1",
        f"{cid}:started",
        f"{cid}:ended",
    ]


def test_two_consumers_applying_the_same_batch_grant_once(settings, engine, unique):
    from services.campaigns.consumer import handle_batch
    from services.common.kafka.consumer import ConsumedEvent, Record
    from tests.campaigns.helpers import message

    group = unique("g-race")
    body = CampaignCreate.model_validate(
        campaign_body(
            "challenge", start_in=-10, end_in=600, params={"goal_messages": 2, "points": 7}
        )
    )
    with Session(engine) as session:
        cid = create_campaign(session=session, group_id=group, body=body, now=now()).id
        session.commit()
    at = now()
    events = [message(group, f"m{i % 20}", "hi", at) for i in range(200)]
    batch = [ConsumedEvent(Record("t", 0, i, None, None), e) for i, e in enumerate(events)]
    producer = ProducerHandle(settings)
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def consume() -> None:
        try:
            barrier.wait()
            handle_batch(batch, engine=engine, producer=producer, settings=settings)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=consume) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    producer.close()
    assert not errors, errors
    with Session(engine) as session:
        grants = session.exec(select(Grant).where(col(Grant.campaign_id) == cid)).all()
        counts = session.exec(
            select(Participant.count).where(col(Participant.campaign_id) == cid)
        ).all()
    assert sorted(g.member_id for g in grants) == sorted(f"m{i}" for i in range(20))
    assert sorted(counts) == [10] * 20


def test_racing_outbox_publishers_send_each_record_once(settings, engine, unique, kafka_bootstrap):
    from services.common.contracts.notifications import RewardGranted
    from services.common.outbox import Outgoing, enqueue

    group = unique("g-outbox")
    grants = [
        RewardGranted(
            id=f"{group}:{i}",
            group_id=group,
            campaign_id="c",
            member_id="m",
            reason=str(i),
            created_at=now(),
        )
        for i in range(1200)
    ]
    with Session(engine) as session:
        topic = settings.topic_campaign_rewards
        enqueue(session, Outbox, [Outgoing(topic, group, g) for g in grants])
        session.commit()
    producers = [ProducerHandle(settings) for _ in range(4)]
    barrier = threading.Barrier(4)
    sent: list[int] = []

    def race(producer: ProducerHandle) -> None:
        barrier.wait()
        sent.append(publish(engine=engine, producer=producer, topics=Topics.of(settings)))

    threads = [threading.Thread(target=race, args=(p,)) for p in producers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for p in producers:
        p.close()
    records = read_group(
        kafka_bootstrap, settings.topic_campaign_rewards, group, expect=1200, settle=1
    )
    assert len(records) == 1200
    assert len({r["id"] for r in records}) == 1200
    assert sum(sent) >= 1200
