"""The notifications a campaign sends to its group: kept in `campaigns_notification` (listed
with their delivery) and queued in the outbox in the same transaction, with a stable id."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session

from services.campaigns.directory import label, names_of, source_of
from services.campaigns.effects import Effects
from services.campaigns.models import Campaign, Notification
from services.campaigns.schemas import iso_duration
from services.common.contracts.notifications import CampaignNotification
from services.common.db import new_id

KIND_NAMES = {"checkin": "打卡", "lottery": "抽奖", "challenge": "挑战", "event": "活动"}


def _local(value: datetime, tz: ZoneInfo) -> str:
    return value.astimezone(tz).strftime("%Y-%m-%d %H:%M")


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


def announce(
    *, session: Session, campaign: Campaign, tz: ZoneInfo, now: datetime, effects: Effects
) -> None:
    """Queue the announcement of an upcoming campaign."""
    notify(
        session=session,
        campaign=campaign,
        kind="announce",
        suffix="",
        text=(
            f"【{KIND_NAMES[campaign.kind]}预告】{campaign.title}："
            f"{_local(campaign.starts_at, tz)} 开始，{_local(campaign.ends_at, tz)} 结束"
        ),
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
    notify(
        session=session,
        campaign=campaign,
        kind="reminder",
        suffix=str(index),
        text=f"【提醒】{campaign.title} 将于 {_local(campaign.starts_at, tz)} 开始",
        data={
            "starts_at": campaign.starts_at.isoformat(),
            "before": iso_duration(timedelta(seconds=before)),
            "index": index,
        },
        now=now,
        effects=effects,
    )


def started(
    *, session: Session, campaign: Campaign, tz: ZoneInfo, now: datetime, effects: Effects
) -> None:
    """Queue the start notice (a lottery's carries the SHA-256 of its seed)."""
    data: dict[str, Any] = {"ends_at": campaign.ends_at.isoformat()}
    if campaign.seed_sha256:
        data["seed_sha256"] = campaign.seed_sha256
    keyword = campaign.params.get("keyword") or campaign.params.get("entry_keyword")
    hint = f"，发送“{keyword}”参与" if keyword else ""
    notify(
        session=session,
        campaign=campaign,
        kind="started",
        suffix="",
        text=f"【开始】{campaign.title} 已开始{hint}，{_local(campaign.ends_at, tz)} 结束",
        data=data,
        now=now,
        effects=effects,
    )


def ended(
    *, session: Session, campaign: Campaign, participants: int, now: datetime, effects: Effects
) -> None:
    """Queue the end notice."""
    notify(
        session=session,
        campaign=campaign,
        kind="ended",
        suffix="",
        text=f"【结束】{campaign.title} 已结束，共 {participants} 人参与",
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
    named `@<display name>` (`@<member id>` when unknown) and mentioned."""
    ids = [w["member_id"] for w in winners]
    known = names_of(session=session, group_id=campaign.group_id, member_ids=ids)
    names = "、".join(f"{label(w['member_id'], known)}（{w['prize']}）" for w in winners)
    notify(
        session=session,
        campaign=campaign,
        kind="winners",
        suffix="" if round == 0 else str(round),
        text=f"【开奖】{campaign.title}：{names or '无人中奖'}",
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
        mentions=list(dict.fromkeys(ids)),
        mention_names=known,
    )
