"""Request bodies bounded in size, and validation errors that never echo a large input."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY_BYTES = 1024 * 1024
ECHO_CHARS = 80


class _TooLarge(BaseException):  # noqa: N818 - not an Exception: FastAPI turns those into 400s
    pass


def _too_large_body(limit: int) -> bytes:
    return f'{{"detail":"request body is larger than {limit} bytes"}}'.encode()


class BodyLimitMiddleware:
    """Answer 413 when a body exceeds `limit`: from Content-Length, or as the stream passes it.

    Paths under `exempt_prefixes` read their bodies with their own limit (ingest's webhooks
    count what they reject).
    """

    def __init__(
        self, app: ASGIApp, *, limit: int = MAX_BODY_BYTES, exempt_prefixes: tuple[str, ...] = ()
    ) -> None:
        self.app = app
        self.limit = limit
        self.exempt = exempt_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.exempt):
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                await self._reject(send)
                return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._reject(send)

    async def _reject(self, send: Send) -> None:
        body = _too_large_body(self.limit)
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _short(value: Any) -> Any:
    if isinstance(value, str):
        return value if len(value) <= ECHO_CHARS else value[:ECHO_CHARS] + "…"
    if isinstance(value, int | float | bool) or value is None:
        return value
    return f"<{type(value).__name__}>"


async def bounded_validation_error(_: Request, exc: Exception) -> JSONResponse:
    """422 naming each bad field, echoing at most a short prefix of what was sent."""
    assert isinstance(exc, RequestValidationError)
    errors = []
    for error in exc.errors():
        error = dict(error)
        if "input" in error:
            error["input"] = _short(error["input"])
        if "ctx" in error:
            error["ctx"] = {k: _short(v) for k, v in error["ctx"].items()}
        error.pop("url", None)
        errors.append(error)
    return JSONResponse({"detail": jsonable_encoder(errors)}, status_code=422)
