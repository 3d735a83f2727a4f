"""Domain errors that service functions raise and the app maps to HTTP once, for every route."""

from __future__ import annotations


class NotFound(LookupError):
    """The thing asked for does not exist in this group (404 with the message as detail)."""


class Conflict(RuntimeError):
    """The request contradicts the current state (409 with the message as detail)."""
