"""poll, feedback and invite end to end: Telegram webhook updates through ingest, campaigns
(with a moderation action on moderation.actions.v1) and delivery, to the posts the fake
Telegram groups at the platform double show. Each expected result is worked out by hand:

- poll "下次分享选哪个？" (护肤 / 彩妆 / 穿搭): alice votes 1, then 投票２ (full-width: her
  vote becomes 2); bob votes 3; carol votes 4 (out of range: no vote); dave votes 2 but is
  muted by moderation during the poll (not eligible); erin only talks about voting. So
  护肤 0, 彩妆 1, 穿搭 1, 2 voters — posted once as the results.
- feedback (#反馈, categories bug/idea, 20 points): three tagged messages become items (bug,
  idea, none), a chat message does not; an operator sets carol's category, a category not
  in the list is a 422 naming it, and alice's item accepted three times grants 20 once.
- invite (10 points, retained 4 s): X invites u1 and u2, u1 leaves at once; u3 joins by
  link; Y invites u4, who is invited again by X later (counted once, for Y). X earns 10
  for u2, Y 10 for u4, nobody anything for u1 or u3.
"""

from __future__ import annotations

import itertools
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import Session

from services.campaigns.app import create_app
from services.campaigns.directory import source_of
from services.ingest.app import create_app as create_ingest
from tests.campaigns.helpers import TG_SOURCE as SOURCE
from tests.campaigns.helpers import post_updates, read_group, wait_until
from tests.conftest import auth
from tests.delivery.conftest import (  # noqa: F401 - the delivery harness's fixtures
    action,
    chat_number,
    clean_double,
    delivery,
    delivery_config,
    double,
)
from tools.platform_double.telegram_updates import member_joined, member_left

_updates = itertools.count(int(time.time() * 1000) % 10**9 * 1000 + 500)

ALICE, BOB, CAROL, DAVE, ERIN = (
    (7101, "阿丽"),
    (7102, "小波"),
    (7103, "卡萝"),
    (7104, "大卫"),
    (7105, "艾琳"),
)
X, Y, U1, U2, U3, U4 = (
    (7201, "老王"),
    (7202, "老李"),
    (7301, "新人一"),
    (7302, "新人二"),
    (7303, "新人三"),
    (7304, "新人四"),
)


def _user(user: tuple[int, str]) -> dict[str, Any]:
    return {"id": user[0], "is_bot": False, "first_name": user[1]}


def _update(chat: int, at: datetime, sender: tuple[int, str], **message: Any) -> dict[str, Any]:
    update_id = next(_updates)
    body = {"message_id": update_id % 10**9, "date": int(at.timestamp()), "from": _user(sender)}
    chat_info = {"id": chat, "type": "supergroup", "title": "护肤交流群"}
    return {"update_id": update_id, "message": {**body, "chat": chat_info, **message}}


def said(chat: int, user: tuple[int, str], text: str, at: datetime) -> dict[str, Any]:
    return _update(chat, at, user, text=text)


def invited(
    chat: int, inviter: tuple[int, str], user: tuple[int, str], at: datetime
) -> dict[str, Any]:
    date, by = int(at.timestamp()), _user(inviter)  # inviter == user: joined by link
    return member_joined(update_id=next(_updates), chat=chat, user=_user(user), date=date, by=by)


def left(chat: int, user: tuple[int, str], at: datetime) -> dict[str, Any]:
    date = int(at.timestamp())
    return member_left(update_id=next(_updates), chat=chat, user=_user(user), date=date)


def member(user: tuple[int, str]) -> str:
    return f"telegram:{user[0]}"


