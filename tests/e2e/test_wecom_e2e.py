"""End to end on the platform double: a WeCom customer group, in and out.

In: a join through a join way with `state=渠道A`, encrypted by wechatpy, reaches ingest, is
enriched from the double's `groupchat/get`, and shows as the member's channel in metrics.
Out: a post to the group becomes an `add_msg_template` task at the double; a moderation
action is receipted `unsupported`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from services.common.auth import token_entry
from services.common.settings import QunyunConfig, write_config
from services.delivery.app import create_app as create_delivery
from services.ingest.app import create_app as create_ingest
from services.metrics.app import create_app as create_metrics
from tests.conftest import Tokens
from tests.delivery.conftest import action
from tests.platforms import wecom_samples as ws
from tests.support import auth, read_topic, wait_until
from tools.platform_double import DoubleConfig, DoubleHandle, start_double
from tools.platform_double.wecom import seed_group

SOURCE = "wecom-e2e"


@pytest.fixture(scope="module")
def double() -> Iterator[DoubleHandle]:
    handle = start_double(DoubleConfig(strict=True))
    yield handle
    handle.stop()


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory, double: DoubleHandle, tokens: Tokens) -> Path:
    source = ws.source(
        SOURCE,
        app_secret=double.state.config.wecom_secret,
        api_base=double.base_url,
        rate_per_second=1000.0,
    )
    api_tokens = [
        token_entry("admin", tokens.admin, ["*"], ["read", "write"]),
        token_entry("reader", tokens.reader, ["*"], ["read"]),
    ]
    path = tmp_path_factory.mktemp("wecom-e2e") / "qunyun.toml"
    return write_config(path, QunyunConfig(sources=[source], tokens=api_tokens))


def test_a_join_ways_state_becomes_the_members_channel(
    make_settings, run_app, config, double, tokens
):
    chat = "wr" + uuid.uuid4().hex
    seed_group(
        double.state,
        chat,
        owner="zhangsan",
        members=[{"userid": "wmAnn", "join_scene": 3, "state": "渠道A", "name": "安娜"}],
    )
    ingest_settings = make_settings(qunyun_config=str(config))
    metrics_settings = make_settings(share_with=ingest_settings, qunyun_config=str(config))
    xml = ws.change_xml(chat, "add_member", ["wmAnn"], join_scene=3)
    query, body = ws.encrypted_post(xml)
    group, headers = f"wecom:{chat}", auth(tokens.reader)
    with (
        run_app(create_ingest(ingest_settings)) as ingest,
        run_app(create_metrics(metrics_settings)) as metrics,
    ):
        answer = ingest.post(f"/v1/webhooks/{SOURCE}", params=query, content=body)
        assert (answer.status_code, answer.text) == (200, "success")

        def member() -> dict | None:
            found = metrics.get(f"/v1/groups/{group}/members/wecom:wmAnn", headers=headers)
            return found.json() if found.status_code == 200 else None

        seen = wait_until(member, timeout=45)
        assert seen and seen["channel"] == "渠道A", seen
        today = datetime.now(UTC).date()
        span = {"from": (today - timedelta(days=1)).isoformat(), "to": today.isoformat()}
        channels = metrics.get(f"/v1/groups/{group}/channels", params=span, headers=headers)
        assert [c["channel"] for c in channels.json()["channels"]] == ["渠道A"], channels.text


def test_posts_become_group_send_tasks_and_moderation_is_unsupported(
    make_settings, run_app, config, double, tokens, producer, unique
):
    chat = "wr" + uuid.uuid4().hex
    group = f"wecom:{chat}"
    seed_group(double.state, chat, owner="zhangsan", members=[{"userid": "wmSpam"}])
    settings = make_settings(
        qunyun_config=str(config),
        topic_delivery_receipts=unique("delivery.receipts.v1") + uuid.uuid4().hex[:6],
    )
    with run_app(create_delivery(settings)) as delivery:
        assert wait_until(lambda: delivery.get("/readyz").status_code == 200, timeout=30)
        posted = delivery.post(
            f"/v1/groups/{group}/messages",
            json={"text": "本周六线下沙龙，欢迎报名", "source": SOURCE},
            headers=auth(tokens.admin),
        )
        assert posted.status_code == 202, posted.text
        mute = action("mute", group, source=SOURCE, member_id="wecom:wmSpam", duration_seconds=600)
        producer.send(
            settings.topic_moderation_actions, key=group.encode(), value=json.dumps(mute).encode()
        ).get(timeout=30)
        found = read_topic(
            settings.kafka_bootstrap_servers, settings.topic_delivery_receipts, expect=2, timeout=45
        )
        receipts = {r["operation"]: r for r in (json.loads(f.value) for f in found)}
    assert receipts["post"]["outcome"] == "delivered", receipts
    assert "zhangsan confirms it" in receipts["post"]["detail"]
    assert receipts["mute"]["outcome"] == "unsupported"
    assert "客户群防骚扰" in receipts["mute"]["detail"]
    [send] = double.state.calls_of("wecom", "add_msg_template", chat)
    assert send.body["chat_id_list"] == [chat] and send.body["sender"] == "zhangsan"
    assert send.body["text"] == {"content": "本周六线下沙龙，欢迎报名"}
    assert [p.text for p in double.state.group("wecom", chat).posts()] == [
        "本周六线下沙龙，欢迎报名"
    ]
