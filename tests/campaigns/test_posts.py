"""Posts fit to post, on a controllable clock: an event's reminder and start notice in the
group's timezone with the zone shown, its place, link and attendance keyword in each, an
announcement due at the start merged into the start notice; templates overridden per
campaign; welcome batches and broadcast posts made once however often the scheduler runs;
422s naming the field for bad templates and broadcast times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from services.campaigns.app import create_app
from services.campaigns.directory import record_directory
from services.campaigns.effects import Effects, Topics
from services.campaigns.models import Notification
from services.campaigns.planning import create_campaign
from services.campaigns.scheduler import advance
from services.campaigns.schemas import CampaignCreate
from services.campaigns.welcome import greet_due, record_joins
from services.common.contracts.events import Event
from tests.campaigns.helpers import campaign_body, joined
from tests.conftest import auth

STARTS = datetime(2030, 1, 15, 12, 0, tzinfo=UTC)  # 20:00 in Beijing
HOUR = timedelta(hours=1)


def _create(engine: Any, group: str, body: dict[str, Any]) -> str:
    with Session(engine) as session:
        cid = create_campaign(
            session=session,
            group_id=group,
            body=CampaignCreate.model_validate(body),
            now=datetime.now(UTC),
        ).id
        session.commit()
    return cid


def _run(engine: Any, settings: Any, cid: str, now: datetime) -> None:
    with Session(engine) as session:
        advance(
            session=session,
            campaign_id=cid,
            now=now,
            tz=settings.tz,
            effects=Effects(Topics.of(settings)),
        )
        session.commit()


def _posted(engine: Any, cid: str) -> list[tuple[str, str]]:
    with Session(engine) as session:
        rows = session.exec(
            select(Notification)
            .where(col(Notification.campaign_id) == cid)
            .order_by(col(Notification.position))
        ).all()
    return [(n.kind, n.text) for n in rows]


def test_an_event_is_announced_in_local_time_with_its_place_link_and_keyword(
    make_settings, engine, unique
):
    settings = make_settings(qunyun_timezone="Asia/Shanghai")
    group = unique("g-posts-event")
    body = {
        "kind": "event",
        "title": "周五讲座",
        "starts_at": STARTS.isoformat(),
        "ends_at": (STARTS + 2 * HOUR).isoformat(),
        "announce_at": STARTS.isoformat(),  # at the start: one post, not two
        "reminders": ["PT1H"],
        "params": {
            "location": "静安区 XX 路 1 号",
            "url": "https://meet.example.com/j/42",
            "attendance_keyword": "到",
        },
    }
    cid = _create(engine, group, body)
    for now in (STARTS - HOUR, STARTS, STARTS, STARTS + 2 * HOUR, STARTS + 3 * HOUR):
        _run(engine, settings, cid, now)
    place = "\n地点：静安区 XX 路 1 号\n链接：https://meet.example.com/j/42\n签到：发送“到”"
    assert _posted(engine, cid) == [
        (
            "reminder",
            "【提醒】周五讲座 将于 2030-01-15 20:00 (Asia/Shanghai, UTC+8) 开始（还有 1 小时）"
            + place,
        ),
        (
            "started",
            "【开始】周五讲座 已开始，2030-01-15 22:00 (Asia/Shanghai, UTC+8) 结束" + place,
        ),
        ("ended", "【结束】周五讲座 已结束，共 0 人参与"),
    ]


def test_templates_are_overridden_per_campaign(make_settings, engine, unique):
    settings = make_settings()  # UTC
    group = unique("g-posts-texts")
    body = {
        "kind": "checkin",
        "title": "早起打卡",
        "starts_at": STARTS.isoformat(),
        "ends_at": (STARTS + 24 * HOUR).isoformat(),
        "announce_at": (STARTS - 24 * HOUR).isoformat(),
        "params": {
            "keyword": "早",
            "texts": {"announce": "📣 {title}：{starts_at} 开始{details}", "ended": ""},
        },
    }
    cid = _create(engine, group, body)
    for now in (STARTS - 24 * HOUR, STARTS, STARTS + 24 * HOUR):
        _run(engine, settings, cid, now)
    assert _posted(engine, cid) == [
        ("announce", "📣 早起打卡：2030-01-15 12:00 (UTC) 开始\n参与：发送“早”打卡"),
        ("started", "【开始】早起打卡 已开始，2030-01-16 12:00 (UTC) 结束\n参与：发送“早”打卡"),
    ]  # and no end notice: its template is empty


def test_quiet_kinds_post_only_their_own_posts_each_once(make_settings, engine, unique):
    settings = make_settings()
    group = unique("g-posts-quiet")
    at = [STARTS + timedelta(minutes=m) for m in (30, 10, 10)]
    messages = [{"at": t.isoformat(), "text": f"#{i}"} for i, t in enumerate(at)]
    broadcast = _create(
        engine,
        group,
        {"kind": "broadcast", "title": "SOP", "starts_at": STARTS.isoformat(),
         "ends_at": (STARTS + HOUR).isoformat(), "params": {"messages": messages}},
    )  # fmt: skip
    welcome = _create(
        engine,
        group,
        {"kind": "welcome", "title": "欢迎", "starts_at": STARTS.isoformat(),
         "ends_at": (STARTS + HOUR).isoformat(), "params": {"batch_seconds": 60}},
    )  # fmt: skip
    joins: list[Event] = [
        joined(group, "m1", STARTS + timedelta(seconds=1), display_name="小明"),
        joined(group, "m2", STARTS + timedelta(seconds=50), display_name="Anna"),
        joined(group, "m3", STARTS + timedelta(seconds=61)),  # the next batch, name unknown
    ]
    with Session(engine) as session:
        record_directory(session=session, events=joins)
        record_joins(session=session, events=joins)
        record_joins(session=session, events=joins)  # redelivered: nothing more
        session.commit()
    # The clock runs past everything, twice: each post is made once.
    for now in (STARTS, STARTS + timedelta(minutes=10), STARTS + 2 * HOUR, STARTS + 3 * HOUR):
        _run(engine, settings, broadcast, now)
        with Session(engine) as session:
            greet_due(
                session=session, campaign_id=welcome, now=now, effects=Effects(Topics.of(settings))
            )
            session.commit()
    assert _posted(engine, broadcast) == [
        ("broadcast", "#1"),
        ("broadcast", "#2"),
        ("broadcast", "#0"),
    ]
    assert _posted(engine, welcome) == [
        ("welcome", "欢迎 @小明 @Anna 加入！"),
        ("welcome", "欢迎 @群友 加入！"),
    ]


def test_bad_templates_and_broadcast_times_are_422_naming_the_field(
    settings, run_app, tokens, unique
):
    group = unique("g-posts-422")
    url = f"/v1/groups/{group}/campaigns"
    admin = auth(tokens.admin)

    def loc(body: dict[str, Any]) -> list[Any]:
        r = client.post(url, json=body, headers=admin)
        assert r.status_code == 422, r.text
        return [e["loc"] for e in r.json()["detail"]]

    with run_app(create_app(settings)) as client:
        texts = {"texts": {"announce": "{title} 在 {place}"}}
        assert loc(campaign_body("event", start_in=60, end_in=120, params=texts)) == [
            ["body", "params", "texts", "announce"]
        ]
        welcome = {"text": "欢迎 {member}"}
        assert loc(campaign_body("welcome", start_in=60, end_in=120, params=welcome)) == [
            ["body", "params", "text"]
        ]
        reply = {"triggers": [{"keywords": ["群规"], "reply": "{name} 看置顶"}]}
        assert loc(campaign_body("autoreply", start_in=60, end_in=120, params=reply)) == [
            ["body", "params", "triggers", 0, "reply"]
        ]
        now = datetime.now(UTC)
        inside, outside = (now + timedelta(seconds=s) for s in (90, 130))
        messages = [
            {"at": inside.isoformat(), "text": "a"},
            {"at": outside.isoformat(), "text": "b"},
        ]
        body = campaign_body("broadcast", start_in=60, end_in=120, params={"messages": messages})
        r = client.post(url, json=body, headers=admin)
        assert r.status_code == 422
        [error] = r.json()["detail"]
        assert error["loc"] == ["body", "params", "messages", 1, "at"]
        assert "window" in error["msg"]
        body["params"]["messages"] = messages[:1]
        created = client.post(url, json=body, headers=admin)
        assert created.status_code == 201, created.text
        # Moving the window away from a message is refused the same way.
        r = client.patch(
            f"{url}/{created.json()['id']}",
            json={"starts_at": (now + timedelta(seconds=100)).isoformat()},
            headers=admin,
        )
        assert r.status_code == 422
        assert r.json()["detail"][0]["loc"] == ["body", "params", "messages", 0, "at"]
