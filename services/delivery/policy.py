"""What to do after a call (pure): finish the record, or try again when and after what pause.

- `delivered`, `recorded`, `unsupported`, `expired`, `forbidden` are final (401/403 and the
  platforms' permission errors are never retried: only an operator can fix them, then
  retry through REST).
- A rate-limit answer is retried once the platform's hint has passed and pauses the
  source for that long (or only the group, for posts on Telegram and Slack, whose
  limits are per chat); it does not count towards `DELIVERY_MAX_ATTEMPTS`, since
  the platform asked us to wait, not told us we failed.
- 5xx, timeouts and transport errors are retried with exponential backoff until
  `DELIVERY_MAX_ATTEMPTS` failures, then `failed`.
- Anything else is `failed` at once (the platform refused the request as such).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from services.platforms import CallResult

BACKOFF_BASE = 0.5
BACKOFF_MAX = 60.0
PER_CHAT_POST_LIMITS = frozenset({"telegram", "slack"})

PauseScope = Literal["source", "group"]


@dataclass(frozen=True)
class Decision:
    """Final (`outcome`) or a retry after `delay` seconds, maybe pausing a scope."""

    final: bool
    outcome: str
    detail: str
    delay: float = 0.0
    pause: PauseScope | None = None
    counts_failure: bool = False


def backoff(failures: int) -> float:
    """Seconds before the next try after `failures` retryable failures."""
    return float(min(BACKOFF_MAX, BACKOFF_BASE * 2 ** max(failures - 1, 0)))


def pause_scope(platform: str, operation: str) -> PauseScope:
    """What a rate-limit hint pauses: the group for per-chat post limits, else the source."""
    return "group" if operation == "post" and platform in PER_CHAT_POST_LIMITS else "source"


def decide(
    result: CallResult, *, platform: str, operation: str, failures: int, max_attempts: int
) -> Decision:
    """Turn a call's result into a final outcome or a retry (`failures` so far, before it)."""
    if result.outcome != "failed":
        return Decision(True, result.outcome, result.detail)
    if not result.retryable:
        return Decision(True, "failed", result.detail)
    if result.retry_after is not None:
        scope = pause_scope(platform, operation)
        return Decision(False, "failed", result.detail, delay=result.retry_after, pause=scope)
    if failures + 1 >= max_attempts:
        detail = f"gave up after {failures + 1} failed attempts: {result.detail}"
        return Decision(True, "failed", detail, counts_failure=True)
    return Decision(
        False, "failed", result.detail, delay=backoff(failures + 1), counts_failure=True
    )
