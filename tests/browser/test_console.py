"""The operator console in a real Chromium, against `make run`'s stack filled by the simulator.

One stack serves the module (tests/browser/console_stack.py: ~35 s to start and fill); each
test opens its own browser context, so its token lives in that context's sessionStorage
only. Every page a test visits must log no JavaScript error: the only console errors
allowed are the browser's own "Failed to load resource" lines for the 4xx a test provokes
on purpose. Screenshots of each page go to test-artifacts/console/.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.browser.console_stack import (
    GROUPS,
    TELEGRAM_CHAT,
    TELEGRAM_GROUP,
    ConsoleStack,
    message,
    start_console_stack,
)
from tests.browser.test_docs_render import OFFLINE, chromium
from tests.support import auth, wait_until
from tools.platform_double import DoubleHandle, Fault, start_double

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "console"
# The machine is shared (2 cores, many processes): give a page longer than the default 5 s.
expect.set_options(timeout=15_000)
ZONE = ZoneInfo("Asia/Shanghai")
G0, G1, G2 = GROUPS


@pytest.fixture(scope="module")
def double() -> Iterator[DoubleHandle]:
    handle = start_double()
    yield handle
    handle.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, double: DoubleHandle) -> Iterator[ConsoleStack]:
    running = start_console_stack(tmp_path_factory.mktemp("console") / "var", double)
    yield running
    running.devstack.stop(drain_seconds=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    binary = chromium()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=binary,
            # Playwright adds the quiet-start flags itself (no background networking, sync…);
            # OFFLINE leaves only loopback reachable: nothing may come from a CDN.
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", *OFFLINE],
        )
        yield launched
        launched.close()


@dataclass
class Console:
    """One browser context on the console, with what its pages logged."""

    page: Page
    base: str
    errors: list[str] = field(default_factory=list)

    def login(self, token: str) -> None:
        self.page.goto(self.base + "/#/login")
        self.page.get_by_label("访问令牌").fill(token)
        self.page.get_by_role("button", name="登录").click()
        expect(self.page.get_by_role("heading", name="群概览")).to_be_visible()

    def open(self, route: str) -> None:
        self.page.goto(f"{self.base}/{route}")

    def group(self, group: str, tab: str = "analytics") -> None:
        self.open(f"#/g/{group.replace(':', '%3A')}/{tab}")

    def shot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=path, full_page=True)
        return path

    def edit_controls(self) -> int:
        return self.page.locator("[data-edit]").count()

    def assert_clean(self, *allowed_statuses: int) -> None:
        """No JavaScript error; network errors only for the statuses the test provoked."""
        allowed = tuple(f"status of {s} " for s in allowed_statuses)
        unexpected = [
            e
            for e in self.errors
            if not (e.startswith("console: Failed to load") and any(a in e for a in allowed))
        ]
        assert unexpected == [], unexpected


@pytest.fixture
def console(browser: Browser, stack: ConsoleStack) -> Iterator[Console]:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    page = context.new_page()
    page.set_default_timeout(15000)
    opened = Console(page, stack.console_url)
    page.on("console", lambda m: m.type == "error" and opened.errors.append(f"console: {m.text}"))
    page.on("pageerror", lambda e: opened.errors.append(f"pageerror: {e}"))
    page.on("dialog", lambda dialog: dialog.accept())
    yield opened
    context.close()


def api(stack: ConsoleStack, service: str, path: str, token: str | None = None) -> dict:
    answer = httpx.get(stack.url(service) + path, headers=auth(token or stack.admin), timeout=10)
    answer.raise_for_status()
    return answer.json()


def chart_total(page: Page, label: str) -> float:
    chart = page.get_by_role("img", name=label)
    expect(chart.locator("canvas").first).to_be_visible()
    return float(chart.get_attribute("data-total") or 0)


def test_a_wrong_token_gets_a_clear_message_and_the_keyboard_logs_in(
    console: Console, stack: ConsoleStack
) -> None:
    page = console.page
    console.open("")
    expect(page.get_by_role("heading", name="登录 qunyun 群运控制台")).to_be_visible()
    page.get_by_label("访问令牌").fill("qy_not_a_token")
    page.keyboard.press("Enter")
    expect(page.get_by_role("alert")).to_contain_text("令牌无效")
    console.shot("login-wrong-token")
    assert page.evaluate("sessionStorage.getItem('qunyun.token')") is None
    field_ = page.get_by_label("访问令牌")
    field_.fill("")
    page.keyboard.press("Tab")  # focus leaves the field for the login button
    field_.focus()
    page.keyboard.type(stack.admin)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="群概览")).to_be_visible()
    assert stack.admin not in (page.url + page.content())  # never in the URL or the page
    console.assert_clean(401)


def test_overview_lists_every_group_sortable_searchable_and_in_english(
    console: Console, stack: ConsoleStack
) -> None:
    page = console.page
    console.login(stack.admin)
    table = page.get_by_role("region", name="群概览")
    rows = table.locator("tbody tr")
    expect(rows).to_have_count(4)
    expected = {g["group_id"]: g for g in api(stack, "metrics", "/v1/overview")["groups"]}
    assert set(expected) == {*GROUPS, TELEGRAM_GROUP}
    first = rows.first.locator("td")
    top = max(expected.values(), key=lambda g: (g["members"], g["group_id"]))
    expect(first.nth(0)).to_have_text(top["group_id"])
    expect(first.nth(1)).to_have_text(str(top["members"]))
    console.shot("overview")
    table.get_by_role("button", name="7 天消息").click()  # sort by messages, most first
    busiest = max(expected.values(), key=lambda g: g["messages_7d"])
    expect(rows.first.locator("td").nth(0)).to_have_text(busiest["group_id"])
    expect(table.locator("th[aria-sort=descending]")).to_contain_text("7 天消息")
    page.get_by_label("搜索群").fill("g1")
    expect(rows).to_have_count(1)
    page.get_by_role("button", name="English").click()
    expect(page.get_by_role("heading", name="Your groups")).to_be_visible()
    expect(page.get_by_label("Search groups")).to_be_visible()
    page.get_by_role("button", name="中文").click()
    page.get_by_role("link", name=G1).click()
    expect(page.get_by_role("heading", name=G1)).to_be_visible()
    console.assert_clean()


def test_the_group_page_draws_its_charts_and_tables(console: Console, stack: ConsoleStack) -> None:
    page = console.page
    console.login(stack.admin)
    console.group(G0)
    expect(page.get_by_text("时区：Asia/Shanghai")).to_be_visible()
    assert chart_total(page, "每日活跃") > 0
    assert chart_total(page, "新成员留存（同期群）") > 0
    assert chart_total(page, "成员生命周期") > 0
    expect(page.locator("[data-kpi=mau]")).not_to_have_text("0")
    for section in ("#channels", "#inviters", "#leaderboard", "#dormant"):
        expect(page.locator(f"{section} tbody tr").first).to_be_visible()
    leader = api(stack, "metrics", f"/v1/groups/{G0}/leaderboard?days=30&limit=10")["members"][0]
    board = page.locator("#leaderboard tbody tr").first
    expect(board).to_contain_text(leader["display_name"] or leader["member_id"])
    expect(board).to_contain_text(str(leader["messages"]))
    console.shot("group")
    retention = page.locator("#retention")
    retention.get_by_label("同期群", exact=True).select_option("week")
    retention.get_by_label("口径", exact=True).select_option("unbounded")
    wait_until(lambda: chart_total(page, "新成员留存（同期群）") > 0, timeout=10)
    console.assert_clean()


def test_the_pages_keep_to_the_content_security_policy(
    console: Console, stack: ConsoleStack
) -> None:
    """The console is served with its strict policy and nothing on it breaks the policy: the
    import map, the modules, the calls to the five APIs, charts and their tooltips."""
    page = console.page
    page.add_init_script(
        "window.__violations = [];"
        "document.addEventListener('securitypolicyviolation', e =>"
        " window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));"
    )
    document = page.goto(stack.console_url + "/#/login")
    assert document is not None
    policy = document.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src 'self' 'sha256-" in policy
    assert document.headers["referrer-policy"] == "no-referrer"
    console.login(stack.admin)
    console.group(G0)
    chart = page.get_by_role("img", name="每日活跃")
    expect(chart.locator("canvas").first).to_be_visible()
    box = chart.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    expect(chart.locator("div").filter(has_text=re.compile(r"\d")).last).to_be_visible()
    console.group(G0, "moderation")
    expect(page.get_by_role("heading").first).to_be_visible()
    assert page.evaluate("window.__violations") == []
    console.assert_clean()


def test_a_cleanup_is_previewed_started_and_shows_progress(
    console: Console, stack: ConsoleStack
) -> None:
    page = console.page
    console.login(stack.admin)
    console.group(G2)
    cleanup = page.locator(".cleanup")
    cleanup.get_by_label("沉默天数").fill("14")
    cleanup.get_by_label("每分钟最多移出").fill("120")
    cleanup.get_by_label("只清理从未发言的成员").check()
    cleanup.get_by_role("button", name="预览名单").click()
    expect(cleanup.locator("[data-cleanup-status=preview]")).to_be_visible()
    start = cleanup.get_by_role("button", name=re.compile(r"开始清理（\d+ 人）"))
    count = int(re.search(r"\d+", start.inner_text()).group())
    assert count > 0
    console.shot("cleanup-preview")
    start.click()
    expect(
        cleanup.locator("[data-cleanup-status=running], [data-cleanup-status=done]")
    ).to_be_visible()
    expect(cleanup).to_contain_text(re.compile(rf"已移出 [1-9]\d* / {count}"), timeout=20000)
    # Another tab (its own sessionStorage) finds the clean-up in moderation's list.
    other = Console(page.context.new_page(), stack.console_url)
    other.page.on("pageerror", lambda e: console.errors.append(f"pageerror: {e}"))
    other.login(stack.admin)
    other.group(G2)
    found = other.page.locator(".cleanup")
    expect(found.locator(".cleanup-state")).to_contain_text(
        re.compile(rf"已移出 [1-9]\d* / {count}")
    )
    expect(found.get_by_role("region", name="最近的清理")).to_contain_text(str(count))
    cleanup.get_by_role("button", name="停止清理").or_(
        cleanup.get_by_role("button", name="关闭")
    ).first.click()
    console.assert_clean()


def test_a_keyword_rule_catches_evasion_in_the_test_box_and_422s_show_by_the_field(
    console: Console, stack: ConsoleStack
) -> None:
    page = console.page
    console.login(stack.admin)
    console.group(G0, "moderation")
    page.get_by_role("button", name="新建规则").click()
    editor = page.locator("#rule-editor")
    editor.get_by_label("名称").fill("禁止加微信")
    editor.get_by_label("关键词", exact=True).fill("加微信\n代购")
    editor.get_by_label("处理", exact=True).select_option("warn")
    editor.get_by_role("button", name="保存").click()
    rules = page.locator("#rules")
    expect(rules.locator("tbody tr")).to_contain_text("禁止加微信")
    (rule,) = api(stack, "moderation", f"/v1/groups/{G0}/rules")["rules"]
    assert rule["params"]["keywords"] == ["加微信", "代购"] and rule["action"] == "warn"
    box = page.locator("#rules-test")
    box.get_by_label("消息内容").fill("有需要的 加 微 信 详聊")
    box.get_by_role("button", name="测试").click()
    result = box.locator(".test-result")
    expect(result).to_have_attribute("data-test-action", "warn")
    expect(result.locator(f"[data-rule-id='{rule['id']}']")).to_contain_text("加 微 信")
    console.shot("moderation-rules")
    page.get_by_role("button", name="新建规则").click()
    editor.get_by_label("名称").fill("坏正则")
    editor.get_by_label("类型", exact=True).select_option("regex")
    editor.get_by_label("正则表达式", exact=True).fill("([")
    editor.get_by_role("button", name="保存").click()
    pattern = editor.locator(".field.has-error")
    expect(pattern).to_contain_text("正则表达式")
    expect(pattern.locator(".field-error")).to_contain_text("pattern does not compile")
    console.assert_clean(422)


def test_an_operator_reverses_a_case(console: Console, stack: ConsoleStack) -> None:
    page = console.page
    member = f"{G0}:u00007"
    httpx.post(
        f"{stack.url('moderation')}/v1/groups/{G0}/rules",
        headers=auth(stack.admin),
        json={
            "name": "代购广告",
            "kind": "keywords",
            "params": {"keywords": ["代购"]},
            "action": "warn",
        },
        timeout=10,
    ).raise_for_status()
    stack.send([message(G0, member, "专业代购 加我")])
    wait_until(
        lambda: api(stack, "moderation", f"/v1/groups/{G0}/cases?member_id={member}")["cases"],
        timeout=20,
    )
    console.login(stack.admin)
    console.group(G0, "moderation")
    cases = page.locator("#cases")
    cases.get_by_label("成员").fill(member)
    cases.get_by_role("button", name="筛选").click()
    row = cases.locator("tbody tr", has_text="代购广告").first
    expect(row).to_contain_text("警告")
    row.get_by_role("button", name="撤销").click()
    form = page.locator("#reverse-form")
    form.get_by_label("原因").fill("误判：是在问正品渠道")
    form.get_by_role("button", name="确认撤销").click()
    expect(cases.locator("tbody tr", has_text="代购广告").first).to_contain_text("已撤销")
    expect(cases).to_contain_text("误判：是在问正品渠道")
    console.shot("moderation-cases")
    reversed_ = api(stack, "moderation", f"/v1/groups/{G0}/cases?member_id={member}")["cases"]
    assert [c["reversed"] for c in reversed_ if c["action"] == "warn"] == [True]
    console.assert_clean()


def local(moment: datetime) -> str:
    return moment.astimezone(ZONE).strftime("%Y-%m-%dT%H:%M")


def test_a_poll_made_in_the_console_shows_its_results_after_votes(
    console: Console, stack: ConsoleStack
) -> None:
    page = console.page
    console.login(stack.admin)
    console.group(G0, "campaigns")
    expect(page.locator("#campaign-list")).to_contain_text("还没有活动")
    page.get_by_role("button", name="新建活动").click()
    form = page.locator("#campaign-form")
    form.get_by_label("类型", exact=True).select_option("poll")
    form.get_by_label("标题", exact=True).fill("下次分享会主题")
    now = datetime.now(UTC)
    form.get_by_label("开始", exact=True).fill(local(now - timedelta(minutes=1)))
    form.get_by_label("结束", exact=True).fill(local(now + timedelta(hours=2)))
    form.get_by_label("投票问题").fill("下次聊什么？")
    form.get_by_label("选项", exact=True).fill("防晒\n敏感肌修护\n平价好物")
    form.get_by_role("button", name="创建活动").click()
    expect(page.get_by_role("heading", name="下次分享会主题")).to_be_visible()
    campaign = page.url.rsplit("/", 1)[-1]
    path = f"/v1/groups/{G0}/campaigns/{campaign}"
    stored = api(stack, "campaigns", path)
    assert stored["params"]["options"] == ["防晒", "敏感肌修护", "平价好物"]
    assert stored["starts_at"].endswith("+00:00") or stored["starts_at"].endswith("Z")
    wait_until(lambda: api(stack, "campaigns", path)["status"] == "active", timeout=20)
    page.reload()
    votes = {f"{G0}:u00011": "投票 2", f"{G0}:u00012": "投票 2", f"{G0}:u00013": "投票 3"}
    stack.send([message(G0, member, text) for member, text in votes.items()])
    results = page.locator("#poll-results")
    expect(results.locator("[data-voters]")).to_have_attribute("data-voters", "3", timeout=20000)
    expect(results.locator("tbody tr").nth(1)).to_contain_text("敏感肌修护")
    expect(results.locator("tbody tr").nth(1).locator("td").nth(2)).to_have_text("2")
    assert chart_total(page, "投票结果") == 3
    console.shot("campaign-poll")
    console.assert_clean()


def test_a_campaign_is_edited_in_its_own_form_after_opening_another(
    console: Console, stack: ConsoleStack
) -> None:
    """Going from one campaign to another never edits the second with the first's form."""
    page = console.page
    start = datetime.now(UTC) + timedelta(hours=1)
    window = {"starts_at": start.isoformat(), "ends_at": (start + timedelta(days=3)).isoformat()}
    made = {}
    for kind, params in (
        ("lottery", {"prizes": [{"name": "周边", "quantity": 2}]}),
        ("checkin", {"keyword": "打卡", "points": 5}),
    ):
        answer = httpx.post(
            f"{stack.url('campaigns')}/v1/groups/{G1}/campaigns",
            headers=auth(stack.admin),
            json={"kind": kind, "title": f"{kind} 原标题", "params": params, **window},
            timeout=10,
        )
        answer.raise_for_status()
        made[kind] = answer.json()
    console.login(stack.admin)
    console.open(f"#/g/{G1.replace(':', '%3A')}/campaigns/{made['lottery']['id']}")
    expect(page.locator("#winners")).to_contain_text("还没有开奖")
    console.open(f"#/g/{G1.replace(':', '%3A')}/campaigns/{made['checkin']['id']}")
    expect(page.get_by_role("heading", name="checkin 原标题")).to_be_visible()
    page.get_by_role("button", name="编辑").click()
    form = page.locator("#campaign-form")
    expect(form.get_by_label("打卡关键词")).to_have_value("打卡")
    form.get_by_label("标题", exact=True).fill("每日打卡 第二季")
    form.get_by_role("button", name="保存").click()
    expect(page.get_by_role("heading", name="每日打卡 第二季")).to_be_visible()
    after = api(stack, "campaigns", f"/v1/groups/{G1}/campaigns/{made['checkin']['id']}")
    assert after["params"] == made["checkin"]["params"]
    assert (after["starts_at"], after["ends_at"]) == (
        made["checkin"]["starts_at"],
        made["checkin"]["ends_at"],
    )
    console.assert_clean()


