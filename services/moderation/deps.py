"""Moderation's dependency aliases: its typed state, beside the shared ones."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends

from services.common.deps import service_state
from services.common.outbox import OutboxRelay
from services.moderation.rulebook_cache import RulebookCache


@dataclass
class ModerationState:
    """What moderation's startup builds for its routes: the rulebooks and the outbox relay."""

    rulebooks: RulebookCache
    relay: OutboxRelay


ModerationStateDep = Annotated[ModerationState, Depends(service_state(ModerationState))]
