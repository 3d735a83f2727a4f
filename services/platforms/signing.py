"""What the platforms' webhook proofs share: headers, timestamps, constant-time HMAC checks.

Each platform's own check (its signature or token) lives in its `inbound.py`.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from services.platforms.inbound import Unauthenticated

MAX_SKEW_SECONDS = 300


def header(headers: Mapping[str, str], name: str) -> str:
    """The header's value, or Unauthenticated when it is missing or empty."""
    value = headers.get(name)
    if not value:
        raise Unauthenticated(f"missing {name} header")
    return value


def check_fresh(timestamp: str, *, now: float) -> None:
    """Reject a unix-seconds timestamp more than MAX_SKEW_SECONDS away from now."""
    try:
        sent = int(timestamp)
    except ValueError as exc:
        raise Unauthenticated("timestamp is not unix seconds") from exc
    if abs(now - sent) > MAX_SKEW_SECONDS:
        raise Unauthenticated("timestamp is outside the 300 s window")


def same(expected: str, given: str) -> bool:
    """Compare two secrets or signatures in constant time."""
    return hmac.compare_digest(expected.encode(), given.encode())


def hmac_hex(secret: str, message: bytes, algorithm: str = "sha256") -> str:
    """Hex HMAC of `message` under `secret` (SHA-256 unless a platform signs with another)."""
    # hmac.digest is OpenSSL's one-shot HMAC: no Python HMAC object per request.
    return hmac.digest(secret.encode(), message, algorithm).hex()
