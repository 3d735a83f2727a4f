"""Ingest routes: POST /v1/webhooks/{source_id}, and GET for platforms' URL checks (WeCom)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, HTTPException, Path, Request, status
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import QueryParams
from starlette.types import Receive

from services.ingest.body import read_limited
from services.ingest.deps import Runtime, runtime_of
from services.ingest.openapi import DESCRIPTION, REQUEST_BODY, RESPONSES, SUMMARY
from services.ingest.publish import publish
from services.ingest.telemetry import body_bytes, count_rejected
from services.ingest.webhooks import (
    ANSWERS,
    QUERY_ADAPTERS,
    URL_CHECKS,
    Delivery,
    enrich,
    read_delivery,
)
from services.platforms.inbound import InvalidPayload, Unauthenticated

router = APIRouter(prefix="/v1", tags=["webhooks"])

# Bodies up to this size are verified and validated on the event loop, larger ones in a thread.
INLINE_BODY_BYTES = 16 * 1024


class WebhookReceipt(BaseModel):
    """Events put on the topic now, duplicates of earlier deliveries, platform events ignored."""

    accepted: int
    duplicates: int
    ignored: int = 0


WEBHOOK_PATH = "/v1/webhooks/{source_id}"
MAX_SOURCE_ID = 64
SourceId = Annotated[
    str,
    Path(min_length=1, max_length=MAX_SOURCE_ID, description="A `[[sources]]` id of QUNYUN_CONFIG"),
]


async def answer_webhook(
    runtime: Runtime,
    source_id: str,
    *,
    headers: Mapping[str, str],
    query_string: bytes,
    receive: Receive,
) -> Response:
    """Read, verify, validate, deduplicate and produce one delivery; return its answer.

    Raises HTTPException (404, 413, 401, 422) or the Redis/Kafka errors the app maps to
    503. Both ways in share it: `WebhookLane` (lane.py), which serves the webhooks, and
    the documented route below.
    """
    source = runtime.sources.get(source_id)
    if source is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "unknown source")
    try:
        body = await read_limited(receive, headers)
    except HTTPException:
        count_rejected(source)
        raise
    body_bytes(source.platform).observe(len(body))
    # Only query-signed platforms (WeCom) read the query string.
    query = QueryParams(query_string) if source.platform in QUERY_ADAPTERS else None
    try:
        if len(body) <= INLINE_BODY_BYTES:
            # Verifying and validating a small delivery takes tens of microseconds: cheaper
            # on the loop than a thread hop. Large batches go to a thread.
            read = read_delivery(source=source, headers=headers, body=body, query=query)
        else:
            read = await run_in_threadpool(
                read_delivery, source=source, headers=headers, body=body, query=query
            )
    except Unauthenticated as exc:
        count_rejected(source)
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(exc)) from None
    except InvalidPayload as exc:
        count_rejected(source)
        raise HTTPException(422, exc.details) from None
    if isinstance(read, Delivery):
        read = await enrich(source=source, delivery=read)
        receipt = await publish(source=source, delivery=read, runtime=runtime)
    else:
        receipt = read
    if receipt.challenge is not None:
        return JSONResponse(receipt.challenge, status_code=status.HTTP_200_OK)
    if (answer := ANSWERS.get(source.platform)) is not None:
        return answer()
    # The receipt is built here, so FastAPI's response-model validation is skipped.
    return Response(
        orjson.dumps(
            {
                "accepted": receipt.accepted,
                "duplicates": receipt.duplicates,
                "ignored": receipt.ignored,
            }
        ),
        status_code=status.HTTP_202_ACCEPTED,
        media_type="application/json",
    )


@router.post(
    "/webhooks/{source_id}",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=WebhookReceipt,
    responses=RESPONSES,
    openapi_extra=REQUEST_BODY,
    summary=SUMMARY,
    description=DESCRIPTION,
)
async def receive_webhook(
    source_id: SourceId,
    request: Request,
) -> Any:
    """The documented webhook route.

    In the app, `WebhookLane` answers every POST whose source id fits this route before
    FastAPI routes it, so this runs only where the lane is not installed; ids it refuses
    (longer than 64 characters) still get FastAPI's 422 from here.
    """
    return await answer_webhook(
        runtime_of(request),
        source_id,
        headers=request.headers,
        query_string=request.scope["query_string"],
        receive=request.receive,
    )


@router.get(
    "/webhooks/{source_id}",
    response_class=PlainTextResponse,
    responses={
        401: {"description": "Bad or stale msg_signature, or a ReceiveId not the corp id"},
        404: {"description": "Unknown source"},
        405: {"description": "The source's platform makes no URL check (POST only)"},
    },
    summary="Answer a platform's URL check (WeCom)",
    description=(
        "WeCom verifies a callback URL with `GET ?msg_signature&timestamp&nonce&echostr`: "
        "the answer is the decrypted echostr as text/plain, once msg_signature and the "
        "ReceiveId (the source's `app_id`) check out."
    ),
)
async def verify_webhook_url(
    source_id: SourceId,
    request: Request,
) -> Response:
    source = runtime_of(request).sources.get(source_id)
    if source is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "unknown source")
    check = URL_CHECKS.get(source.platform)
    if check is None:
        raise HTTPException(
            status.HTTP_405_METHOD_NOT_ALLOWED, f"{source.platform} sources take POST only"
        )
    try:
        echo = check(source=source, query=request.query_params, now=time.time())
    except Unauthenticated as exc:
        count_rejected(source)
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(exc)) from None
    return PlainTextResponse(echo)
