"""The consumer's batch handler: each record becomes a row of the durable queue, once.

The consumer writes: one transaction per poll inserts a row per record (unique on
`ref_id`, so a replay or redelivery inserts nothing), then the runner commits the offsets.
No platform call happens here, so a slow or rate-limited group never holds the consumer
or any other group. A record whose group has nothing unfinished is inserted already
claimed (`store.insert_claiming`: in flight, attempt counted, lease set, in the same
transaction) while the dispatcher has room, and handed to it after the commit: it is
carried out without a claim round trip or a wake-up. The dispatcher, woken after the
commit, claims the rest. A record that does not decode raises, and the runner
dead-letters it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Protocol

from sqlalchemy import Engine

from services.common.kafka.consumer import Record
from services.common.settings import QunyunConfig, Settings
from services.delivery.records import decode, new_row
from services.delivery.store import Claim, insert_claiming


class Taker(Protocol):
    """The dispatcher as the consumer sees it: room for claims, and where to hand them."""

    def reserve(self, wanted: int) -> int: ...

    def hand(self, claims: list[Claim], reserved: int) -> None: ...

    def wake(self) -> None: ...


def handle_records(
    records: list[Record],
    *,
    engine: Engine,
    settings: Settings,
    config: Callable[[], QunyunConfig],
    dispatcher: Taker,
) -> None:
    """Queue one poll's records in one transaction, then hand over the claimed ones.

    `config` returns the current QUNYUN_CONFIG (it reloads without a restart).
    """
    current = config()
    rows = [
        new_row(
            payload=decode(r.topic, r.value, settings).model_dump(mode="json"),
            ref_topic=r.topic,
            config=current,
        )
        for r in records
    ]
    room = dispatcher.reserve(len(rows))
    try:
        with engine.begin() as connection:  # Core: ≈ 0.3 ms less than a Session per poll
            inserted, claims = insert_claiming(
                connection,
                rows,
                room=room,
                lease=timedelta(seconds=settings.delivery_lease_seconds),
            )
    except BaseException:
        dispatcher.hand([], room)
        raise
    dispatcher.hand(claims, room)
    if inserted > len(claims):
        dispatcher.wake()
