"""`make demo`'s delivery part against a started `make run` stack (tools/devstack.py) and a
platform double on a free port: the Telegram source is added to the dev config and reloaded,
the ads are deleted, the advertiser muted, the campaigns' posts made at the double.

The stack takes ~25 s to start; the demo runs with short campaign times (~15 s).
"""

from __future__ import annotations

import html
from collections.abc import Iterator

import httpx
import pytest

from services.common.settings import load_config
from tests.tools.test_devstack import devstack  # noqa: F401 - the started stack (module scope)
from tools.demo import (
    CHAT,
    DEMO_SOURCE,
    GROUPS,
    SPAMMER,
    Api,
    Timing,
    run_delivery_demo,
)
from tools.devstack import DevStack
from tools.platform_double import DoubleHandle, start_double

FAST = Timing(reminder_before=2, starts_in=4, lasts=4, draw_delay=1)


@pytest.fixture
def double() -> Iterator[DoubleHandle]:
    handle = start_double()
    yield handle
    handle.stop()


def test_the_demo_deletes_the_ads_mutes_the_advertiser_and_posts_the_campaigns(
    devstack: DevStack,  # noqa: F811
    double: DoubleHandle,
) -> None:
    assert devstack.token
    config = devstack.var / "dev-config.toml"
    before = {s.id for s in load_config(config).sources}
    api = Api(host="http://127.0.0.1", token=devstack.token, ports=devstack.ports)
    lines: list[str] = []
    done = run_delivery_demo(
        api,
        config_path=config,
        double_url=double.base_url,
        timing=FAST,
        rate_per_group_per_minute=600,
        out=lines.append,
    )
    printed = "\n".join(lines)
    assert done, f"{printed}\n{api.problems}"
    source = load_config(config).source(DEMO_SOURCE)
    assert source is not None and source.api_base == double.base_url
    assert {s.id for s in load_config(config).sources} == before | {DEMO_SOURCE}
    spam = [text for member, text in CHAT if member == SPAMMER]
    for group in GROUPS:
        fake = double.state.group("telegram", str(group.chat))
        deleted = {m.text for m in fake.messages.values() if m.deleted}
        assert deleted == set(spam)  # both ads (every rule deletes what it judges); nothing else
        assert fake.muted(str(SPAMMER.id))  # the keyword ad (rule 广告词 mutes)
        posts = [m.text for m in fake.posts()]
        assert any(p.startswith(f"@{SPAMMER.name} 因 广告词 被禁言 10 分钟") for p in posts)
        title = "线上护肤分享会" if group.campaign == "event" else "周末抽奖"
        assert sum(title in p for p in posts) >= 4, posts  # announce, reminder, start, end
        assert f"{double.base_url}/" in printed
    welcoming = [m.text for m in double.state.group("telegram", str(GROUPS[0].chat)).posts()]
    assert "欢迎 @小雨 @Mia @晓峰 加入！请先看置顶的群规～" in welcoming, welcoming
    assert "@小雨 群规：不发广告、不刷屏，详见置顶～" in welcoming
    assert {"早安！今天的话题：冬季护肤", "分享会开始啦，欢迎大家提问～"} <= set(welcoming)
    reading = [m.text for m in double.state.group("telegram", str(GROUPS[1].chat)).posts()]
    [results] = [p for p in reading if p.startswith("【投票结果】下期共读投票")]
    # 小红 voted 1 then 3 (the later vote counts), 阿杰 ２ (full-width), 莉莉 2.
    votes = "\n1. 《百年孤独》 — 0 票\n2. 《三体》 — 2 票\n3. 《活着》 — 1 票\n共 3 人投票"
    assert results.endswith("：下个月读哪本？" + votes), printed
    assert "阿杰's points for inviting: 20" in printed  # both members he added stayed
    assert "[bug] #反馈 bug 签到后积分没到账" in printed
    assert "ads deleted: 2 of 2" in printed
    page = httpx.get(double.base_url + "/", timeout=10).text
    assert f"<del>{html.escape(spam[0])}</del>" in page
    assert api.problems == []
