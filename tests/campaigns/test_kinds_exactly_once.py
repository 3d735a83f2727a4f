"""welcome, autoreply and broadcast exactly once when processes race: four consumers applying
the same batch (a rebalance overlap), four schedulers greeting the same welcome batch and
posting the same broadcasts at once. (SIGKILL mid-stream: tests/faults.)"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from services.campaigns.consumer import handle_batch
from services.campaigns.effects import Effects, Topics
from services.campaigns.models import Notification, Outbox
from services.campaigns.planning import create_campaign
from services.campaigns.scheduler import advance
from services.campaigns.schemas import CampaignCreate
from services.campaigns.welcome import greet_due
from services.common.kafka.consumer import ConsumedEvent, Record
from services.common.kafka.producer import ProducerHandle
from tests.campaigns.helpers import campaign_body, joined, message, now

RACERS = 4


def _race(work: Callable[[], Any]) -> None:
    """Run `work` in RACERS threads released together; fail with any error they raised."""
    barrier = threading.Barrier(RACERS)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            work()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(RACERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors


def _create(engine: Any, group: str, kind: str, params: dict[str, Any], **window: float) -> str:
    body = CampaignCreate.model_validate(campaign_body(kind, params=params, **window))
    with Session(engine) as session:
        cid = create_campaign(session=session, group_id=group, body=body, now=now()).id
        session.commit()
    return cid


def _notes(engine: Any, cid: str) -> list[Notification]:
    with Session(engine) as session:
        return list(
            session.exec(
                select(Notification)
                .where(col(Notification.campaign_id) == cid)
                .order_by(col(Notification.position))
            ).all()
        )


def _queued(engine: Any, group: str) -> list[str]:
    with Session(engine) as session:
        return list(session.exec(select(Outbox.message_id).where(col(Outbox.key) == group)).all())


def test_racing_consumers_welcome_once_and_answer_once_per_cooldown(settings, engine, unique):
    group = unique("g-race-kinds")
    welcome = _create(engine, group, "welcome", {"batch_seconds": 30}, start_in=-60, end_in=600)
    triggers = [{"keywords": ["群规"], "reply": "{member} 看置顶"}]
    autoreply = _create(
        engine,
        group,
        "autoreply",
        {"triggers": triggers, "cooldown_seconds": 10},
        start_in=-60,
        end_in=600,
    )
    t = now().replace(microsecond=0) - timedelta(seconds=40)
    joins = [joined(group, f"m{i:02d}", t, display_name=f"新人{i:02d}") for i in range(50)]
    # Asked every 2 s for 40 s: answered at +0, +10, +20 and +30 s (cooldown 10 s).
    asks = [
        message(group, f"q{i}", "群规？", t + timedelta(seconds=2 * i), display_name=f"问{i}")
        for i in range(20)
    ]
    events = [*joins, *asks]
    batch = [ConsumedEvent(Record("t", 0, i, None, None), e) for i, e in enumerate(events)]
    producer = ProducerHandle(settings)
    try:
        _race(lambda: handle_batch(batch, engine=engine, producer=producer, settings=settings))
        _race(lambda: handle_batch(batch, engine=engine, producer=producer, settings=settings))
    finally:
        producer.close()
    replies = _notes(engine, autoreply)
    assert [(n.text, n.reply_to) for n in replies] == [
        (f"@问{i} 看置顶", asks[i].data.message_id)  # type: ignore[union-attr]
        for i in (0, 5, 10, 15)
    ]
    # Four schedulers greet the batch (due 30 s after the joins) at the same moment.
    at = t + timedelta(seconds=31)

    def greet() -> None:
        with Session(engine) as session:
            greet_due(
                session=session, campaign_id=welcome, now=at, effects=Effects(Topics.of(settings))
            )
            session.commit()

    _race(greet)
    _race(greet)
    [post] = _notes(engine, welcome)
    assert post.text == "欢迎 " + " ".join(f"@新人{i:02d}" for i in range(50)) + " 加入！"
    assert post.mentions == [f"m{i:02d}" for i in range(50)]
    queued = _queued(engine, group)
    assert sorted(queued) == sorted([post.id, *(n.id for n in replies)])


def test_racing_schedulers_post_each_broadcast_once(settings, engine, unique):
    group = unique("g-race-broadcast")
    t = now()
    messages = [
        {"at": (t + timedelta(seconds=s)).isoformat(), "text": f"第{i}条"}
        for i, s in enumerate((20, 40, 60))
    ]
    cid = _create(engine, group, "broadcast", {"messages": messages}, start_in=10, end_in=90)

    def tick_at(at: datetime) -> Callable[[], None]:
        def run() -> None:
            with Session(engine) as session:
                advance(
                    session=session,
                    campaign_id=cid,
                    now=at,
                    tz=settings.tz,
                    effects=Effects(Topics.of(settings)),
                )
                session.commit()

        return run

    for seconds in (45, 45, 120, 120):  # two due, then the rest and the end, each raced
        _race(tick_at(t + timedelta(seconds=seconds)))
    notes = _notes(engine, cid)
    assert [(n.kind, n.text) for n in notes] == [
        ("broadcast", "第0条"),
        ("broadcast", "第1条"),
        ("broadcast", "第2条"),
    ]
    assert sorted(_queued(engine, group)) == sorted(n.id for n in notes)
    assert all(
        n.created_at >= datetime.fromisoformat(m["at"])
        for n, m in zip(notes, messages, strict=True)
    )
