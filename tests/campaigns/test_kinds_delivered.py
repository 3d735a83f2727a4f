"""welcome, autoreply and broadcast end to end: Telegram webhook updates through ingest,
campaigns, delivery, and the posts the fake Telegram group at the platform double shows,
each worked out by hand: a join wave of 50 (3 of them gone again) is one welcome post
mentioning the 47; a trigger is answered once within its cooldown, as a reply; a broadcast
posts each message at its time and nothing more once cancelled."""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import Session

from services.campaigns.app import create_app
from services.campaigns.directory import source_of
from services.campaigns.effects import Effects, Topics
from services.campaigns.scheduler import advance
from services.ingest.app import create_app as create_ingest
from tests.campaigns.helpers import TG_SOURCE as SOURCE
from tests.campaigns.helpers import post_updates, wait_until
from tests.conftest import auth
from tests.delivery.conftest import (  # noqa: F401 - the delivery harness's fixtures
    chat_number,
    clean_double,
    delivery,
    delivery_config,
    double,
)
from tools.platform_double.telegram_updates import member_joined, member_left

_updates = itertools.count(int(time.time() * 1000) % 10**9 * 1000)


def _update(chat: int, at: datetime, **message: Any) -> dict[str, Any]:
    update_id = next(_updates)
    base = {"message_id": update_id % 10**9, "date": int(at.timestamp())}
    chat_info = {"id": chat, "type": "supergroup", "title": "护肤交流群"}
    return {"update_id": update_id, "message": {**base, "chat": chat_info, **message}}


def _user(user_id: int, name: str) -> dict[str, Any]:
    return {"id": user_id, "is_bot": False, "first_name": name}


def said(chat: int, user: tuple[int, str], text: str, at: datetime) -> dict[str, Any]:
    return _update(chat, at, **{"from": _user(*user), "text": text})


def joined(chat: int, user: tuple[int, str], at: datetime) -> dict[str, Any]:
    date = int(at.timestamp())
    return member_joined(update_id=next(_updates), chat=chat, user=_user(*user), date=date)


def left(chat: int, user: tuple[int, str], at: datetime) -> dict[str, Any]:
    date = int(at.timestamp())
    return member_left(update_id=next(_updates), chat=chat, user=_user(*user), date=date)