def test_a_failed_delivery_is_retried_at_the_double(
    console: Console, stack: ConsoleStack, double: DoubleHandle
) -> None:
    page = console.page
    double.state.add_fault(
        Fault(platform="telegram", kind="forbidden", chat=TELEGRAM_CHAT, method="sendMessage")
    )
    console.login(stack.admin)
    console.group(TELEGRAM_GROUP, "deliveries")
    expect(page.locator("#deliveries")).to_contain_text("没有需要处理的投递")
    post = page.locator("#post")
    post.get_by_label("消息内容").fill("今晚 8 点直播，记得来")
    post.get_by_label("来源（可选）").fill("tg")
    post.get_by_role("button", name="发送").click()
    expect(post.get_by_role("status")).to_contain_text("已提交")
    deliveries = page.locator("#deliveries")
    row = deliveries.locator("tbody tr", has=page.locator("[data-outcome=forbidden]"))
    for _ in range(40):
        if row.count():
            break
        deliveries.get_by_role("button", name="刷新").click()
        page.wait_for_timeout(500)
    expect(row).to_contain_text("not enough rights")
    console.shot("deliveries-forbidden")
    assert double.state.group("telegram", TELEGRAM_CHAT).posts() == []
    row.get_by_role("button", name=re.compile("^重试")).click()
    wait_until(lambda: double.state.group("telegram", TELEGRAM_CHAT).posts(), timeout=20)
    assert [p.text for p in double.state.group("telegram", TELEGRAM_CHAT).posts()] == [
        "今晚 8 点直播，记得来"
    ]
    expect(deliveries).to_contain_text("没有需要处理的投递", timeout=10000)
    done = api(stack, "delivery", f"/v1/groups/{TELEGRAM_GROUP}/deliveries?outcome=delivered")
    assert [d["attempts"] >= 2 for d in done["deliveries"] if d["operation"] == "post"] == [True]
    console.assert_clean()


