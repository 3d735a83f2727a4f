"""Faults played by the double, read by each client the way delivery needs them."""

from __future__ import annotations

import pytest

from services.platforms import OperationRequest
from tools.platform_double import Fault

pytestmark = pytest.mark.anyio

# One operation every platform carries out with a single call, and where it lands.
KICKS = {
    "telegram": ("telegram:-100123", "telegram:42", "-100123", "42"),
    "slack": ("slack:T01:C02", "slack:T01:U03", "C02", "U03"),
    "feishu": ("feishu:oc_abc", "feishu:ou_1", "oc_abc", "ou_1"),
    "onebot": ("qq:123456", "qq:10001", "123456", "10001"),
}
PLATFORMS = sorted(KICKS)


def kick(platform: str) -> OperationRequest:
    group, member, _, _ = KICKS[platform]
    return OperationRequest("kick", group, "rec-1", member_id=member)


def removed(double, platform: str) -> list[str]:
    _, _, chat, _ = KICKS[platform]
    return double.state.group(platform, chat).removed


@pytest.mark.parametrize("platform", PLATFORMS)
async def test_rate_limit_returns_the_platforms_hint(double, make_client, platform):
    chat = KICKS[platform][2]
    double.state.add_fault(Fault(platform, "rate_limit", chat=chat, retry_after=7))
    result = await make_client(platform).carry_out(kick(platform))
    assert result.outcome == "failed" and result.retryable and result.rate_limited
    assert result.retry_after == 7
    assert removed(double, platform) == []


@pytest.fixture(autouse=True)
def members(double):
    for platform, (_, _, chat, member) in KICKS.items():
        double.state.group(platform, chat).members.add(member)


@pytest.mark.parametrize("platform", PLATFORMS)
async def test_server_errors_are_retryable_then_succeed(double, make_client, platform):
    double.state.add_fault(Fault(platform, "error", status=502, times=2))
    client = make_client(platform)
    first = await client.carry_out(kick(platform))
    second = await client.carry_out(kick(platform))
    third = await client.carry_out(kick(platform))
    assert [first.outcome, second.outcome] == ["failed", "failed"]
    assert first.retryable and second.retryable and not first.rate_limited
    assert third.outcome == "delivered"
    assert len(removed(double, platform)) == 1


@pytest.mark.parametrize("platform", PLATFORMS)
async def test_permission_errors_are_forbidden_and_final(double, make_client, platform):
    double.state.add_fault(Fault(platform, "forbidden", times=-1))
    result = await make_client(platform).carry_out(kick(platform))
    assert result.outcome == "forbidden" and not result.retryable and result.detail


@pytest.mark.parametrize("platform", PLATFORMS)
async def test_http_403_is_forbidden(double, make_client, platform):
    double.state.add_fault(Fault(platform, "error", status=403))
    result = await make_client(platform).carry_out(kick(platform))
    assert result.outcome == "forbidden" and not result.retryable


@pytest.mark.parametrize("platform", PLATFORMS)
async def test_timeout_after_the_effect_is_an_unknown_outcome(double, make_client, platform):
    chat = KICKS[platform][2]
    double.state.add_fault(Fault(platform, "timeout", chat=chat, sleep=1.5, apply=True))
    result = await make_client(platform).carry_out(kick(platform))
    assert result.outcome == "failed" and result.retryable and result.unknown
    assert len(removed(double, platform)) >= 1  # it happened although nobody was told


async def test_calls_are_recorded_with_their_time(double, make_client):
    double.state.add_fault(Fault("slack", "rate_limit", retry_after=1))
    client = make_client("slack")
    limited = await client.carry_out(kick("slack"))
    done = await client.carry_out(kick("slack"))
    assert limited.retry_after == 1 and done.outcome == "delivered"
    first, second = double.state.calls_of("slack", "conversations.kick")
    assert (first.fault, first.status) == ("rate_limit", 429)
    assert second.at >= first.at and second.fault is None


async def test_the_admin_api_shows_state_and_takes_faults(double, make_client, http):
    response = await http.post(
        f"{double.base_url}/_double/faults",
        json={"platform": "telegram", "kind": "rate_limit", "retry_after": 3},
    )
    assert response.status_code == 204
    result = await make_client("telegram").carry_out(kick("telegram"))
    assert result.retry_after == 3
    await make_client("telegram").carry_out(kick("telegram"))
    state = (await http.get(f"{double.base_url}/_double/state")).json()
    [group] = [g for g in state["groups"] if g["platform"] == "telegram"]
    assert group["removed"] == ["42"]
    calls = (await http.get(f"{double.base_url}/_double/calls?platform=telegram")).json()
    assert [c["status"] for c in calls["calls"]] == [429, 200, 200]
    page = await http.get(double.base_url + "/")
    assert "-100123" in page.text
