"""autoreply (关键词自动回复): a message holding a trigger's keyword gets the trigger's reply,
as a reply to that message, at most once per `cooldown_seconds` per trigger and group.

Keywords match like moderation's: on the folded text (services/common/text.py), so
width, case, traditional characters and spacing or symbols between characters do not
matter. The cooldown is kept in the database (`campaigns_reply_cooldown`): a reply
claims its trigger with one conditional upsert that succeeds only when the message's
`occurred_at` reaches the trigger's `next_at`, in the transaction that queues the reply.
Two consumers racing on the same messages (a rebalance) or a redelivered batch find the
trigger claimed and answer nothing more; the reply's id (campaign, trigger, time) is
unique in the outbox besides.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlmodel import Session

from services.campaigns import notifications
from services.campaigns.directory import names_of
from services.campaigns.effects import Effects
from services.campaigns.models import Campaign, ReplyCooldown
from services.campaigns.params import AutoreplyParams
from services.campaigns.running import Running, running_for
from services.campaigns.store import dialect_insert
from services.campaigns.texts import Named, render
from services.common.contracts.events import Event, MessageCreated
from services.common.text import Text, fold


def triggered(folded_keywords: Sequence[Sequence[str]], text: str) -> list[int]:
    """The triggers (by index) one of whose folded keywords the message's text holds."""
    folded = Text(text).folded
    return [i for i, keywords in enumerate(folded_keywords) if any(k in folded for k in keywords)]


def _claim(
    session: Session, campaign_id: str, trigger: int, at: datetime, cooldown: timedelta
) -> bool:
    """Take the trigger's turn for a message at `at`; False while it is cooling down."""
    table = ReplyCooldown.__table__  # type: ignore[attr-defined]
    stmt = dialect_insert(session, ReplyCooldown)
    stmt = stmt.on_conflict_do_update(
        index_elements=["campaign_id", "trigger"],
        set_={"replied_at": stmt.excluded.replied_at, "next_at": stmt.excluded.next_at},
        where=table.c.next_at <= stmt.excluded.replied_at,
    ).returning(table.c.campaign_id)
    row = {
        "campaign_id": campaign_id,
        "trigger": trigger,
        "replied_at": at,
        "next_at": at + cooldown,
    }
    return session.exec(stmt, params=[row]).first() is not None


def answer(
    *,
    session: Session,
    events: Sequence[Event],
    now: datetime,
    effects: Effects,
    running: Running | None = None,
) -> int:
    """Reply to the batch's messages that hold a running auto-reply's trigger (cooldowns
    allowing); return how many replies were queued. `running`: the poll's campaigns
    (loaded here when not given)."""
    if running is not None and not running.of_kind("autoreply"):
        return 0  # the common case: no reading of the batch at all
    messages = [e for e in events if isinstance(e, MessageCreated) and e.data.text]
    if not messages:
        return 0
    if running is None:
        running = running_for(session=session, events=messages)
    campaigns = running.of_kind("autoreply")
    if not campaigns:
        return 0
    replies = 0
    for campaign in campaigns:
        params = AutoreplyParams.model_validate(campaign.params)
        keywords = [[fold(k) for k in t.keywords] for t in params.triggers]
        cooldown = timedelta(seconds=params.cooldown_seconds)
        mine = sorted(
            (
                m
                for m in messages
                if m.group_id == campaign.group_id
                and campaign.starts_at <= m.occurred_at < campaign.ends_at
            ),
            key=lambda m: (m.occurred_at, m.source, m.id),
        )
        asked: dict[int, list[MessageCreated]] = defaultdict(list)
        for m in mine:
            for trigger in triggered(keywords, m.data.text):
                asked[trigger].append(m)
        for trigger, candidates in sorted(asked.items()):
            free_from: datetime | None = None
            for m in candidates:
                if free_from is not None and m.occurred_at < free_from:
                    continue
                if not _claim(session, campaign.id, trigger, m.occurred_at, cooldown):
                    continue
                free_from = m.occurred_at + cooldown
                _reply(session, campaign, trigger, params.triggers[trigger].reply, m, now, effects)
                replies += 1
    return replies


def _reply(
    session: Session,
    campaign: Campaign,
    trigger: int,
    template: str,
    message: MessageCreated,
    now: datetime,
    effects: Effects,
) -> None:
    names = names_of(session=session, group_id=campaign.group_id, member_ids=[message.member_id])

    def member(named: Named) -> str:
        return named.label(message.member_id)

    notifications.post(
        session=session,
        campaign=campaign,
        kind="reply",
        suffix=f"{trigger}:{int(message.occurred_at.timestamp() * 1000)}",
        rendered=render(template, {"title": campaign.title, "member": member}, names),
        data={"trigger": trigger, "member_id": message.member_id, "event_id": message.id},
        now=now,
        effects=effects,
        reply_to=message.data.message_id,
    )
