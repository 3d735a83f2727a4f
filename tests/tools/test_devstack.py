"""`make run` (tools/devstack.py) on free ports: the printed commands work, `make demo`'s
delivery part runs against it, a stop loses nothing and logs no error, and the dev config
survives a deleted token file.

One stack serves the module (it takes ~25 s to start, so the demo shares it rather than
starting its own); the stop test stops it, so it runs after the others that use it.
"""

from __future__ import annotations

import html
import os
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from services.common.auth import hash_token
from services.common.settings import load_config
from tests.support import wait_until
from tools.demo import CHAT, DEMO_SOURCE, GROUPS, SPAMMER, Api, Timing, run_delivery_demo
from tools.devstack import DevStack, StopReport, banner, dev_config
from tools.localstack import free_port
from tools.platform_double import DoubleHandle, start_double
from tools.simulate import generate, send_webhook_batches
from tools.stack import HTTP, SERVICES

# Settings `make run` would take from the environment instead of starting its own servers.
OUTSIDE = ("KAFKA_BOOTSTRAP_SERVERS", "REDIS_URL", "DATABASE_URL", "QUNYUN_CONFIG", "PORT")


@pytest.fixture(scope="module")
def devstack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    env = {k: v for k, v in os.environ.items() if k not in OUTSIDE}
    lines: list[str] = []
    stack = DevStack(
        var=tmp_path_factory.mktemp("devstack") / "var",
        ports={name: free_port() for name in SERVICES},
        broker_port=free_port(),
        redis_port=free_port(),
        base_env=env,
        out=lines.append,
    )
    try:
        pending = stack.start()
        assert not pending, f"not ready: {pending}\n" + "\n".join(lines)
        yield stack
    finally:
        if stack.processes:
            stack.stop(drain_seconds=10)


