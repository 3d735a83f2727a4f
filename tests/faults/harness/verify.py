"""Reading the services back through their APIs and topics and comparing with the truth."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson

from services.common.settings import Settings
from tests.faults.harness.processes import Services, consumer_lag
from tests.faults.harness.scale import (
    AD_KEYWORDS,
    CHECKIN_KEYWORD,
    CHECKIN_POINTS,
    CONSUMERS,
    STREAK_BADGE,
    STREAK_DAYS,
    STREAK_POINTS,
)
from tests.faults.harness.traffic import message, post_events
from tests.faults.harness.truth import Cell, Comparison, Truth
from tests.support import auth, read_topic, wait_until
from tools.stack import HTTP, RunningStack


class Api:
    """GET the services' REST APIs with the admin token."""

    def __init__(self, services: Services | RunningStack, token: str) -> None:
        self.base = services
        self.client = httpx.Client(timeout=30, headers=auth(token))

    def get(self, service: str, path: str, **params: Any) -> Any:
        response = self.client.get(f"{self.base.url(service)}{path}", params=params)
        assert response.status_code == 200, (
            f"GET {service}{path}: {response.status_code} {response.text[:300]}"
        )
        return response.json()

    def post(self, service: str, path: str, body: Mapping[str, Any]) -> Any:
        response = self.client.post(f"{self.base.url(service)}{path}", json=dict(body))
        assert response.status_code in (200, 201), (
            f"POST {service}{path}: {response.status_code} {response.text[:300]}"
        )
        return response.json()

    def pages(self, service: str, path: str, key: str, **params: Any) -> Iterator[dict[str, Any]]:
        """Yield every item of a cursor-paginated list."""
        cursor = None
        while True:
            page = self.get(
                service, path, limit=500, **params, **({"cursor": cursor} if cursor else {})
            )
            yield from page[key]
            cursor = page.get("next_cursor")
            if not cursor:
                return

    def close(self) -> None:
        self.client.close()


def observed_metrics(api: Api, truth: Truth) -> dict[Cell, int]:
    """Read the metrics API for every cell of the ground truth."""
    seen: dict[Cell, int] = {}
    first, last = truth.days[0].isoformat(), truth.days[-1].isoformat()
    for group in truth.groups:
        answer = api.get("metrics", f"/v1/groups/{group}/activity", **{"from": first, "to": last})
        for day in answer["days"]:
            for name in ("messages", "active_members", "joins", "leaves"):
                seen[group, day["date"], name] = int(day[name])
    members = [(g, m) for g, m, f in truth.cells if f == "member_messages"]
    for group, member in members:
        answer = api.client.get(f"{api.base.url('metrics')}/v1/groups/{group}/members/{member}")
        seen[group, member, "member_messages"] = (
            int(answer.json()["messages"]) if answer.status_code == 200 else 0
        )
    return seen


def compare_metrics(truth: Truth, seen: Mapping[Cell, int]) -> Comparison:
    """Compare every ground-truth cell (and any extra non-zero cell) with the API."""
    result = Comparison()
    for cell, expected in sorted(truth.cells.items()):
        result.add("/".join(cell), expected, seen.get(cell, 0))
    for cell, observed in seen.items():
        if cell not in truth.cells and observed:
            result.add("/".join(cell), 0, observed)
    return result


def activity_totals(api: Api, truth: Truth) -> int:
    """Return the sum of messages, joins and leaves the metrics API reports."""
    first, last = truth.days[0].isoformat(), truth.days[-1].isoformat()
    total = 0
    for group in truth.groups:
        answer = api.get("metrics", f"/v1/groups/{group}/activity", **{"from": first, "to": last})
        total += sum(d["messages"] + d["joins"] + d["leaves"] for d in answer["days"])
    return total


def truth_totals(truth: Truth) -> int:
    """Return the sum of messages, joins and leaves in the ground truth."""
    return sum(v for (_, _, f), v in truth.cells.items() if f in ("messages", "joins", "leaves"))


@dataclass
class Operations:
    """The rule and check-in campaign created per group, and the canary events sent."""

    rules: dict[str, str]  # group -> rule id
    campaigns: dict[str, str]  # group -> campaign id
    canaries: list[dict[str, Any]]


