"""The webhook POSTs' own lane through the app: FastAPI's routing and request handling skipped.

Profiled under single-event load, about a third of ingest's event-loop CPU went to the
layers between uvicorn and the route's function: FastAPI's router matching every route
in turn, the request/response wrapper, parameter solving and validation (for one path
parameter), the exit stack. The webhook needs none of it: its one parameter is the last
path segment and it reads its body itself. `WebhookLane` sits innermost among the app's
middleware, so the Prometheus request metrics, the body-limit exemption and CORS still
wrap it, and answers `POST /v1/webhooks/{source_id}` itself:

- the same code as the documented route (`api.answer_webhook`), whose OpenAPI entry stays;
- errors go through Starlette's `ExceptionMiddleware` with the app's own handlers (built on
  the error path only), so every 4xx and 503 is the one the route would give;
- `scope["route"]` is the documented route, as routing would set it, so the request
  metrics name the route template;
- a source id the route's path parameter refuses (empty, over 64 characters, with a `/`)
  goes on to FastAPI, which answers as before (404, 422).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette._utils import get_route_path
from starlette.datastructures import Headers
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from services.ingest import api
from services.ingest.deps import runtime_in

_PREFIX = api.WEBHOOK_PATH.removesuffix("{source_id}")


def _documented_route() -> APIRoute:
    for route in api.router.routes:
        if (
            isinstance(route, APIRoute)
            and route.path == api.WEBHOOK_PATH
            and "POST" in (route.methods or ())
        ):
            return route
    raise LookupError(f"no POST {api.WEBHOOK_PATH} in services.ingest.api")


class WebhookLane:
    """Answer webhook POSTs with `api.answer_webhook` directly; pass everything else on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._route = _documented_route()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            path = get_route_path(scope)
            if path.startswith(_PREFIX):
                source_id = path[len(_PREFIX) :]
                if 0 < len(source_id) <= api.MAX_SOURCE_ID and "/" not in source_id:
                    scope["route"] = self._route
                    scope["path_params"] = {"source_id": source_id}
                    await self._serve(scope, receive, send, source_id)
                    return
        await self.app(scope, receive, send)

    @staticmethod
    async def _serve(scope: Scope, receive: Receive, send: Send, source_id: str) -> None:
        app: FastAPI = scope["app"]
        try:
            response = await api.answer_webhook(
                runtime_in(app),
                source_id,
                headers=Headers(scope=scope),
                query_string=scope["query_string"],
                receive=receive,
            )
        except Exception as exc:  # noqa: BLE001 - answered by the app's own handlers
            await _answer_error(app, exc)(scope, receive, send)
            return
        await response(scope, receive, send)


def _answer_error(app: FastAPI, exc: Exception) -> ASGIApp:
    """Starlette's ExceptionMiddleware with the app's handlers, answering `exc`.

    The same handlers FastAPI gives its own ExceptionMiddleware (500 and `Exception` are
    ServerErrorMiddleware's); an exception none handles goes on up to it. Built on the
    error path only, so a 202 pays for no wrapper.
    """

    async def fail(scope: Scope, receive: Receive, send: Send) -> None:
        raise exc

    handlers: dict[Any, Any] = {
        key: handler
        for key, handler in app.exception_handlers.items()
        if key not in (500, Exception)
    }
    return ExceptionMiddleware(fail, handlers=handlers, debug=app.debug)
