"""The webhook POSTs' own lane through the app: FastAPI's routing and request handling skipped.

Profiled under single-event load, about a third of ingest's event-loop CPU went to the
layers between uvicorn and the route's function: FastAPI's router matching every route
in turn, the request/response wrapper, parameter solving and validation (for one path
parameter), the exit stack. The webhook needs none of it: its one parameter is the last
path segment and it reads its body itself. `WebhookLane` sits innermost among the app's
middleware, so the Prometheus request metrics, the body-limit exemption and CORS still
wrap it, and answers `POST /v1/webhooks/{source_id}` itself:

- the same code as the documented route (`api.answer_webhook`), whose OpenAPI entry stays;
- errors go through Starlette's `ExceptionMiddleware` with the app's own handlers, so every
  4xx and 503 is the one the route would give;
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
        self._handled: ExceptionMiddleware | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            path = get_route_path(scope)
            if path.startswith(_PREFIX):
                source_id = path[len(_PREFIX) :]
                if 0 < len(source_id) <= api.MAX_SOURCE_ID and "/" not in source_id:
                    scope["route"] = self._route
                    scope["path_params"] = {"source_id": source_id}
                    await self._handling(scope["app"])(scope, receive, send)
                    return
        await self.app(scope, receive, send)

    def _handling(self, app: FastAPI) -> ExceptionMiddleware:
        # Built at the first webhook, when every handler of the app is registered; the same
        # handlers FastAPI gives its ExceptionMiddleware (500 is ServerErrorMiddleware's).
        if self._handled is None:
            handlers: dict[Any, Any] = {
                key: handler
                for key, handler in app.exception_handlers.items()
                if key not in (500, Exception)
            }
            self._handled = ExceptionMiddleware(self._serve, handlers=handlers, debug=app.debug)
        return self._handled

    @staticmethod
    async def _serve(scope: Scope, receive: Receive, send: Send) -> None:
        response = await api.answer_webhook(
            runtime_in(scope["app"]),
            scope["path_params"]["source_id"],
            headers=Headers(scope=scope),
            query_string=scope["query_string"],
            receive=receive,
        )
        await response(scope, receive, send)