def test_welcome_autoreply_and_broadcast_posts_reach_the_group(
    delivery,  # noqa: F811
    delivery_config,  # noqa: F811
    make_settings,
    engine,
    run_app,
    tokens,
):
    admin = auth(tokens.admin)
    chat = -chat_number()
    group = f"telegram:{chat}"
    base = f"/v1/groups/{group}/campaigns"
    with delivery() as h:
        settings = make_settings(
            share_with=h.settings,
            topic_delivery_receipts=h.settings.topic_delivery_receipts,
            qunyun_config=str(delivery_config),
        )
        with run_app(create_ingest(settings)) as ingest, run_app(create_app(settings)) as client:

            def send(*updates: dict[str, Any]) -> None:
                post_updates(ingest, *updates)

            def create(body: dict[str, Any]) -> str:
                r = client.post(base, json=body, headers=admin)
                assert r.status_code == 201, r.text
                return str(r.json()["id"])

            def source() -> str | None:
                with Session(engine) as session:
                    return source_of(session=session, group_id=group)

            t0 = datetime.now(UTC).replace(microsecond=0)
            window = {
                "starts_at": (t0 - timedelta(seconds=5)).isoformat(),
                "ends_at": (t0 + timedelta(minutes=10)).isoformat(),
            }
            welcome = create(
                {**window, "kind": "welcome", "title": "护肤交流群",
                 "params": {"text": "欢迎 {members} 加入{title}！共 {count} 位新朋友",
                            "batch_seconds": 5}}
            )  # fmt: skip
            autoreply = create(
                {**window, "kind": "autoreply", "title": "常见问题",
                 "params": {"triggers": [{"keywords": ["群规"], "reply": "{member} 群规见置顶～"}],
                            "cooldown_seconds": 30}}
            )  # fmt: skip
            b1, b2, b3 = (t0 + timedelta(seconds=s) for s in (6, 8, 300))
            broadcast = create(
                {**window, "kind": "broadcast", "title": "每日早安",
                 "params": {"messages": [{"at": b2.isoformat(), "text": "第二条：今天聊防晒"},
                                         {"at": b1.isoformat(), "text": "第一条：早安！"},
                                         {"at": b3.isoformat(), "text": "第三条：不会发出"}]}}
            )  # fmt: skip

            # The group's source (where posts go) is known from its first event.
            send(said(chat, (5000001, "小红"), "大家好", t0))
            assert wait_until(lambda: source() == SOURCE, timeout=30)

            # A join wave: 50 newcomers (a chat_member update each); 3 of them leave again at
            # once. The batch is posted 5 s after the first join (Telegram dates are whole
            # seconds).
            t1 = datetime.now(UTC).replace(microsecond=0)
            newcomers = [(7000 + i, f"新人{i + 1:02d}") for i in range(50)]
            send(*(joined(chat, u, t1) for u in newcomers))
            leavers = [newcomers[4], newcomers[17], newcomers[42]]
            send(*(left(chat, u, t1 + timedelta(seconds=1)) for u in leavers))

            # Questions: the first is answered, the second cools down, the third is 31 s on.
            q1 = said(chat, (5000001, "小红"), "请问群规在哪里？", t1)
            q2 = said(chat, (5000002, "阿杰"), "群 規 是什么", t1 + timedelta(seconds=1))
            chat_only = said(chat, (5000002, "阿杰"), "今天天气不错", t1 + timedelta(seconds=2))
            q3 = said(chat, (5000003, "莉莉"), "群规?", t1 + timedelta(seconds=31))
            send(q1, q2, chat_only, q3)

            def posts() -> list[Any]:
                return h.group("telegram", str(chat)).posts()

            def notes(cid: str) -> list[dict[str, Any]]:
                r = client.get(f"{base}/{cid}/notifications", headers=admin)
                return list(r.json()["notifications"])

            broadcasts_done = lambda: len(notes(broadcast)) == 2  # noqa: E731
            assert wait_until(lambda: len(posts()) == 5 and broadcasts_done(), timeout=60), [
                p.text for p in posts()
            ]
            r = client.post(f"{base}/{broadcast}/cancel", headers=admin)
            assert r.status_code == 200 and r.json()["status"] == "cancelled"
            # However late the clock, a cancelled broadcast has nothing more to post.
            with Session(engine) as session:
                later = t0 + timedelta(hours=1)
                effects = Effects(Topics.of(settings))
                assert advance(
                    session=session, campaign_id=broadcast, now=later, tz=settings.tz,
                    effects=effects,
                ) is None  # fmt: skip
            assert wait_until(
                lambda: all(n["delivery"] for c in (welcome, autoreply) for n in notes(c)),
                timeout=30,
            )
            listed = {c: notes(c) for c in (welcome, autoreply, broadcast)}

    by_text = {p.text: p for p in posts()}
    stayed = [u for u in newcomers if u not in leavers]
    greeting = (
        "欢迎 " + " ".join(f"@{name}" for _, name in stayed) + " 加入护肤交流群！共 47 位新朋友"
    )
    assert greeting in by_text, list(by_text)
    assert by_text[greeting].mentions == [str(uid) for uid, _ in stayed]
    assert "telegram:" not in greeting
    assert [n["kind"] for n in listed[welcome]] == ["welcome"]
    assert listed[welcome][0]["delivery"]["outcome"] == "delivered"

    replies = [p for p in posts() if p.text.endswith("群规见置顶～")]
    assert [(p.text, p.reply_to, p.mentions) for p in replies] == [
        ("@小红 群规见置顶～", str(q1["message"]["message_id"]), ["5000001"]),
        ("@莉莉 群规见置顶～", str(q3["message"]["message_id"]), ["5000003"]),
    ]
    assert [n["reply_to"] for n in listed[autoreply]] == [
        str(q1["message"]["message_id"]),
        str(q3["message"]["message_id"]),
    ]

    sent = [p for p in posts() if p.text.startswith("第")]
    assert [p.text for p in sent] == ["第一条：早安！", "第二条：今天聊防晒"]
    assert sent[0].at >= b1.timestamp() and sent[1].at >= b2.timestamp()
    assert [n["kind"] for n in listed[broadcast]] == ["broadcast", "broadcast"]
    assert all(n["source"] == SOURCE for n in listed[broadcast])
    assert len(posts()) == 5  # the welcome, two replies, two broadcasts: nothing else