def set_up_operations(
    api: Api, *, services: Services, groups: Sequence[str], starts_at: datetime, tag: str
) -> Operations:
    """Create an ad rule (delete) and a check-in campaign per group, then prove both are
    live in the consumers with a canary ad and a canary check-in per group."""
    rules, campaigns, canaries = {}, {}, []
    ends_at = datetime.now(UTC) + timedelta(days=2)
    for group in groups:
        rule = api.post(
            "moderation",
            f"/v1/groups/{group}/rules",
            {
                "name": "no ads",
                "kind": "keywords",
                "params": {"keywords": list(AD_KEYWORDS), "allow": [], "match": "substring"},
                "action": "delete",
            },
        )
        rules[group] = rule["id"]
        campaign = api.post(
            "campaigns",
            f"/v1/groups/{group}/campaigns",
            {
                "kind": "checkin",
                "title": "每日打卡",
                "starts_at": starts_at.isoformat(),
                "ends_at": ends_at.isoformat(),
                "params": {
                    "keyword": CHECKIN_KEYWORD,
                    "match": "contains",  # the truth counts every message holding it
                    "points": CHECKIN_POINTS,
                    "streak_rewards": [
                        {"days": STREAK_DAYS, "points": STREAK_POINTS, "badge": STREAK_BADGE}
                    ],
                },
            },
        )
        campaigns[group] = campaign["id"]
        member = f"{group}:canary"
        canaries += [
            message(group, member, "代购面膜，加微信", event_id=f"{tag}-{group}-canary-ad"),
            message(group, member, "今日打卡", event_id=f"{tag}-{group}-canary-checkin"),
        ]
    for group, campaign_id in campaigns.items():
        path = f"/v1/groups/{group}/campaigns/{campaign_id}"
        status = wait_until(
            lambda p=path: api.get("campaigns", p)["status"] == "active", timeout=30
        )
        assert status, f"campaign {campaign_id} never became active"
    assert post_events(services.url("ingest"), canaries).status_code == 202

    def missing() -> list[str]:
        gaps = []
        for g, c in campaigns.items():
            if not api.get("moderation", f"/v1/groups/{g}/cases")["cases"]:
                gaps.append(f"moderation case in {g}")
            path = f"/v1/groups/{g}/campaigns/{c}/participants"
            if not api.get("campaigns", path)["participants"]:
                gaps.append(f"campaign participant in {g}")
        return gaps

    gaps = wait_until(lambda: not missing(), timeout=120) or missing()
    assert gaps is True or not gaps, f"the canaries never reached: {gaps}\n" + "\n".join(
        f"--- {n}\n{services.stack.log_tail(n)}" for n in ("moderation", "campaigns")
    )
    return Operations(rules=rules, campaigns=campaigns, canaries=canaries)


def compare_moderation(
    api: Api, truth: Truth, actions: Sequence[Mapping[str, Any]]
) -> tuple[Comparison, dict[str, int]]:
    """One case per offending event and exactly one distinct action per case."""
    result = Comparison()
    cases = [
        c for g in truth.groups for c in api.pages("moderation", f"/v1/groups/{g}/cases", "cases")
    ]
    per_event = Counter(c["event_id"] for c in cases)
    for event_id in sorted(truth.offending):
        result.add(f"cases for {event_id}", 1, per_event.get(event_id, 0))
    for event_id, n in per_event.items():
        if event_id not in truth.offending:
            result.add(f"cases for non-offending {event_id}", 0, n)
    ids_per_case: dict[str, set[str]] = defaultdict(set)
    copies = Counter(a["id"] for a in actions)
    for a in actions:
        ids_per_case[a["case_id"]].add(a["id"])
    for case in cases:
        result.add(f"actions for case {case['id']}", 1, len(ids_per_case.pop(case["id"], set())))
    for case_id, ids in ids_per_case.items():
        result.add(f"actions for unknown case {case_id}", 0, len(ids))
    figures = {
        "cases": len(cases),
        "actions": len(copies),
        "actions_republished": sum(n - 1 for n in copies.values()),
    }
    return result, figures


