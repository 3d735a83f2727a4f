"""The double's ASGI app: the five platform APIs plus a JSON admin API and an HTML page.

Admin API (under `/_double`):
- `GET /state`, `GET /groups/{platform}/{chat}`: what each fake group looks like.
- `POST /groups/{platform}/{chat}/messages` `{"member", "text", "id"?}`: seed a member's message.
- `POST /groups/{platform}/{chat}/members` `{"member"}`: add a member.
- `POST /groups/{platform}/{chat}/join_requests` `{"member", "flag"?}`: a pending request.
- `GET /calls?platform=&method=&chat=`: every call with its timestamp.
- `POST /faults` (fields of `Fault`), `DELETE /faults`; `POST /reset`.
"""

from __future__ import annotations

import html
from dataclasses import asdict, fields
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from tools.platform_double import feishu, onebot, slack, telegram, wecom
from tools.platform_double.state import DoubleState, Fault

FAULT_FIELDS = {f.name for f in fields(Fault)}


class AdminApi:
    """The JSON admin API tests and `make demo` use to seed, inspect and break the double."""

    def __init__(self, state: DoubleState) -> None:
        self.state = state

    async def everything(self, request: Request) -> Response:
        with self.state.lock:
            return JSONResponse({"groups": [g.to_json() for g in self.state.groups.values()]})

    async def one_group(self, request: Request) -> Response:
        p = request.path_params
        with self.state.lock:
            return JSONResponse(self.state.group(p["platform"], p["chat"]).to_json())

    async def seed(self, request: Request) -> Response:
        p, body = request.path_params, await request.json()
        message = self.state.seed_message(
            p["platform"],
            p["chat"],
            str(body["member"]),
            body.get("text", ""),
            str(body.get("id", "")),
        )
        return JSONResponse({"id": message.id}, status_code=201)

    async def member(self, request: Request) -> Response:
        p, body = request.path_params, await request.json()
        with self.state.lock:
            self.state.group(p["platform"], p["chat"]).members.add(str(body["member"]))
        return Response(status_code=204)

    async def join_request(self, request: Request) -> Response:
        p, body = request.path_params, await request.json()
        user = str(body["member"])
        with self.state.lock:
            self.state.group(p["platform"], p["chat"]).join_requests[user] = "pending"
            flag = str(body.get("flag") or f"flag-{p['chat']}-{user}")
            self.state.flags[flag] = (p["chat"], user)
        return JSONResponse({"flag": flag}, status_code=201)

    async def calls(self, request: Request) -> Response:
        q = request.query_params
        seen = self.state.calls_of(q.get("platform"), q.get("method"), q.get("chat"))
        return JSONResponse({"calls": [asdict(c) for c in seen]})

    async def add_fault(self, request: Request) -> Response:
        body: dict[str, Any] = await request.json()
        unknown = set(body) - FAULT_FIELDS
        if unknown:
            return JSONResponse({"error": f"unknown fields {sorted(unknown)}"}, status_code=422)
        self.state.add_fault(Fault(**body))
        return Response(status_code=204)

    async def clear_faults(self, request: Request) -> Response:
        with self.state.lock:
            self.state.faults.clear()
        return Response(status_code=204)

    async def reset(self, request: Request) -> Response:
        self.state.reset()
        return Response(status_code=204)


def admin_routes(state: DoubleState) -> list[Route]:
    """The admin API's routes."""
    api = AdminApi(state)
    base = "/_double"
    group = base + "/groups/{platform}/{chat}"
    return [
        Route(base + "/state", api.everything),
        Route(group, api.one_group),
        Route(group + "/messages", api.seed, methods=["POST"]),
        Route(group + "/members", api.member, methods=["POST"]),
        Route(group + "/join_requests", api.join_request, methods=["POST"]),
        Route(base + "/calls", api.calls),
        Route(base + "/faults", api.add_fault, methods=["POST"]),
        Route(base + "/faults", api.clear_faults, methods=["DELETE"]),
        Route(base + "/reset", api.reset, methods=["POST"]),
        Route("/", lambda request: page(state)),
    ]


def page(state: DoubleState) -> HTMLResponse:
    """A plain page of every fake group: ads gone, offenders muted, posts made."""
    rows = []
    with state.lock:
        for group in state.groups.values():
            view = group.to_json()
            gone = [m for m in view["messages"] if m["deleted"]]
            posts = "".join(f"<li>{post_line(p)}</li>" for p in view["posts"])
            struck = "".join(
                f"<li><del>{html.escape(m['text'] or m['id'])}</del></li>" for m in gone
            )
            rows.append(
                f"<section><h2>{html.escape(group.platform)}: {html.escape(group.chat)}</h2>"
                f"<p>messages deleted: {len(gone)} of {len(view['messages'])}; "
                f"muted: {html.escape(', '.join(view['muted']) or '—')}; "
                f"banned: {html.escape(', '.join(view['banned']) or '—')}; "
                f"removed: {html.escape(', '.join(view['removed']) or '—')}</p>"
                f"<ul>{struck}</ul><p>posts by the bot:</p><ol>{posts}</ol></section>"
            )
        total = len(state.calls)
    body = "".join(rows) or "<p>No group has been acted on yet.</p>"
    return HTMLResponse(
        f"<!doctype html><meta charset=utf-8><title>Platform double</title>"
        f"<h1>Platform double</h1><p>{total} calls received.</p>{body}"
    )


def post_line(post: dict[str, Any]) -> str:
    """One post on the page, with what it replies to."""
    line = html.escape(post["text"])
    if post["reply_to"]:
        line += f" <small>(reply to {html.escape(str(post['reply_to']))})</small>"
    return line


def build_app(state: DoubleState) -> Starlette:
    """The double: Telegram, Slack, Feishu, OneBot and WeCom APIs side by side on one server."""
    routes = admin_routes(state)
    for platform in (telegram, slack, feishu, onebot, wecom):
        routes += platform.routes(state)
    return Starlette(routes=routes)
