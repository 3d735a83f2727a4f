"""WeCom customer-group callbacks through ingest: the URL check, encrypted member changes onto
Kafka once, refusals, ignored changes counted, joins enriched from the platform double.

Every callback is encrypted and signed by wechatpy (tests/platforms/wecom_samples.py).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from services.common.settings import QunyunConfig, Source, write_config
from services.ingest.app import create_app
from services.ingest.body import MAX_BODY_BYTES
from services.platforms.wecom import api
from tests.ingest.conftest import Ingest
from tests.ingest.helpers import events_on, nothing_on
from tests.platforms import wecom_samples as ws
from tools.platform_double import DoubleConfig, DoubleHandle, Fault, start_double
from tools.platform_double.wecom import seed_group

PLAIN = "/v1/webhooks/wecom-in"
ENRICHED = "/v1/webhooks/wecom-rich"


@pytest.fixture(scope="module")
def double() -> Iterator[DoubleHandle]:
    handle = start_double(DoubleConfig(strict=True))
    yield handle
    handle.stop()


@pytest.fixture(scope="module")
def wecom_config(tmp_path_factory: pytest.TempPathFactory, double: DoubleHandle) -> Path:
    secret = double.state.config.wecom_secret
    sources = [
        ws.source("wecom-in"),
        ws.source("wecom-rich", app_secret=secret, api_base=double.base_url),
        Source(id="generic-here", platform="generic", secret="g-secret"),
    ]
    path = tmp_path_factory.mktemp("wecom") / "qunyun.toml"
    return write_config(path, QunyunConfig(sources=sources))


@pytest.fixture
def ingest(make_settings, run_app, kafka_bootstrap, wecom_config, double) -> Iterator[Ingest]:
    double.state.reset()
    api._TOKENS.clear()
    settings = make_settings(qunyun_config=str(wecom_config), kafka_produce_timeout_seconds=3.0)
    with run_app(create_app(settings)) as client:
        yield Ingest(client, settings, kafka_bootstrap)


@pytest.fixture
def chat() -> Callable[[], str]:
    return lambda: "wr" + uuid.uuid4().hex


def post(ingest: Ingest, xml: str, path: str = PLAIN, **kwargs: Any):
    query, body = ws.encrypted_post(xml, **kwargs)
    return ingest.client.post(path, params=query, content=body)


def ignored_count(ingest: Ingest, source: str) -> float:
    text = ingest.client.get("/metrics").text
    pattern = (
        r'qunyun_ingest_events_total\{(?=[^}]*source="%s")(?=[^}]*outcome="ignored")[^}]*\} (\S+)'
    )
    found = re.search(pattern % re.escape(source), text)
    return float(found.group(1)) if found else 0.0


def test_url_check_answers_the_decrypted_echostr(ingest):
    client = ingest.client
    answer = client.get(PLAIN, params=ws.url_check("8617593742117045561"))
    assert answer.status_code == 200, answer.text
    assert answer.text == "8617593742117045561"
    assert answer.headers["content-type"].startswith("text/plain")
    forged = ws.url_check("1", token="not-the-token")
    assert client.get(PLAIN, params=forged).status_code == 401
    other_corp = client.get(PLAIN, params=ws.url_check("1", corp_id="ww_other"))
    assert other_corp.status_code == 401 and "ReceiveId" in other_corp.json()["detail"]
    assert client.get(PLAIN).status_code == 401
    assert client.get("/v1/webhooks/generic-here").status_code == 405
    assert client.get("/v1/webhooks/nope").status_code == 404


def test_joins_and_leaves_land_once_and_replays_are_absorbed(ingest, chat):
    group = chat()
    joined = ws.change_xml(group, "add_member", ["wmJack", "zhangsan"], join_scene=0)
    left = ws.change_xml(group, "del_member", ["wmJack"], quit_scene=1)
    for xml in (joined, joined, left, left):  # WeCom retries what it thinks went unanswered
        answer = post(ingest, xml)
        assert answer.status_code == 200, answer.text
        assert answer.text == "success"
    got = events_on(ingest.bootstrap, ingest.topic, expect=3, settle=1.0)
    assert len(got) == 3
    by_kind = {(e["type"], e["member_id"]): e for e in got}
    jack = by_kind[("member.joined", "wecom:wmJack")]
    assert jack["source"] == "wecom-in" and jack["group_id"] == jack["_key"] == f"wecom:{group}"
    assert jack["data"] == {
        "display_name": None,
        "invited_by": None,
        "method": "invite",
        "channel": None,
    }
    assert ("member.joined", "wecom:zhangsan") in by_kind
    gone = by_kind[("member.left", "wecom:wmJack")]
    assert gone["data"] == {"reason": "removed", "by": None}


def test_refusals_name_what_is_wrong(ingest, chat):
    group = chat()
    xml = ws.change_xml(group, "add_member", ["wmA"], join_scene=3)
    client = ingest.client
    query, body = ws.encrypted_post(xml)
    assert (
        client.post(PLAIN, params={**query, "msg_signature": "0" * 40}, content=body).status_code
        == 401
    )
    assert post(ingest, xml, corp_id="ww_other").status_code == 401
    assert post(ingest, xml, token="other-token").status_code == 401
    encrypt = re.search(rb"CDATA\[([^\]]+)\]\]></Encrypt>", body)
    assert encrypt
    for ciphertext in (ws.tampered(encrypt.group(1).decode()), ws.bad_padding_ciphertext(xml)):
        q, b = ws.signed_post(ciphertext)
        refused = client.post(PLAIN, params=q, content=b)
        assert refused.status_code == 401, refused.text
    broken = client.post(PLAIN, params=query, content=b"<xml><Encrypt>")
    assert broken.status_code == 422 and "not well-formed XML" in broken.text
    missing = client.post(PLAIN, params=query, content=b"<xml><AgentID>1</AgentID></xml>")
    assert missing.status_code == 422
    assert missing.json()["detail"][0]["loc"] == ["body", "Encrypt"]
    huge = client.post(PLAIN, params=query, content=b"<xml>" + b" " * MAX_BODY_BYTES + b"</xml>")
    assert huge.status_code == 413
    assert nothing_on(ingest.bootstrap, ingest.topic)


def test_other_changes_are_acknowledged_and_counted(ingest, chat):
    group = chat()
    before = ignored_count(ingest, "wecom-in")
    others = [
        ws.change_xml(group, "change_name", None),
        ws.change_xml(group, "", None, change_type="dismiss"),
        ws.change_xml(group, "add_member", None, join_scene=0),  # names nobody
    ]
    for xml in others:
        answer = post(ingest, xml)
        assert (answer.status_code, answer.text) == (200, "success")
    assert ignored_count(ingest, "wecom-in") == before + 3
    assert nothing_on(ingest.bootstrap, ingest.topic)


def test_joins_are_enriched_with_inviter_and_join_way_state(ingest, chat, double):
    group = chat()
    seed_group(
        double.state,
        group,
        owner="zhangsan",
        members=[
            {"userid": "wmA", "join_scene": 3, "state": "渠道A", "name": "王语嫣"},
            {"userid": "wmB", "join_scene": 2, "invitor": {"userid": "zhangsan"}},
        ],
    )
    xml = ws.change_xml(group, "add_member", ["wmA", "wmB"], join_scene=0)
    assert post(ingest, xml, path=ENRICHED).text == "success"
    got = {e["member_id"]: e for e in events_on(ingest.bootstrap, ingest.topic, expect=2)}
    assert got["wecom:wmA"]["data"] == {
        "display_name": "王语嫣",
        "invited_by": None,
        "method": "qrcode",
        "channel": "渠道A",
    }
    assert got["wecom:wmB"]["data"]["invited_by"] == "wecom:zhangsan"
    assert got["wecom:wmB"]["data"]["method"] == "link"
    assert double.state.calls_of("wecom", "gettoken")


def test_a_join_lands_without_enrichment_when_wecom_is_slow(ingest, chat, double):
    group = chat()
    seed_group(double.state, group, owner="zhangsan", members=[{"userid": "wmA", "state": "X"}])
    double.state.add_fault(
        Fault(platform="wecom", kind="timeout", method="groupchat/get", sleep=3.0, apply=False)
    )
    xml = ws.change_xml(group, "add_member", ["wmA"], join_scene=3)
    assert post(ingest, xml, path=ENRICHED).text == "success"
    [got] = events_on(ingest.bootstrap, ingest.topic, expect=1)
    assert got["data"]["channel"] is None and got["data"]["method"] == "qrcode"
