"""Two campaigns processes (`python -m services.campaigns`, one consumer group, two
schedulers) run a welcome, an autoreply and a broadcast campaign in one group while joins
and questions stream in; each process is SIGKILLed mid-stream and restarted. Every
newcomer is greeted exactly once, every question the cooldown allows is answered exactly
once (and no other), every broadcast message is posted exactly once: in the database and,
by id, on campaigns.notifications.v1 (where a relay killed between Kafka's ack and its
mark may repeat a record under the same id, which consumers dedupe)."""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from sqlmodel import Session, col, select

from services.campaigns.models import Campaign, Notification
from services.common.db import make_engine
from services.common.settings import Settings
from tests.campaigns.helpers import joined, message, read_group
from tests.faults.harness import FIGURES, Services
from tests.support import auth, produce_events, wait_until
from tools.localstack import free_port
from tools.stack import RunningStack, settings_env, start_service, stop_all

WAVES, PER_WAVE, WAVE_EVERY = 3, 20, 5  # joins: 3 waves of 20, 5 s apart (batch: 3 s)
ASKS, COOLDOWN = 24, 10  # one question a second; answered at +0, +10 and +20 s
BROADCASTS = (4, 6, 8, 10, 12)  # seconds after the stream starts
KILLS = ((3.0, 0), (7.0, 1))  # (seconds into the stream, replica)
STEP = 0.4  # seconds between the stream's sends


def _campaigns(t1: datetime) -> dict[str, dict[str, Any]]:
    window = {
        "starts_at": (t1 - timedelta(minutes=1)).isoformat(),
        "ends_at": (t1 + timedelta(minutes=5)).isoformat(),
    }
    messages = [
        {"at": (t1 + timedelta(seconds=s)).isoformat(), "text": f"SOP {i}"}
        for i, s in enumerate(BROADCASTS)
    ]
    reply = {"keywords": ["群规"], "reply": "{member} 群规见置顶"}
    return {
        "welcome": {**window, "kind": "welcome", "title": "欢迎", "params": {"batch_seconds": 3}},
        "autoreply": {**window, "kind": "autoreply", "title": "问答",
                      "params": {"triggers": [reply], "cooldown_seconds": COOLDOWN}},
        "broadcast": {**window, "kind": "broadcast", "title": "SOP",
                      "params": {"messages": messages}},
    }  # fmt: skip


@contextmanager
def replicas_of(settings: Settings, logs: Path, *, count: int) -> Iterator[list[Services]]:
    """`count` campaigns processes started at once on their own ports (one stack each, so the
    harness can kill and restart each), stopped when the block ends."""
    env = {**os.environ, **settings_env(settings), "HOST": "127.0.0.1"}
    env.pop("PORT", None)
    stacks = [RunningStack(ports={"campaigns": free_port()}) for _ in range(count)]
    logs.mkdir(parents=True, exist_ok=True)
    try:
        for i, s in enumerate(stacks):
            s.logs["campaigns"] = logs / f"campaigns-{i}.log"
            s.processes["campaigns"] = start_service(
                "campaigns", s.ports["campaigns"], env, s.logs["campaigns"]
            )
        replicas = [Services(s, settings) for s in stacks]
        for r in replicas:
            r.ready(timeout=90)
        yield replicas
    finally:
        stop_all([p for s in stacks for p in s.processes.values()])


def _notes(engine: sa.Engine, cid: str) -> list[Notification]:
    with Session(engine) as session:
        return list(
            session.exec(
                select(Notification)
                .where(col(Notification.campaign_id) == cid)
                .order_by(col(Notification.position))
            ).all()
        )


