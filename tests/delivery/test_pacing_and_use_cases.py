"""The Redis token buckets, and the use cases behind the REST API (retry, messages, lists)."""

from __future__ import annotations

import uuid

import pytest
from sqlmodel import Session

from services.common.errors import Conflict
from services.common.redis_client import make_redis
from services.delivery.deliveries import NoSource, list_deliveries, post_message, retry_delivery
from services.delivery.pacing import Pacer, Rates, group_keys
from tests.delivery.conftest import action, chat_number


def test_buckets_space_posts_and_pauses_hold_everyone(redis_url, redis_cluster):
    pacer = Pacer(make_redis(redis_url, cluster=redis_cluster))
    source, group = uuid.uuid4().hex, "telegram:-1"
    rates = Rates(per_second=100.0, per_group_per_minute=60.0)
    assert pacer.acquire(source=source, group_id=group, rates=rates, post=True) == 0
    wait = pacer.acquire(source=source, group_id=group, rates=rates, post=True)
    assert 0.9 <= wait <= 1.0
    assert pacer.acquire(source=source, group_id=group, rates=rates, post=False) == 0
    pacer.pause(source=source, group_id=None, seconds=5)
    assert 4 < pacer.acquire(source=source, group_id="telegram:-2", rates=rates, post=False) <= 5


def test_an_empty_source_bucket_refunds_the_group_token(redis_url, redis_cluster):
    client = make_redis(redis_url, cluster=redis_cluster)
    pacer = Pacer(client)
    source = uuid.uuid4().hex
    rates = Rates(per_second=1.0, per_group_per_minute=60.0)
    assert pacer.acquire(source=source, group_id="g1", rates=rates, post=True) == 0
    assert pacer.acquire(source=source, group_id="g2", rates=rates, post=True) > 0
    # g2's group token came back: only the source bucket holds g2.
    assert float(client.hget(group_keys(source, "g2")[0], "tokens") or 0) == 1.0


def test_retry_messages_and_lists(delivery):
    with delivery() as h:
        group_id = f"telegram:-{chat_number()}"
        h.actions(action("ban", group_id, source="tg-bare", member_id="telegram:5"))
        [receipt] = h.receipts(1)
        assert receipt["outcome"] == "no_route"
        engine = h.client.app.state.resources.engine
        config = h.client.app.state.resources.config
        with Session(engine) as session:
            [row], cursor = list_deliveries(session, group_id=group_id)
            assert cursor is None and row.outcome == "no_route"
            retry_delivery(session, group_id=group_id, delivery_id=row.id)
            session.commit()
        h.client.app.state.resources.state.dispatcher.wake()
        receipts = h.receipts(2)
        assert [r["attempts"] for r in receipts] == [1, 2]  # counting on
        with Session(engine) as session:
            with pytest.raises(NoSource):
                post_message(session, config=config, group_id="telegram:-3", text="x")
            message_id = post_message(
                session, config=config, group_id=group_id, text="hi", source="tg"
            )
            session.commit()
        h.client.app.state.resources.state.dispatcher.wake()
        latest = h.receipt_map(3)
        assert latest[message_id]["outcome"] == "delivered"
        with Session(engine) as session:
            done = next(
                d for d in list_deliveries(session, group_id=group_id)[0] if d.ref_id == message_id
            )
            with pytest.raises(Conflict):
                retry_delivery(session, group_id=group_id, delivery_id=done.id)