def test_poll_feedback_and_invite_from_webhooks_to_the_double(
    delivery,  # noqa: F811
    delivery_config,  # noqa: F811
    make_settings,
    engine,
    run_app,
    tokens,
):
    admin = auth(tokens.admin)
    poll_chat, feedback_chat, invite_chat = (-chat_number() for _ in range(3))
    poll_group, feedback_group, invite_group = (
        f"telegram:{c}" for c in (poll_chat, feedback_chat, invite_chat)
    )
    with delivery() as h:
        settings = make_settings(
            share_with=h.settings,
            topic_delivery_receipts=h.settings.topic_delivery_receipts,
            qunyun_config=str(delivery_config),
        )
        with run_app(create_ingest(settings)) as ingest, run_app(create_app(settings)) as client:

            def send(*updates: dict[str, Any]) -> None:
                post_updates(ingest, *updates)

            def create(group: str, body: dict[str, Any]) -> str:
                r = client.post(f"/v1/groups/{group}/campaigns", json=body, headers=admin)
                assert r.status_code == 201, r.text
                return str(r.json()["id"])

            def sourced(group: str) -> bool:
                with Session(engine) as session:
                    return source_of(session=session, group_id=group) == SOURCE

            t0 = datetime.now(UTC).replace(microsecond=0)
            # Each group's source (where its posts go) is known from its first event.
            send(*(said(c, ERIN, "大家好", t0) for c in (poll_chat, feedback_chat, invite_chat)))
            assert wait_until(lambda: all(sourced(g) for g in (poll_group, feedback_group)))
            assert wait_until(lambda: sourced(invite_group))

            poll = create(
                poll_group,
                {"kind": "poll", "title": "周五主题投票",
                 "starts_at": (t0 - timedelta(seconds=5)).isoformat(),
                 "ends_at": (t0 + timedelta(seconds=8)).isoformat(),
                 "params": {"question": "下次分享选哪个？", "options": ["护肤", "彩妆", "穿搭"],
                            "results_delay_seconds": 1}},
            )  # fmt: skip
            later = {
                "starts_at": (t0 - timedelta(seconds=60)).isoformat(),
                "ends_at": (t0 + timedelta(minutes=10)).isoformat(),
            }
            box = create(
                feedback_group,
                {**later, "kind": "feedback", "title": "产品反馈",
                 "params": {"tag": "#反馈", "categories": ["bug", "idea"],
                            "points_accepted": 20}},
            )  # fmt: skip
            invite = create(
                invite_group,
                {**later, "kind": "invite", "title": "老带新",
                 "params": {"points_per_invitee": 10, "retain_days": 4 / 86400}},
            )  # fmt: skip

            # The invitees' times are taken now: an invitee is settled 4 s (retain_days) + 3 s
            # (SETTLE_LAG) after joining, and a join and its leave must both be consumed by then
            # (under load the set-up above can take longer than that after t0).
            t1 = datetime.now(UTC).replace(microsecond=0)
            send(
                said(poll_chat, ALICE, "投票 1", t0),
                said(poll_chat, BOB, "投票 3", t0),
                said(poll_chat, CAROL, "投票 4", t0),
                said(poll_chat, DAVE, "投票 2", t0),
                said(poll_chat, ERIN, "我觉得投票很有意思", t0),
                said(poll_chat, ALICE, "投票２", t0 + timedelta(seconds=1)),
                said(feedback_chat, ALICE, "#反馈 bug 登录后头像不显示", t0),
                said(feedback_chat, BOB, "＃反馈 idea：加个夜间模式", t0),
                said(feedback_chat, CAROL, "#反馈 页面有点慢", t0),
                said(feedback_chat, DAVE, "今天的分享很棒", t0),
                invited(invite_chat, X, U1, t1),
                invited(invite_chat, X, U2, t1),
                left(invite_chat, U1, t1),
                said(invite_chat, U3, "我自己进来的", t1),
                invited(invite_chat, U3, U3, t1),  # by link: no inviter
                invited(invite_chat, Y, U4, t1),
                left(invite_chat, U4, t1 + timedelta(seconds=5)),  # after 4 s: still counted
                invited(invite_chat, X, U4, t1 + timedelta(seconds=6)),  # a re-join: nothing
            )
            # Moderation mutes dave during the poll (what moderation publishes).
            mute = action(
                "mute", poll_group, source=None, member_id=member(DAVE), duration_seconds=600
            )
            h.send(settings.topic_moderation_actions, [mute])

            poll_base = f"/v1/groups/{poll_group}/campaigns/{poll}"

            def live() -> dict[str, Any]:
                return dict(client.get(f"{poll_base}/results", headers=admin).json())

            # alice's replaced vote and dave's exclusion show while the poll runs.
            assert wait_until(lambda: live()["voters"] == 2 and live()["options"][1]["votes"] == 1)

            # --- feedback: the inbox, triage, one grant however often it is accepted.
            fb_base = f"/v1/groups/{feedback_group}/campaigns/{box}/feedback"

            def inbox(**query: Any) -> list[dict[str, Any]]:
                r = client.get(fb_base, params=query, headers=admin)
                assert r.status_code == 200, r.text
                return list(r.json()["feedback"])

            assert wait_until(lambda: len(inbox()) == 3)
            items = {i["member_id"]: i for i in inbox()}
            assert {m: (i["category"], i["status"], i["text"]) for m, i in items.items()} == {
                member(ALICE): ("bug", "new", "#反馈 bug 登录后头像不显示"),
                member(BOB): ("idea", "new", "＃反馈 idea：加个夜间模式"),
                member(CAROL): (None, "new", "#反馈 页面有点慢"),
            }
            carol_item = items[member(CAROL)]["id"]
            r = client.patch(f"{fb_base}/{carol_item}", json={"category": "nope"}, headers=admin)
            assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "category"]
            r = client.patch(f"{fb_base}/{carol_item}", json={"category": "BUG"}, headers=admin)
            assert r.status_code == 200 and r.json()["category"] == "bug", r.text
            alice_item = items[member(ALICE)]["id"]
            for _ in range(3):
                r = client.patch(
                    f"{fb_base}/{alice_item}", json={"status": "accepted"}, headers=admin
                )
                assert r.status_code == 200 and r.json()["status"] == "accepted", r.text
            assert [i["id"] for i in inbox(status="accepted")] == [alice_item]
            assert client.patch(f"{fb_base}/nope", json={}, headers=admin).status_code == 404

            # --- the poll's results, posted once and delivered at the double.
            def posted(chat: int) -> list[str]:
                return [p.text for p in h.group("telegram", str(chat)).posts()]

            results_text = "\n".join(
                [
                    "【投票结果】周五主题投票：下次分享选哪个？",
                    "1. 护肤 — 0 票",
                    "2. 彩妆 — 1 票",
                    "3. 穿搭 — 1 票",
                    "共 2 人投票",
                ]
            )
            assert wait_until(lambda: results_text in posted(poll_chat), timeout=40)

            def notes(base: str) -> list[dict[str, Any]]:
                return list(
                    client.get(f"{base}/notifications", headers=admin).json()["notifications"]
                )

            assert wait_until(lambda: all(n["delivery"] for n in notes(poll_base)))
            poll_notes = notes(poll_base)
            final = live()

            # --- invites: grants for the retained invitees only.
            grants = read_group(
                settings.kafka_bootstrap_servers,
                settings.topic_campaign_rewards,
                invite_group,
                expect=2,
                timeout=40,
                settle=2,
            )
            invite_base = f"/v1/groups/{invite_group}/campaigns/{invite}"
            inviters = client.get(f"{invite_base}/participants", headers=admin).json()
            feedback_grants = read_group(
                settings.kafka_bootstrap_servers,
                settings.topic_campaign_rewards,
                feedback_group,
                expect=1,
                settle=1,
            )
            alice_rewards = client.get(
                f"/v1/groups/{feedback_group}/members/{member(ALICE)}/rewards", headers=admin
            ).json()
            # Votes after the results are out change nothing.
            send(said(poll_chat, ERIN, "投票 1", datetime.now(UTC)))
            time.sleep(1)
            assert live() == final

    assert final == {
        "question": "下次分享选哪个？",
        "options": [
            {"option": 1, "text": "护肤", "votes": 0},
            {"option": 2, "text": "彩妆", "votes": 1},
            {"option": 3, "text": "穿搭", "votes": 1},
        ],
        "voters": 2,
    }
    assert [n["kind"] for n in poll_notes] == ["started", "ended", "results"]
    assert {n["delivery"]["outcome"] for n in poll_notes} == {"delivered"}
    assert posted(poll_chat) == [n["text"] for n in poll_notes]
    assert posted(poll_chat).count(results_text) == 1
    started = poll_notes[0]["text"]
    assert "问题：下次分享选哪个？\n1. 护肤\n2. 彩妆\n3. 穿搭" in started
    assert "投票 1" in started
    assert {k: poll_notes[2]["data"][k] for k in final} == final

    assert sorted((g["member_id"], g["reason"], g["points"]) for g in grants) == [
        (member(X), f"invitee:{member(U2)}", 10),
        (member(Y), f"invitee:{member(U4)}", 10),
    ]
    assert {p["member_id"]: p["count"] for p in inviters["participants"]} == {
        member(X): 2,
        member(Y): 1,
    }
    assert [(g["member_id"], g["reason"], g["points"]) for g in feedback_grants] == [
        (member(ALICE), f"feedback:{alice_item}", 20)
    ]
    assert alice_rewards["points"] == 20
    assert json.dumps(posted(invite_chat), ensure_ascii=False).count("邀请人得 10 积分") == 1
