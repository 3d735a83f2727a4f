"""Read a request body without ever holding more than the limit."""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import HTTPException, status
from starlette.requests import ClientDisconnect
from starlette.types import Receive

MAX_BODY_BYTES = 1024 * 1024


def _too_large(limit: int) -> HTTPException:
    return HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"body is larger than {limit} bytes")


async def read_limited(
    receive: Receive, headers: Mapping[str, str], limit: int = MAX_BODY_BYTES
) -> bytes:
    """Return the body, answering 413 from Content-Length or as soon as the stream passes it.

    Reads the ASGI messages itself (as `Request.stream` does, disconnects included): a
    webhook body nearly always comes in one message, which is returned as it is.
    """
    declared = headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        if not message.get("more_body", False):
            if not chunks:
                return chunk
            chunks.append(chunk)
            return b"".join(chunks)
        chunks.append(chunk)
