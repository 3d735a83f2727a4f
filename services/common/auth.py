"""Bearer tokens checked against sha256 hashes from QUNYUN_CONFIG, with group and scope checks."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from services.common.settings import QunyunConfig, Scope, TokenEntry


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token's name, groups and scopes."""

    name: str
    groups: frozenset[str]
    scopes: frozenset[str]

    def can(self, scope: Scope, group_id: str) -> bool:
        """Tell whether this principal has the scope on the group."""
        return scope in self.scopes and ("*" in self.groups or group_id in self.groups)


def hash_token(token: str) -> str:
    """Return the hex sha256 of a token, as stored in the config."""
    return hashlib.sha256(token.encode()).hexdigest()


class TokenVerifier:
    """Look bearer tokens up by hash, comparing in constant time."""

    def __init__(self, config: QunyunConfig) -> None:
        self._entries: list[TokenEntry] = list(config.tokens)

    def verify(self, token: str) -> Principal | None:
        """Return the principal of a valid token, or None."""
        digest = hash_token(token)
        found: TokenEntry | None = None
        for entry in self._entries:
            if hmac.compare_digest(entry.sha256, digest):
                found = entry
        if found is None:
            return None
        return Principal(found.name, frozenset(found.groups), frozenset(found.scopes))


def token_entry(name: str, token: str, groups: list[str], scopes: list[str]) -> TokenEntry:
    """Return the config entry that admits this token (its hash, never the token)."""
    return TokenEntry.model_validate(
        {"name": name, "sha256": hash_token(token), "groups": groups, "scopes": scopes}
    )


def new_token(name: str, groups: list[str], scopes: list[str]) -> tuple[str, str]:
    """Make a random token; return it and its TOML config entry."""
    token = "qy_" + secrets.token_urlsafe(32)
    entry = token_entry(name, token, groups, scopes)
    return token, QunyunConfig(tokens=[entry]).to_toml()
