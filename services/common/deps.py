"""FastAPI dependency aliases shared by every service: resources, clients and access checks."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated, TypeVar

import redis
from fastapi import Depends, HTTPException, Path, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from services.common.auth import Principal
from services.common.kafka.producer import ProducerHandle
from services.common.resources import Resources
from services.common.settings import Scope, Settings

_bearer = HTTPBearer(auto_error=False, description="An API token from QUNYUN_CONFIG")


StateT = TypeVar("StateT")


def get_resources(request: Request) -> Resources:
    return request.app.state.resources  # type: ignore[no-any-return]


ResourcesDep = Annotated[Resources, Depends(get_resources)]


def service_state(kind: type[StateT]) -> Callable[[Resources], StateT]:
    """A dependency returning the service's typed state (what its startup yielded)."""

    def get_state(resources: ResourcesDep) -> StateT:
        state = resources.state
        if not isinstance(state, kind):
            raise RuntimeError(f"{resources.service} runs without a {kind.__name__}")
        return state

    return get_state


def get_settings_dep(resources: ResourcesDep) -> Settings:
    return resources.settings


def get_redis(resources: ResourcesDep) -> redis.Redis:
    assert resources.redis is not None, "service built without Redis"
    return resources.redis


def get_session(resources: ResourcesDep) -> Iterator[Session]:
    assert resources.engine is not None, "service built without a database"
    with Session(resources.engine) as session:
        yield session


def get_producer(resources: ResourcesDep) -> ProducerHandle:
    return resources.producer


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
RedisDep = Annotated[redis.Redis, Depends(get_redis)]
SessionDep = Annotated[Session, Depends(get_session)]
ProducerDep = Annotated[ProducerHandle, Depends(get_producer)]


def get_principal(
    resources: ResourcesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """Authenticate the bearer token; 401 when missing or unknown."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    principal = resources.verifier.verify(credentials.credentials)
    if principal is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "invalid bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]
GroupIdPath = Annotated[
    str, Path(min_length=1, max_length=256, description="The group id, e.g. slack:T01:C02")
]


EVERY_GROUP = "*"
"""The group a route spanning groups is checked against: only `["*"]` tokens reach it."""


def _check_access(principal: Principal, scope: Scope, group_id: str) -> None:
    """403 unless the token has `scope` on `group_id` (`EVERY_GROUP`: on every group)."""
    if scope not in principal.scopes:
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"token lacks the {scope!r} scope")
    if not principal.can(scope, group_id):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            'this needs a token whose groups are ["*"]'
            if group_id == EVERY_GROUP
            else "token has no access to this group",
        )


def _group_access(scope: Scope):  # type: ignore[no-untyped-def]
    def check(group_id: GroupIdPath, principal: PrincipalDep) -> str:
        _check_access(principal, scope, group_id)
        return group_id

    return check


def _every_group_access(scope: Scope):  # type: ignore[no-untyped-def]
    def check(principal: PrincipalDep) -> Principal:
        _check_access(principal, scope, EVERY_GROUP)
        return principal

    return check


ReadGroup = Annotated[str, Depends(_group_access("read"))]
"""The path's group id, after checking the token may read it."""
WriteGroup = Annotated[str, Depends(_group_access("write"))]
"""The path's group id, after checking the token may change it."""
ReadEveryGroup = Annotated[Principal, Depends(_every_group_access("read"))]
"""The caller, after checking the token may read every group (what spans groups)."""
WriteEveryGroup = Annotated[Principal, Depends(_every_group_access("write"))]
"""The caller, after checking the token may change every group (what spans groups)."""
