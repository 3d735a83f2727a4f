"""The consumer's batch handler: each record becomes a row of the durable queue, once.

The consumer only writes: one transaction per poll inserts a row per record (unique on
`ref_id`, so a replay or redelivery inserts nothing), then the runner commits the offsets.
No platform call happens here, so a slow or rate-limited group never holds the consumer
or any other group; the dispatcher, woken after the commit, carries the rows out. A
record that does not decode raises, and the runner dead-letters it.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine
from sqlmodel import Session

from services.common.kafka.consumer import Record
from services.common.settings import QunyunConfig, Settings
from services.delivery.records import decode, new_row
from services.delivery.store import insert_new


def handle_records(
    records: list[Record],
    *,
    engine: Engine,
    settings: Settings,
    config: Callable[[], QunyunConfig],
    on_committed: Callable[[], None],
) -> None:
    """Queue one poll's records in one transaction, then wake the dispatcher.

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
    with Session(engine) as session:
        inserted = insert_new(session, rows)
        session.commit()
    if inserted:
        on_committed()
