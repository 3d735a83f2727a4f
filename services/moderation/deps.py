"""Moderation's dependency aliases: its typed state, beside the shared ones."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends

from services.common.deps import service_state
from services.moderation.rulesets import EngineCache


@dataclass
class ModerationState:
    """What moderation's startup builds for its routes."""

    engines: EngineCache


ModerationStateDep = Annotated[ModerationState, Depends(service_state(ModerationState))]
