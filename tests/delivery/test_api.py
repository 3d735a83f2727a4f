"""The delivery REST API: list, retry (after the operator fixed the bot's rights), messages."""

from __future__ import annotations

from tests.delivery.conftest import action, chat_number, notification
from tests.support import auth, wait_until
from tools.platform_double import Fault

FIELDS = {
    "id", "ref_id", "ref_topic", "group_id", "source", "platform", "operation", "outcome",
    "detail", "attempts", "created_at", "updated_at",
}  # fmt: skip


def test_list_filters_and_pages(delivery, tokens):
    with delivery() as h:
        chat = f"-{chat_number()}"
        group_id = f"telegram:{chat}"
        ban = action("ban", group_id, source="tg", member_id="telegram:5")
        flag = action("flag", group_id, source="tg", member_id="telegram:6")
        post = notification(group_id, "lecture at 8", source="tg")
        h.actions(ban, flag)
        h.notifications(post)
        assert len(h.receipts(3)) == 3
        url, headers = f"/v1/groups/{group_id}/deliveries", auth(tokens.reader)
        page = h.client.get(url, headers=headers).json()
        assert page["next_cursor"] is None
        assert [set(d) for d in page["deliveries"]] == [FIELDS] * 3
        outcomes = {d["ref_id"]: (d["operation"], d["outcome"]) for d in page["deliveries"]}
        assert outcomes == {
            ban["id"]: ("ban", "delivered"),
            flag["id"]: ("flag", "recorded"),
            post["id"]: ("post", "delivered"),
        }
        recorded = h.client.get(url, params={"outcome": "recorded"}, headers=headers).json()
        assert [d["ref_id"] for d in recorded["deliveries"]] == [flag["id"]]
        one = h.client.get(url, params={"ref_id": ban["id"]}, headers=headers).json()
        assert [(d["source"], d["platform"], d["attempts"]) for d in one["deliveries"]] == [
            ("tg", "telegram", 1)
        ]
        first = h.client.get(url, params={"limit": 2}, headers=headers).json()
        rest = h.client.get(
            url, params={"limit": 2, "cursor": first["next_cursor"]}, headers=headers
        ).json()
        ids = [d["id"] for d in first["deliveries"] + rest["deliveries"]]
        assert ids == [d["id"] for d in page["deliveries"]] and rest["next_cursor"] is None
        assert h.client.get(url).status_code == 401
        bad = h.client.get(url, params={"outcome": "lost", "limit": 0}, headers=headers)
        assert bad.status_code == 422


def test_retry_after_the_bot_got_its_rights(delivery, tokens):
    """A permanent 403 ends `forbidden`; once the fault is gone a retry delivers it."""
    with delivery() as h:
        chat = f"-{chat_number()}"
        group_id = f"telegram:{chat}"
        h.double.state.add_fault(
            Fault("telegram", "forbidden", chat=chat, method="banChatMember", times=-1)
        )
        record = action("ban", group_id, source="tg", member_id="telegram:77")
        h.actions(record)
        [receipt] = h.receipts(1)
        assert (receipt["outcome"], receipt["attempts"]) == ("forbidden", 1)
        url = f"/v1/groups/{group_id}/deliveries"
        [row] = h.client.get(
            url, params={"outcome": "forbidden"}, headers=auth(tokens.admin)
        ).json()["deliveries"]
        retry = f"{url}/{row['id']}/retry"
        assert h.client.post(retry, headers=auth(tokens.reader)).status_code == 403
        with h.double.state.lock:
            h.double.state.faults.clear()  # the operator made the bot an admin
        answer = h.client.post(retry, headers=auth(tokens.admin))
        assert answer.status_code == 202, answer.text
        assert answer.json()["id"] == row["id"] and answer.json()["outcome"] is None
        receipts = h.receipts(2)
        assert [(r["ref_id"], r["outcome"], r["attempts"]) for r in receipts] == [
            (record["id"], "forbidden", 1),
            (record["id"], "delivered", 2),
        ]
        assert "77" in h.group("telegram", chat).banned
        again = h.client.post(retry, headers=auth(tokens.admin))
        assert again.status_code == 409 and "delivered" in again.json()["detail"]
        unknown = h.client.post(f"{url}/dl_nope/retry", headers=auth(tokens.admin))
        assert unknown.status_code == 404
        other = f"/v1/groups/telegram:-1/deliveries/{row['id']}/retry"
        assert h.client.post(other, headers=auth(tokens.admin)).status_code == 404


