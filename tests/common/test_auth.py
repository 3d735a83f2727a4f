"""Bearer tokens, group and scope checks on a real service app."""

import pytest
from fastapi import APIRouter

from services.common.app import create_service_app
from services.common.auth import TokenVerifier, hash_token, new_token
from services.common.deps import ReadGroup, WriteGroup
from services.common.settings import QunyunConfig
from tests.support import LIMITED_GROUP, auth

router = APIRouter(prefix="/v1")


@router.get("/groups/{group_id}/thing")
def read_thing(group_id: ReadGroup) -> dict[str, str]:
    return {"group_id": group_id}


@router.post("/groups/{group_id}/thing")
def write_thing(group_id: WriteGroup) -> dict[str, str]:
    return {"group_id": group_id}


@pytest.fixture
def client(settings, run_app):
    app = create_service_app(
        service="authtest", title="t", description="t", routers=[router], settings=settings
    )
    with run_app(app) as c:
        yield c


def test_no_token_is_401(client):
    r = client.get("/v1/groups/g1/thing")
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    assert "token" in r.json()["detail"]


def test_unknown_token_is_401(client):
    assert client.get("/v1/groups/g1/thing", headers=auth("nope")).status_code == 401
    assert (
        client.get("/v1/groups/g1/thing", headers={"Authorization": "Basic abc"}).status_code == 401
    )


def test_token_without_the_group_is_403(client, tokens):
    assert (
        client.get(f"/v1/groups/{LIMITED_GROUP}/thing", headers=auth(tokens.limited)).status_code
        == 200
    )
    r = client.get("/v1/groups/other/thing", headers=auth(tokens.limited))
    assert r.status_code == 403 and "group" in r.json()["detail"]


def test_read_token_on_write_route_is_403(client, tokens):
    assert client.get("/v1/groups/g1/thing", headers=auth(tokens.reader)).status_code == 200
    r = client.post("/v1/groups/g1/thing", headers=auth(tokens.reader))
    assert r.status_code == 403 and "write" in r.json()["detail"]
    assert client.post("/v1/groups/g1/thing", headers=auth(tokens.admin)).status_code == 200


def test_new_token_entry_verifies():
    import tomllib

    token, entry = new_token("ops", ["g1", "g2"], ["read"])
    config = QunyunConfig.model_validate(tomllib.loads(entry))
    principal = TokenVerifier(config).verify(token)
    assert principal is not None and principal.can("read", "g2")
    assert not principal.can("write", "g1") and not principal.can("read", "g3")
    assert hash_token(token) in entry and token not in entry


def test_cli_prints_token(capsys):
    from services.cli import main

    assert main(["token", "--name", "ops", "--scopes", "read,write"]) == 0
    out = capsys.readouterr().out
    import tomllib

    entry = tomllib.loads(out.split("# add to QUNYUN_CONFIG:\n", 1)[1])
    assert entry["tokens"][0]["name"] == "ops"
    assert entry["tokens"][0]["scopes"] == ["read", "write"]


def test_written_config_loads_back(tmp_path):
    from services.common.auth import token_entry
    from services.common.settings import Source, load_config, write_config

    config = QunyunConfig(
        sources=[
            Source(id="a", platform="feishu", secret='quote " and \\', encrypt_key="k"),
            Source(id="b", platform="generic", secret="s"),
        ],
        tokens=[token_entry("ops", "qy_x", ["g1"], ["read", "write"])],
    )
    path = write_config(tmp_path / "qunyun.toml", config, comment="written by a test")
    assert load_config(path) == config
    assert path.read_text().startswith("# written by a test\n")
    assert path.stat().st_mode & 0o777 == 0o600