def test_a_one_group_token_sees_only_its_group(console: Console, stack: ConsoleStack) -> None:
    page = console.page
    console.login(stack.one_group)
    rows = page.get_by_role("region", name="群概览").locator("tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(G1)
    console.group(G1, "moderation")
    expect(page.get_by_role("button", name="新建规则")).to_be_visible()
    expect(page.locator("#blocklists")).to_contain_text("需要可访问全部群的令牌")
    console.group(G0)
    expect(page.get_by_role("alert")).to_contain_text(f"此令牌不能访问群 {G0}")
    console.assert_clean()


def test_a_read_only_token_sees_no_edit_controls(console: Console, stack: ConsoleStack) -> None:
    page = console.page
    console.login(stack.reader)
    expect(page.locator("header.top")).to_contain_text("只读")
    campaigns = api(stack, "campaigns", f"/v1/groups/{G0}/campaigns")["campaigns"]
    sections = {
        "analytics": "#lifecycle",
        "moderation": "#cases",
        "campaigns": "#campaign-list",
        "deliveries": "#deliveries",
    }
    for tab, section in sections.items():
        console.group(G0, tab)
        expect(page.locator(f"{section} .card-head")).to_be_visible()
        page.wait_for_load_state("networkidle")
        assert console.edit_controls() == 0, tab
        console.shot(f"{tab}-read-only")
    assert page.get_by_role("button", name="新建规则").count() == 0
    assert page.locator("#rules-test").count() == 0
    if campaigns:
        console.group(G0, "campaigns")
        page.get_by_role("link", name=campaigns[0]["title"]).first.click()
        expect(page.locator("#notifications .card-head")).to_be_visible()
        assert console.edit_controls() == 0
    console.assert_clean()


def test_every_page_reads_at_phone_width(browser: Browser, stack: ConsoleStack) -> None:
    context = browser.new_context(
        viewport={"width": 375, "height": 740}, locale="zh-CN", is_mobile=True
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    phone = Console(page, stack.console_url)
    phone.login(stack.admin)
    for tab in ("analytics", "moderation", "campaigns", "deliveries"):
        phone.group(G0, tab)
        page.wait_for_load_state("networkidle")
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, (tab, overflow)
        phone.shot(f"phone-{tab}")
    context.close()
    assert errors == []