def test_a_retry_queues_behind_the_post_in_flight_and_the_ones_waiting(delivery, tokens):
    """A retried post goes to the back of its group's queue: it is not carried out beside
    the group's post in flight (the double stalls that call 2 s), nor before those queued."""
    with delivery() as h:
        chat = f"-{chat_number()}"
        group_id = f"telegram:{chat}"
        h.double.state.add_fault(Fault("telegram", "forbidden", chat=chat, method="sendMessage"))
        first = notification(group_id, "m0", source="tg")
        h.notifications(first)
        assert [r["outcome"] for r in h.receipts(1)] == ["forbidden"]
        h.double.state.add_fault(Fault("telegram", "timeout", chat=chat, sleep=2.0))
        h.notifications(*[notification(group_id, f"m{i}", source="tg") for i in (1, 2)])
        assert wait_until(lambda: len(h.double.state.calls_of("telegram", chat=chat)) == 2)
        url = f"/v1/groups/{group_id}/deliveries"
        [row] = h.client.get(
            url, params={"ref_id": first["id"]}, headers=auth(tokens.admin)
        ).json()["deliveries"]
        answer = h.client.post(f"{url}/{row['id']}/retry", headers=auth(tokens.admin))
        assert answer.status_code == 202, answer.text
        assert len(h.receipts(4)) == 4
        assert [p.text for p in h.group("telegram", chat).posts()] == ["m1", "m2", "m0"]
        stalled, *after = h.double.state.calls_of("telegram", chat=chat)[1:]
        assert all(call.at >= stalled.at + 2.0 for call in after), (stalled, after)


def test_retry_of_no_route_once_the_source_is_named(delivery, tokens):
    """A record without credentials ends no_route; a retry counts attempts on (409 while
    the source still lacks them would be wrong: the retry is accepted and ends no_route)."""
    with delivery() as h:
        group_id = f"telegram:-{chat_number()}"
        h.actions(action("kick", group_id, source="tg-bare", member_id="telegram:8"))
        [receipt] = h.receipts(1)
        assert receipt["outcome"] == "no_route" and "missing bot_token" in receipt["detail"]
        url = f"/v1/groups/{group_id}/deliveries"
        [row] = h.client.get(url, headers=auth(tokens.admin)).json()["deliveries"]
        assert row["outcome"] == "no_route" and row["detail"] == receipt["detail"]
        answer = h.client.post(f"{url}/{row['id']}/retry", headers=auth(tokens.admin))
        assert answer.status_code == 202
        assert [r["attempts"] for r in h.receipts(2)] == [1, 2]


def test_messages_are_posted_and_receipted(delivery, tokens):
    with delivery() as h:
        chat = f"-{chat_number()}"
        group_id = f"telegram:{chat}"
        url, headers = f"/v1/groups/{group_id}/messages", auth(tokens.admin)
        unknown = h.client.post(url, json={"text": "hi"}, headers=headers)
        assert unknown.status_code == 422 and "no source known" in unknown.json()["detail"]
        named = h.client.post(url, json={"text": "hi", "source": "tg"}, headers=headers)
        assert named.status_code == 202, named.text
        first = named.json()["id"]
        assert h.receipt_map(1)[first]["outcome"] == "delivered"
        # Without a source: the one of the latest record delivery carried for the group.
        h.double.state.seed_message("telegram", chat, "9", text="q?", id="4242")
        reply = {"text": "answer", "reply_to": "4242"}
        second = h.client.post(url, json=reply, headers=headers).json()["id"]
        latest = h.receipt_map(2)
        assert (latest[second]["source"], latest[second]["outcome"]) == ("tg", "delivered")
        posts = h.group("telegram", chat).posts()
        assert [(p.text, p.reply_to) for p in posts] == [("hi", None), ("answer", "4242")]
        listed = h.client.get(
            f"/v1/groups/{group_id}/deliveries", params={"ref_id": second}, headers=headers
        ).json()["deliveries"]
        assert [(d["operation"], d["ref_topic"]) for d in listed] == [("post", "delivery.messages")]


def test_bad_messages_are_422_and_never_posted(delivery, tokens):
    with delivery() as h:
        group_id = f"telegram:-{chat_number()}"
        url, headers = f"/v1/groups/{group_id}/messages", auth(tokens.admin)
        bodies = [
            {"text": ""},
            {"text": "  \n "},
            {"text": "x" * 4097, "source": "tg"},
            {"text": "hi", "source": "nope"},
            {"text": "hi", "source": "sl"},  # a Slack source cannot post in a Telegram group
            {"text": "hi", "source": "tg", "extra": 1},
            {"text": "hi", "reply_to": "", "source": "tg"},
            {"source": "tg"},
        ]
        for body in bodies:
            answer = h.client.post(url, json=body, headers=headers)
            assert answer.status_code == 422, (body, answer.text)
        assert "unknown source 'nope'" in h.client.post(url, json=bodies[3], headers=headers).text
        assert h.client.post(url, content=b"\xff", headers=headers).status_code in (400, 422)
        assert (
            h.client.post(url, json={"text": "hi"}, headers=auth(tokens.reader)).status_code == 403
        )
        assert h.double.state.calls == []


def test_every_route_is_documented(delivery):
    with delivery() as h:
        paths = h.client.get("/openapi.json").json()["paths"]
        routes = [
            (p, m, op) for p, ops in paths.items() if p.startswith("/v1/") for m, op in ops.items()
        ]
        assert {(p, m) for p, m, _ in routes} == {
            ("/v1/groups/{group_id}/deliveries", "get"),
            ("/v1/groups/{group_id}/deliveries/{delivery_id}/retry", "post"),
            ("/v1/groups/{group_id}/messages", "post"),
        }
        for _, _, op in routes:
            assert op.get("summary") and op.get("description")
        retry = paths["/v1/groups/{group_id}/deliveries/{delivery_id}/retry"]["post"]
        assert {"202", "404", "409"} <= set(retry["responses"])
