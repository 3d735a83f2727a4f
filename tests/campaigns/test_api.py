"""The campaigns REST API: access, validation, patch-before-start, cancel, pagination."""

from __future__ import annotations

import time

from services.campaigns.app import create_app
from tests.campaigns.helpers import campaign_body
from tests.conftest import LIMITED_GROUP, auth

CHECKIN = {"keyword": "打卡", "points": 10, "streak_rewards": [{"days": 3, "points": 50}]}


def test_create_get_list_patch_cancel(settings, run_app, tokens, unique):
    group = unique("g-api")
    url = f"/v1/groups/{group}/campaigns"
    with run_app(create_app(settings)) as client:
        admin = auth(tokens.admin)
        created = []
        for i in range(3):
            body = campaign_body(
                "checkin", start_in=60, end_in=3600, params=CHECKIN, reminders=["PT30S", "PT10S"]
            )
            body["title"] = f"c{i}"
            r = client.post(url, json=body, headers=admin)
            assert r.status_code == 201, r.text
            created.append(r.json())
        c = created[0]
        assert c["status"] == "scheduled" and c["group_id"] == group
        assert c["reminders"] == ["PT30S", "PT10S"]
        assert c["params"]["grace_days"] == 0  # defaults filled in

        assert client.get(f"{url}/{c['id']}", headers=auth(tokens.reader)).json()["title"] == "c0"
        page = client.get(url, params={"limit": 2}, headers=admin).json()
        assert [x["title"] for x in page["campaigns"]] == ["c2", "c1"]
        rest = client.get(url, params={"limit": 2, "cursor": page["next_cursor"]}, headers=admin)
        assert [x["title"] for x in rest.json()["campaigns"]] == ["c0"]
        assert rest.json()["next_cursor"] is None

        r = client.patch(f"{url}/{c['id']}", json={"title": "renamed"}, headers=admin)
        assert r.status_code == 200 and r.json()["title"] == "renamed"
        r = client.patch(f"{url}/{c['id']}", json={"params": {"points": -1}}, headers=admin)
        assert r.status_code == 422
        assert r.json()["detail"][0]["loc"] == ["body", "params", "points"]

        r = client.post(f"{url}/{c['id']}/cancel", headers=admin)
        assert r.status_code == 200 and r.json()["status"] == "cancelled"
        assert client.post(f"{url}/{c['id']}/cancel", headers=admin).status_code == 409
        assert (
            client.patch(f"{url}/{c['id']}", json={"title": "x"}, headers=admin).status_code == 409
        )

        # started campaigns can no longer be changed
        body = campaign_body("challenge", start_in=0.5, end_in=60, params={"goal_messages": 2})
        started = client.post(url, json=body, headers=admin).json()
        time.sleep(1.0)
        r = client.patch(f"{url}/{started['id']}", json={"title": "late"}, headers=admin)
        assert r.status_code == 409

        assert client.get(f"{url}/nope", headers=admin).status_code == 404
        assert client.get(f"/v1/groups/other/campaigns/{c['id']}", headers=admin).status_code == 404


def test_validation_names_the_field(settings, run_app, tokens, unique):
    url = f"/v1/groups/{unique('g-val')}/campaigns"
    admin = auth(tokens.admin)
    cases = [
        (campaign_body("checkin", start_in=60, end_in=30), ["body", "ends_at"]),
        (campaign_body("quiz", start_in=60, end_in=120), ["body", "kind"]),
        (
            campaign_body("checkin", start_in=60, end_in=120, reminders=["-PT5M"]),
            ["body", "reminders", 0],
        ),
        (
            campaign_body("checkin", start_in=60, end_in=120, reminders=["soon"]),
            ["body", "reminders", 0],
        ),
        (
            campaign_body("lottery", start_in=60, end_in=120, params={"prizes": []}),
            ["body", "params", "prizes"],
        ),
        (
            campaign_body(
                "lottery",
                start_in=60,
                end_in=120,
                params={"prizes": [{"name": "x", "quantity": 0}]},
            ),
            ["body", "params", "prizes", 0, "quantity"],
        ),
        (
            campaign_body("challenge", start_in=60, end_in=120, params={}),
            ["body", "params", "goal_messages"],
        ),
        (
            campaign_body("event", start_in=60, end_in=120, params={"colour": "red"}),
            ["body", "params", "colour"],
        ),
        (
            campaign_body("event", start_in=60, end_in=120, announce_at="2099-01-01T00:00:00Z"),
            ["body", "announce_at"],
        ),
        (
            {**campaign_body("event", start_in=60, end_in=120), "starts_at": "2026-01-01T00:00:00"},
            ["body", "starts_at"],
        ),
    ]
    with run_app(create_app(settings)) as client:
        for body, loc in cases:
            r = client.post(url, json=body, headers=admin)
            assert r.status_code == 422, (body, r.text)
            assert loc in [e["loc"] for e in r.json()["detail"]], (loc, r.json())


def test_access_is_checked(settings, run_app, tokens, unique):
    body = campaign_body("event", start_in=60, end_in=120)
    with run_app(create_app(settings)) as client:
        assert client.post(f"/v1/groups/{unique('g')}/campaigns", json=body).status_code == 401
        r = client.post(
            f"/v1/groups/{unique('g')}/campaigns", json=body, headers=auth(tokens.reader)
        )
        assert r.status_code == 403
        r = client.post(
            f"/v1/groups/{unique('g')}/campaigns", json=body, headers=auth(tokens.limited)
        )
        assert r.status_code == 403
        r = client.post(
            f"/v1/groups/{LIMITED_GROUP}/campaigns", json=body, headers=auth(tokens.limited)
        )
        assert r.status_code == 201
        r = client.get(f"/v1/groups/{unique('g')}/points/leaderboard", headers=auth(tokens.limited))
        assert r.status_code == 403


def test_extreme_inputs_are_422_not_500(settings, run_app, tokens, unique):
    group = unique("g-edge")
    url = f"/v1/groups/{group}/campaigns"
    admin = auth(tokens.admin)
    cases = [
        (
            campaign_body("event", start_in=60, end_in=120, reminders=["P9999D"]),
            ["body", "reminders", 0],
        ),
        (
            {
                **campaign_body("event", start_in=60, end_in=120),
                "starts_at": "0001-01-01T00:00:00+05:00",
            },
            ["body", "starts_at"],
        ),
        (
            campaign_body(
                "lottery",
                start_in=60,
                end_in=120,
                params={
                    "prizes": [{"name": "x", "quantity": 1}],
                    "eligibility": {"joined_before": "9999-12-31T23:59:59-05:00"},
                },
            ),
            ["body", "params", "eligibility", "joined_before"],
        ),
    ]
    with run_app(create_app(settings)) as client:
        for body, loc in cases:
            r = client.post(url, json=body, headers=admin)
            assert r.status_code == 422, (body, r.text)
            assert loc in [e["loc"] for e in r.json()["detail"]], (loc, r.json())
        r = client.get("/v1/groups/bad%00group/campaigns", headers=admin)
        assert r.status_code in (200, 422), r.text
        r = client.get(f"{url}/c%00x", headers=admin)
        assert r.status_code in (404, 422), r.text