def _run(shell: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", shell], capture_output=True, text=True, timeout=30)


def test_printed_commands_answer_2xx(devstack: DevStack) -> None:
    printed = "\n".join(banner(devstack))
    examples = devstack.commands()
    assert examples[0].shell.startswith("body=")  # the signed webhook comes first
    for example in examples:
        for line in example.shell.splitlines():
            if not line.startswith(("body=", "curl -sS --fail-with-body -X POST")):
                assert line in printed  # what is tested is what `make run` prints
        # --fail-with-body: a non-2xx answer exits non-zero. Metrics counts the event a
        # moment after ingest accepted it, so its read may be retried briefly.
        result = wait_until(lambda e=example: (r := _run(e.shell)).returncode == 0 and r, 20)
        assert result, f"{example.label}: {_run(example.shell)}"
        assert result.stdout.startswith("{")


# The demo with short campaign times (~15 s): the poll ends 6 s after the lottery, enough
# for its votes (sent before the campaigns start, 9 s before the lottery ends) to be counted.
FAST = Timing(reminder_before=2, starts_in=4, lasts=4, draw_delay=1, poll_grace=6)


@pytest.fixture(scope="module")
def double() -> Iterator[DoubleHandle]:
    """The platform double the demo's Telegram source calls; up until the stack is stopped."""
    handle = start_double()
    yield handle
    handle.stop()


def test_the_demo_deletes_the_ads_mutes_the_advertiser_and_posts_the_campaigns(
    devstack: DevStack, double: DoubleHandle
) -> None:
    """`make demo`'s delivery part against the started stack and a platform double on a
    free port: the Telegram source is added to the dev config and reloaded, the ads are
    deleted, the advertiser muted, the campaigns' posts made at the double."""
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
    page = HTTP.get(double.base_url + "/", timeout=10).text
    assert f"<del>{html.escape(spam[0])}</del>" in page
    assert api.problems == []


def _messages_counted(stack: DevStack, group: str, days: int) -> int:
    today = datetime.now(UTC).date()
    answer = HTTP.get(
        f"http://127.0.0.1:{stack.ports['metrics']}/v1/groups/{group}/activity",
        params={"from": str(today - timedelta(days=days + 1)), "to": str(today + timedelta(1))},
        headers={"Authorization": f"Bearer {stack.token}"},
        timeout=10,
    )
    answer.raise_for_status()
    return sum(day["messages"] for day in answer.json()["days"])


def _unexplained(errors: dict[str, list[str]]) -> dict[str, list[str]]:
    # Every error line counts: kafka-python's close races are kept out of the log by the
    # services themselves (services/common/resources.py close_resources).
    return {name: lines for name, lines in errors.items() if lines}


def test_stop_with_events_in_flight_loses_none_and_logs_no_error(devstack: DevStack) -> None:
    group, days = "inflight", 2
    source = devstack.generic_source()
    assert source is not None
    events = list(
        generate(
            seed=5,
            group_ids=[group],
            members=300,
            days=days,
            start=datetime.now(UTC) - timedelta(days=days),
            source=source[0],
            messages_per_member=8,
            id_prefix="inflight",
        )
    )
    messages = sum(e["type"] == "message.created" for e in events)
    stats = send_webhook_batches(
        url=f"http://127.0.0.1:{devstack.ports['ingest']}",
        source_id=source[0],
        secret=source[1],
        events=events,
        batch_size=1000,
    )
    assert stats["accepted"] == len(events)
    counted: list[int] = []
    seen: dict[str, str] = {}

    def on_drained() -> None:
        counted.append(_messages_counted(devstack, group, days))
        for name in ("metrics", "moderation", "campaigns"):  # for a failure's message
            url = f"http://127.0.0.1:{devstack.ports[name]}/metrics"
            text = HTTP.get(url, timeout=10).text.splitlines()
            seen[name] = "\n".join(line for line in text if line.startswith("qunyun_consumer"))

    # Stop at once: the consumers still hold a backlog; the stop waits for them.
    report: StopReport = devstack.stop(on_drained=on_drained)
    assert report.caught_up, f"{report.lag}\n" + "\n".join(f"{n}:\n{t}" for n, t in seen.items())
    assert set(report.lag) == {"metrics", "moderation", "campaigns", "delivery"}
    assert counted == [messages]
    assert _unexplained(report.errors) == {}
    logs = sorted(p.name for p in devstack.log_dir.glob("*.log"))
    assert logs == sorted([*(f"{n}.log" for n in SERVICES), "broker.log", "redis.log"])


def test_deleting_the_token_file_keeps_an_edited_config(tmp_path: Path) -> None:
    config, token_file = tmp_path / "dev-config.toml", tmp_path / "dev-token"
    first, _ = dev_config(config, token_file)
    secret = load_config(config).sources[0].secret
    ops = "b" * 64
    edited = (
        "# my notes: keep these\n"
        + config.read_text().replace(secret, "my-own-secret-1234")
        + f'\n[[tokens]]\nname = "ops"\nsha256 = "{ops}"  # the dashboard\n'
    )
    config.write_text(edited)
    token_file.unlink()
    second, note = dev_config(config, token_file)
    assert second and second != first
    assert "nothing else changed" in note
    assert config.read_text().startswith(edited.rstrip("\n"))  # every edit kept, entry appended
    loaded = load_config(config)
    assert loaded.sources[0].secret == "my-own-secret-1234"
    hashes = [t.sha256 for t in loaded.tokens]
    assert hashes == [hash_token(first), ops, hash_token(second)]
    assert token_file.read_text().strip() == second
    assert dev_config(config, token_file) == (second, "")  # both there: nothing changes


def test_a_config_in_another_layout_keeps_its_entries(tmp_path: Path) -> None:
    config, token_file = tmp_path / "dev-config.toml", tmp_path / "dev-token"
    inline = '# mine\ntokens = [{name = "ops", sha256 = "' + "a" * 64 + '"}]\n'
    config.write_text(inline)
    token, note = dev_config(config, token_file)
    assert token and ".bak" in note
    assert [t.name for t in load_config(config).tokens][0] == "ops"
    assert hash_token(token) in {t.sha256 for t in load_config(config).tokens}
    assert (tmp_path / "dev-config.toml.bak").read_text() == inline


def test_a_config_that_does_not_load_is_left_alone(tmp_path: Path) -> None:
    config, token_file = tmp_path / "dev-config.toml", tmp_path / "dev-token"
    config.write_text("not = [toml\n")
    token, note = dev_config(config, token_file)
    assert token is None and "make token" in note
    assert config.read_text() == "not = [toml\n"
    assert not token_file.exists()
