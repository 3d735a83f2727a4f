"""Read a request body without ever holding more than the limit."""

from __future__ import annotations

from fastapi import HTTPException, Request, status

MAX_BODY_BYTES = 1024 * 1024


def _too_large(limit: int) -> HTTPException:
    return HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"body is larger than {limit} bytes")


async def read_limited(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """Return the body, answering 413 from Content-Length or as soon as the stream passes it."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)
