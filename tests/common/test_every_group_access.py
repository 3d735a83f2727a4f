"""The kernel's check for routes that span groups (moderation's shared blocklists): the same
scope check as a group's routes, and only tokens whose groups are `["*"]` pass."""

import pytest
from fastapi import APIRouter

from services.common.app import create_service_app
from services.common.auth import Principal
from services.common.deps import ReadEveryGroup, WriteEveryGroup
from tests.support import auth

router = APIRouter(prefix="/v1")


@router.get("/shared")
def read_shared(principal: ReadEveryGroup) -> dict[str, str]:
    return {"name": principal.name}


@router.post("/shared")
def write_shared(principal: WriteEveryGroup) -> dict[str, str]:
    assert isinstance(principal, Principal)
    return {"name": principal.name}


@pytest.fixture
def client(settings, run_app):
    app = create_service_app(
        service="everytest", title="t", description="t", routers=[router], settings=settings
    )
    with run_app(app) as c:
        yield c


def test_only_tokens_for_every_group_pass_with_the_scope(client, tokens):
    assert client.get("/v1/shared").status_code == 401
    assert client.get("/v1/shared", headers=auth(tokens.reader)).status_code == 200
    assert client.post("/v1/shared", headers=auth(tokens.admin)).status_code == 200
    one_group = client.get("/v1/shared", headers=auth(tokens.limited))
    assert one_group.status_code == 403 and '["*"]' in one_group.json()["detail"]
    read_only = client.post("/v1/shared", headers=auth(tokens.reader))
    assert read_only.status_code == 403 and "'write' scope" in read_only.json()["detail"]
