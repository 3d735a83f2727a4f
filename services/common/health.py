"""The operations routes every service serves: /healthz, /readyz and /metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from services.common.observability import metrics_payload
from services.common.resources import Resources


def health_router() -> APIRouter:
    """Return the /healthz, /readyz and /metrics routes."""
    router = APIRouter(tags=["operations"])

    @router.get(
        "/healthz",
        summary="The process is alive",
        description="Answers 200 while the process serves HTTP; says nothing about dependencies.",
    )
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get(
        "/readyz",
        summary="Kafka, Redis, the database and the background loops are working",
        description="200 when every dependency answers and every background loop (consumers, "
        "outbox relays, schedulers) runs; else 503 with `detail` naming each problem, e.g. "
        '`{"kafka": "unreachable (ConnectionRefusedError)", "consumer:metrics": "starting"}`.',
        responses={503: {"description": "A dependency or loop is down; detail names it"}},
    )
    def readyz(request: Request) -> JSONResponse:
        resources: Resources = request.app.state.resources
        problems = resources.problems()
        if problems:
            return JSONResponse({"detail": problems}, status_code=503)
        return JSONResponse({"status": "ready"})

    @router.get(
        "/metrics",
        summary="Prometheus metrics",
        description="Prometheus text format: requests, consumers, producers and this "
        "service's own `qunyun_<service>_…` counters (docs/operating.md lists them).",
        response_class=Response,
    )
    def metrics() -> Response:
        body, content_type = metrics_payload()
        return Response(body, media_type=content_type)

    return router