def test_sigkill_two_campaigns_replicas_mid_stream_posts_each_once(
    make_settings, tokens, tmp_path, unique, producer
):
    settings: Settings = make_settings()
    group = unique("g-kinds-crash")
    engine = make_engine(settings.database_url)
    with (
        replicas_of(settings, tmp_path, count=2) as replicas,
        httpx.Client(timeout=30, headers=auth(tokens.admin)) as client,
    ):
        t1 = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
        ids: dict[str, str] = {}
        for kind, body in _campaigns(t1).items():
            url = replicas[kind == "autoreply"].url("campaigns")  # either replica will do
            r = client.post(f"{url}/v1/groups/{group}/campaigns", json=body)
            assert r.status_code == 201, r.text
            ids[kind] = r.json()["id"]
        try:
            newcomers = [f"n{w}-{i:02d}" for w in range(WAVES) for i in range(PER_WAVE)]
            asks = [
                message(
                    group, f"q{i:02d}", "群规？", t1 + timedelta(seconds=i), display_name=f"问{i}"
                )
                for i in range(ASKS)
            ]
            # The stream: a question dated each second (and a wave of joins every 5 s),
            # sent every STEP seconds; the kills fall in between.
            started = time.monotonic()
            kills = list(KILLS)
            for second in range(ASKS):
                while kills and time.monotonic() - started >= kills[0][0]:
                    _, replica = kills.pop(0)
                    replicas[replica].kill("campaigns")
                    replicas[replica].restart("campaigns")
                events = [asks[second]]
                if second % WAVE_EVERY == 0 and second // WAVE_EVERY < WAVES:
                    wave = second // WAVE_EVERY
                    events += [
                        joined(group, m, t1 + timedelta(seconds=second), display_name=f"新人{m}")
                        for m in newcomers[wave * PER_WAVE : (wave + 1) * PER_WAVE]
                    ]
                produce_events(producer, settings.topic_events, events)
                time.sleep(max(0.0, started + (second + 1) * STEP - time.monotonic()))
            for r in replicas:
                r.ready(timeout=60)

            def done() -> bool:
                greeted = [m for n in _notes(engine, ids["welcome"]) for m in n.mentions]
                return (
                    len(_notes(engine, ids["broadcast"])) == len(BROADCASTS)
                    and len(_notes(engine, ids["autoreply"])) >= 3
                    and set(greeted) >= set(newcomers)
                )

            assert wait_until(done, timeout=90), {k: len(_notes(engine, c)) for k, c in ids.items()}
            time.sleep(1)  # anything doubled would show by now
            notes = {kind: _notes(engine, cid) for kind, cid in ids.items()}
        finally:
            with engine.begin() as conn:  # nothing of this test fires into a later one
                conn.execute(
                    sa.update(Campaign)
                    .where(col(Campaign.group_id) == group)
                    .values(status="cancelled", next_due_at=None)
                )

    greeted = Counter(m for n in notes["welcome"] for m in n.mentions)
    assert greeted == Counter(newcomers), greeted
    assert all(n.text.startswith("欢迎 @新人") for n in notes["welcome"])
    assert [(n.text, n.reply_to) for n in notes["autoreply"]] == [
        (f"@问{i} 群规见置顶", asks[i].data.message_id)  # type: ignore[union-attr]
        for i in (0, COOLDOWN, 2 * COOLDOWN)
    ]
    assert [n.text for n in notes["broadcast"]] == [f"SOP {i}" for i in range(len(BROADCASTS))]
    kept = {n.id for kind in notes.values() for n in kind}
    published = read_group(
        settings.kafka_bootstrap_servers,
        settings.topic_campaign_notifications,
        group,
        expect=len(kept),
        timeout=30,
        settle=0.5,
    )
    assert {p["id"] for p in published} == kept
    repeats = sum(n - 1 for n in Counter(p["id"] for p in published).values())
    FIGURES.append(
        f"campaign posts crash: kills={sum(sum(r.kills.values()) for r in replicas)} "
        f"welcome posts={len(notes['welcome'])} replies={len(notes['autoreply'])} "
        f"broadcasts={len(notes['broadcast'])} relay repeats (same id)={repeats}"
    )
    engine.dispose()
