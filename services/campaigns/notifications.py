"""The notifications a campaign sends to its group: kept in `campaigns_notification` (listed
with their delivery) and queued in the outbox in the same transaction, with a stable id."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session

from services.campaigns.directory import names_of, source_of
from services.campaigns.effects import Effects
from services.campaigns.models import Campaign, Notification
from services.campaigns.schemas import iso_duration
from services.campaigns.texts import (
    KIND_NAMES,
    Named,
    Post,
    chinese_duration,
    details,
    local_time,
    render,
    template_for,
)
from services.common.contracts.notifications import CampaignNotification
from services.common.db import new_id


def _values(campaign: Campaign, tz: ZoneInfo) -> dict[str, object]:
    """The placeholders every schedule notice may use."""
    return {
        "title": campaign.title,
        "kind": KIND_NAMES.get(campaign.kind, "活动"),
        "starts_at": local_time(campaign.starts_at, tz),
        "ends_at": local_time(campaign.ends_at, tz),
        "details": details(campaign.kind, campaign.params),
    }


def _template(campaign: Campaign, notification: str) -> str:
    return template_for(campaign.kind, notification, campaign.params.get("texts"))


def notify(
    *,
    session: Session,
    campaign: Campaign,
    kind: str,
    suffix: str,
    text: str,
    data: dict[str, Any],
    now: datetime,
    effects: Effects,
    mentions: list[str] | None = None,
    mention_names: dict[str, str] | None = None,
    reply_to: str | None = None,
) -> None:
    """Keep and queue a notification whose id is `<campaign id>:<kind>[:suffix]` (unique),
    posted through the source of the group's latest event. `mention_names` (member id →
    the display name `text` uses) goes out on the record; the kept row has it in `data`."""
    notification = CampaignNotification(
        id=f"{campaign.id}:{kind}" + (f":{suffix}" if suffix else ""),
        group_id=campaign.group_id,
        source=source_of(session=session, group_id=campaign.group_id),
        campaign_id=campaign.id,
        kind=kind,
        text=text,
        reply_to=reply_to,
        mentions=mentions or [],
        mention_names=mention_names or {},
        data={"campaign_kind": campaign.kind, "title": campaign.title, **data},
        created_at=now,
    )
    session.add(
        Notification(
            position=new_id(""),
            **notification.model_dump(exclude={"created_at", "mention_names"}),
            created_at=now,
        )
    )
    effects.notify(session, notification)


def post(
    *,
    session: Session,
    campaign: Campaign,
    kind: str,
    suffix: str,
    rendered: Post | None,
    data: dict[str, Any],
    now: datetime,
    effects: Effects,
    reply_to: str | None = None,
) -> bool:
    """Keep and queue a rendered post (nothing when its template is empty); tell whether
    it went out. Its mentions' names go into `data.mention_names` too."""
    if rendered is None:
        return False
    if rendered.mention_names:
        data = {**data, "mention_names": rendered.mention_names}
    notify(
        session=session,
        campaign=campaign,
        kind=kind,
        suffix=suffix,
        text=rendered.text,
        data=data,
        now=now,
        effects=effects,
        mentions=rendered.mentions,
        mention_names=rendered.mention_names,
        reply_to=reply_to,
    )
    return True


def announce(
    *, session: Session, campaign: Campaign, tz: ZoneInfo, now: datetime, effects: Effects
) -> None:
    """Queue the announcement of an upcoming campaign."""
    post(
        session=session,
        campaign=campaign,
        kind="announce",
        suffix="",
        rendered=render(_template(campaign, "announce"), _values(campaign, tz), {}),
        data={
            "starts_at": campaign.starts_at.isoformat(),
            "ends_at": campaign.ends_at.isoformat(),
            "params": campaign.params,
        },
        now=now,
        effects=effects,
    )


def remind(
    *,
    session: Session,
    campaign: Campaign,
    index: int,
    before: int,
    tz: ZoneInfo,
    now: datetime,
    effects: Effects,
) -> None:
    """Queue reminder number `index` (`before` seconds ahead of the start)."""
    values = {**_values(campaign, tz), "before": chinese_duration(before)}
    post(
        session=session,
        campaign=campaign,
        kind="reminder",
        suffix=str(index),
        rendered=render(_template(campaign, "reminder"), values, {}),
        data={
            "starts_at": campaign.starts_at.isoformat(),
            "before": iso_duration(timedelta(seconds=before)),
            "index": index,
        },
        now=now,
        effects=effects,
    )


def started(
    *,
    session: Session,
    campaign: Campaign,
    tz: ZoneInfo,
    now: datetime,
    effects: Effects,
    announced: bool = False,
) -> None:
    """Queue the start notice (a lottery's carries the SHA-256 of its seed). `announced`:
    the announcement was due at the start and this notice stands for it (one post)."""
    data: dict[str, Any] = {"ends_at": campaign.ends_at.isoformat()}
    if campaign.seed_sha256:
        data["seed_sha256"] = campaign.seed_sha256
    if announced:
        data.update(announced=True, starts_at=campaign.starts_at.isoformat())
        data["params"] = campaign.params
    template = _template(campaign, "started")
    if announced and not template:  # a quiet kind still makes its announcement
        template = _template(campaign, "announce")
    post(
        session=session,
        campaign=campaign,
        kind="started",
        suffix="",
        rendered=render(template, _values(campaign, tz), {}),
        data=data,
        now=now,
        effects=effects,
    )


def ended(
    *,
    session: Session,
    campaign: Campaign,
    participants: int,
    tz: ZoneInfo,
    now: datetime,
    effects: Effects,
) -> None:
    """Queue the end notice."""
    values = {**_values(campaign, tz), "participants": participants}
    post(
        session=session,
        campaign=campaign,
        kind="ended",
        suffix="",
        rendered=render(_template(campaign, "ended"), values, {}),
        data={"participants": participants},
        now=now,
        effects=effects,
    )


def winners(
    *,
    session: Session,
    campaign: Campaign,
    round: int,
    winners: list[dict[str, str]],
    eligible: list[str],
    now: datetime,
    effects: Effects,
) -> None:
    """Queue a draw's (or reroll's) result with the seed that proves it; the winners are
    named `@<display name>` and mentioned."""
    ids = [w["member_id"] for w in winners]
    known = names_of(session=session, group_id=campaign.group_id, member_ids=ids)

    def listed(named: Named) -> str:
        return "、".join(f"{named.label(w['member_id'])}（{w['prize']}）" for w in winners) or (
            "无人中奖"
        )

    rendered = render(
        _template(campaign, "winners"), {"title": campaign.title, "winners": listed}, known
    )
    post(
        session=session,
        campaign=campaign,
        kind="winners",
        suffix="" if round == 0 else str(round),
        rendered=rendered,
        data={
            "round": round,
            "seed": campaign.seed,
            "seed_sha256": campaign.seed_sha256,
            "algorithm": "hmac-sha256-rank-v1",
            "winners": winners,
            "eligible": eligible,
            "mention_names": known,
        },
        now=now,
        effects=effects,
    )
