"""Every operation on every platform: a record on the topic → the double's group → a receipt."""

from __future__ import annotations

from tests.delivery.conftest import action, chat_number, notification
from tests.support import wait_until


# platform → (source, group id, chat at the double, member id, member at the double)
def targets() -> dict[str, tuple[str, str, str, str, str]]:
    n = chat_number()
    return {
        "telegram": ("tg", f"telegram:-{n}", f"-{n}", "telegram:42", "42"),
        "slack": ("sl", f"slack:T01:C{n}", f"C{n}", "slack:T01:U03", "U03"),
        "feishu": ("fs", f"feishu:oc_{n}", f"oc_{n}", "feishu:ou_1", "ou_1"),
        "onebot": ("qq", f"qq:{n}", str(n), "qq:10001", "10001"),
        "wecom": ("wc", f"wecom:wr{n}", f"wr{n}", "wecom:wmA{n}", f"wmA{n}"),
    }


EXPECTED = {
    "telegram": {op: "delivered" for op in
                 ("delete", "mute", "unmute", "kick", "ban", "unban", "approve_join",
                  "decline_join")},
    "slack": {"delete": "delivered", "mute": "unsupported", "unmute": "unsupported",
              "kick": "delivered", "ban": "delivered", "unban": "unsupported",
              "approve_join": "unsupported", "decline_join": "unsupported"},
    "feishu": {"delete": "delivered", "mute": "unsupported", "unmute": "unsupported",
               "kick": "delivered", "ban": "delivered", "unban": "unsupported",
               "approve_join": "unsupported", "decline_join": "unsupported"},
    "onebot": {"delete": "delivered", "mute": "delivered", "unmute": "delivered",
               "kick": "delivered", "ban": "delivered", "unban": "unsupported",
               "approve_join": "delivered", "decline_join": "delivered"},
    # WeCom customer groups: no API enforces anything (the group's own 防骚扰 rules do) and
    # there are no join requests; posts are group-send tasks (below).
    "wecom": {op: "unsupported" for op in
              ("delete", "mute", "unmute", "kick", "ban", "unban", "approve_join",
               "decline_join")},
}  # fmt: skip


def records_for(h, platform: str, source: str, group_id: str, chat: str, member: str, user: str):
    """One record per operation (each in its own group, so order never matters here)."""
    state = h.double.state
    message = state.seed_message(platform, chat, user, "buy now").id
    refs = {user: f"{chat}:{user}" if platform == "telegram" else f"f-{chat}-{user}"
            for user in ("7", "8")}  # fmt: skip
    for user, ref in refs.items():
        state.flags[ref] = (chat, user)
    state.group(platform, chat).join_requests.update({"7": "pending", "8": "pending"})
    fields = {
        "delete": {"message_id": message},
        "mute": {"duration_seconds": 600},
        "approve_join": {"request_ref": refs["7"]},
        "decline_join": {"request_ref": refs["8"]},
    }
    return {
        op: action(op, group_id, source=source, member_id=member, **fields.get(op, {}))
        for op in EXPECTED[platform]
    }


def test_every_operation_on_every_platform(delivery):
    with delivery() as h:
        sent: dict[str, tuple[str, str]] = {}
        chats: dict[str, str] = {}
        for platform, (source, group_id, chat, member, user) in targets().items():
            chats[platform] = chat
            records = records_for(h, platform, source, group_id, chat, member, user)
            post = notification(group_id, "明天 8 点讲座", source=source)
            h.actions(*records.values())
            h.notifications(post)
            sent.update({r["id"]: (platform, op) for op, r in records.items()})
            sent[post["id"]] = (platform, "post")
        receipts = h.receipt_map(len(sent))
        assert set(receipts) == set(sent)
        for ref_id, (platform, op) in sent.items():
            receipt = receipts[ref_id]
            want = "delivered" if op == "post" else EXPECTED[platform][op]
            assert (receipt["operation"], receipt["outcome"]) == (op, want), (platform, receipt)
            assert receipt["platform"] == platform and receipt["attempts"] == 1
        # The calls made: none for an unsupported operation; WeCom's post is one group-send
        # task (after the owner's lookup), shown at the double as the group's post.
        state = h.double.state
        wecom_chat = chats["wecom"]
        assert {c.method for c in state.calls_of("wecom") if c.method != "gettoken"} == {
            "groupchat/get",
            "add_msg_template",
        }
        assert [c.body["chat_id_list"] for c in state.calls_of("wecom", "add_msg_template")] == [
            [wecom_chat]
        ]
        assert [p.text for p in state.group("wecom", wecom_chat).posts()] == ["明天 8 点讲座"]


def test_effects_reach_the_groups(delivery):
    """The double's groups look as the operations say: message gone, member muted, post made."""
    with delivery() as h:
        n = chat_number()
        chat, group_id = f"-{n}", f"telegram:-{n}"
        ad = h.double.state.seed_message("telegram", chat, "42", "加微信").id
        h.actions(
            action("delete", group_id, source="tg", member_id="telegram:42", message_id=ad),
            action("mute", group_id, source="tg", member_id="telegram:42", duration_seconds=600,
                   message_id=ad, text="@telegram:42 已被禁言", mentions=["telegram:42"]),
            action("ban", group_id, source="tg", member_id="telegram:77"),
        )  # fmt: skip
        h.notifications(notification(group_id, "reminder", source="tg"))
        receipts = h.receipts(4)
        assert {r["outcome"] for r in receipts} == {"delivered"}
        group = h.group("telegram", chat)
        assert group.messages[ad].deleted
        assert group.muted("42") and "77" in group.banned
        # Two topics: no order between the action's notice and the campaign's reminder.
        posts = {p.text: p for p in group.posts()}
        assert set(posts) == {"@telegram:42 已被禁言", "reminder"}
        assert posts["@telegram:42 已被禁言"].reply_to == ad


def test_warn_posts_its_text_and_flag_is_recorded(delivery):
    with delivery() as h:
        n = chat_number()
        group_id = f"qq:{n}"
        warn = action("warn", group_id, source="qq", member_id="qq:10001", text="第 1 次警告",
                      mentions=["qq:10001"])  # fmt: skip
        flag = action("flag", group_id, source="qq", member_id="qq:10001")
        quiet = action("warn", group_id, source="qq", member_id="qq:10001")
        h.actions(warn, flag, quiet)
        receipts = h.receipt_map(3)
        assert receipts[warn["id"]]["outcome"] == "delivered"
        assert receipts[warn["id"]]["platform_message_id"]
        assert receipts[flag["id"]]["outcome"] == "recorded"
        assert receipts[quiet["id"]]["outcome"] == "recorded"
        posts = wait_until(lambda: h.group("onebot", str(n)).posts())
        assert len(posts) == 1 and posts[0].mentions == ["10001"]