def compare_campaigns(
    api: Api, truth: Truth, ops: Operations, grants: Sequence[Mapping[str, Any]]
) -> tuple[Comparison, dict[str, int]]:
    """Participants count one check-in per member per local day; each expected grant is on
    campaigns.rewards.v1 under exactly one id, and no other grant is."""
    result = Comparison()
    expected_days: Counter[tuple[str, str]] = Counter((g, m) for g, m, _ in truth.checkins)
    for group, campaign_id in ops.campaigns.items():
        path = f"/v1/groups/{group}/campaigns/{campaign_id}/participants"
        counts = {
            p["member_id"]: int(p["count"]) for p in api.pages("campaigns", path, "participants")
        }
        members = {m for g, m in expected_days if g == group} | set(counts)
        for member in sorted(members):
            result.add(
                f"check-ins of {member}", expected_days[group, member], counts.get(member, 0)
            )
    expected = {(ops.campaigns[g], m, f"checkin:{d.isoformat()}") for g, m, d in truth.checkins} | {
        (ops.campaigns[g], m, f"streak:{STREAK_DAYS}") for g, m in truth.streaks
    }
    ids: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    copies = Counter(r["id"] for r in grants)
    for r in grants:
        ids[r["campaign_id"], r["member_id"], r["reason"]].add(r["id"])
    for key in sorted(expected | set(ids)):
        result.add(f"grants {key}", 1 if key in expected else 0, len(ids.get(key, set())))
    figures = {
        "grants": len(copies),
        "grants_republished": sum(n - 1 for n in copies.values()),
    }
    return result, figures


def read_values(
    bootstrap: str, topic: str, *, expect: int, timeout: float = 30, settle: float = 2.0
) -> list[dict[str, Any]]:
    """Read a topic from the beginning and decode its JSON values."""
    return [
        orjson.loads(r.value)
        for r in read_topic(bootstrap, topic, expect=expect, timeout=timeout, settle=settle)
    ]


@dataclass
class Verdict:
    """Every comparison of a run, summed into lost and doubled."""

    metrics: Comparison
    moderation: Comparison
    campaigns: Comparison
    counted: int
    countable: int
    extra: dict[str, Any]

    @property
    def lost(self) -> int:
        return self.metrics.lost + self.moderation.lost + self.campaigns.lost

    @property
    def doubled(self) -> int:
        return self.metrics.doubled + self.moderation.doubled + self.campaigns.doubled

    def problems(self) -> str:
        """Name the first mismatches of each service."""
        return "\n".join(
            f"{name}: {c.mismatches}"
            for name, c in (
                ("metrics", self.metrics),
                ("moderation", self.moderation),
                ("campaigns", self.campaigns),
            )
            if not c.exact
        )


def settle_and_verify(
    *,
    api: Api,
    services: Services,
    settings: Settings,
    truth: Truth,
    ops: Operations,
    bootstrap: str,
    consumers: Sequence[str] = CONSUMERS,
) -> Verdict:
    """Wait until the consumers caught up (totals reached, lag 0), then compare every
    metrics cell, case, action and grant with the ground truth."""
    countable = truth_totals(truth)
    wait_until(lambda: activity_totals(api, truth) >= countable, timeout=120, interval=0.3)
    for name in consumers:
        group = settings.consumer_group_prefix + name
        wait_until(lambda n=name, g=group: consumer_lag(services.url(n), g) == 0, timeout=60)
    expected_grants = len(truth.checkins) + len(truth.streaks)
    # Both topics at once: each read keeps reading 2 s after its count to catch extras.
    with ThreadPoolExecutor(2) as pool:
        reading_actions = pool.submit(
            read_values, bootstrap, settings.topic_moderation_actions, expect=len(truth.offending)
        )
        reading_grants = pool.submit(
            read_values, bootstrap, settings.topic_campaign_rewards, expect=expected_grants
        )
        actions, grants = reading_actions.result(), reading_grants.result()
    seen = observed_metrics(api, truth)
    moderation, mod_figures = compare_moderation(api, truth, actions)
    campaigns, camp_figures = compare_campaigns(api, truth, ops, grants)
    return Verdict(
        metrics=compare_metrics(truth, seen),
        moderation=moderation,
        campaigns=campaigns,
        counted=sum(v for (_, _, f), v in seen.items() if f in ("messages", "joins", "leaves")),
        countable=countable,
        extra={
            "metric_cells": len(truth.cells),
            "offending": len(truth.offending),
            **mod_figures,
            "expected_grants": expected_grants,
            **camp_figures,
        },
    )


def server_errors(url: str) -> int:
    """Return how many 5xx other than 503 a service process answered (its /metrics)."""
    text = HTTP.get(f"{url}/metrics", timeout=5).text
    return int(
        sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("qunyun_http_requests_total{")
            and re.search(r'status="5\d\d"', line)
            and 'status="503"' not in line
        )
    )


def readyz(url: str) -> tuple[int, Any]:
    """Return a service's /readyz status code and body."""
    try:
        response = HTTP.get(f"{url}/readyz", timeout=5)
    except httpx.HTTPError as exc:
        return 0, repr(exc)
    return response.status_code, response.json()
