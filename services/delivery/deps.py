"""Delivery's dependency aliases: the live config and the dispatcher's wake-up."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends

from services.common.deps import ResourcesDep
from services.common.settings import QunyunConfig


def get_config(resources: ResourcesDep) -> QunyunConfig:
    """The current QUNYUN_CONFIG (a reload replaces it)."""
    return resources.config


def get_wake(resources: ResourcesDep) -> Callable[[], None]:
    """Wake the dispatcher after a commit queued work (a no-op before start-up finished)."""
    dispatcher = getattr(resources.state, "dispatcher", None)
    return dispatcher.wake if dispatcher is not None else lambda: None


ConfigDep = Annotated[QunyunConfig, Depends(get_config)]
WakeDep = Annotated[Callable[[], None], Depends(get_wake)]
