"""Ingest routes: POST /v1/webhooks/{source_id}, and GET for platforms' URL checks (WeCom)."""

from __future__ import annotations

import time
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, HTTPException, Path, Request, status
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from services.ingest.body import read_limited
from services.ingest.deps import runtime_of
from services.ingest.openapi import DESCRIPTION, REQUEST_BODY, RESPONSES, SUMMARY
from services.ingest.publish import publish
from services.ingest.telemetry import body_bytes, count_rejected
from services.ingest.webhooks import ANSWERS, URL_CHECKS, Delivery, enrich, read_delivery
from services.platforms.inbound import InvalidPayload, Unauthenticated

router = APIRouter(prefix="/v1", tags=["webhooks"])

# Bodies up to this size are verified and validated on the event loop, larger ones in a thread.
INLINE_BODY_BYTES = 16 * 1024


class WebhookReceipt(BaseModel):
    """Events put on the topic now, duplicates of earlier deliveries, platform events ignored."""

    accepted: int
    duplicates: int
    ignored: int = 0


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
    source_id: Annotated[
        str,
        Path(min_length=1, max_length=64, description="A `[[sources]]` id of QUNYUN_CONFIG"),
    ],
    request: Request,
) -> Any:
    runtime = runtime_of(request)
    source = runtime.sources.get(source_id)
    if source is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "unknown source")
    try:
        body = await read_limited(request)
    except HTTPException:
        count_rejected(source)
        raise
    body_bytes(source.platform).observe(len(body))
    try:
        if len(body) <= INLINE_BODY_BYTES:
            # Verifying and validating a small delivery takes tens of microseconds: cheaper
            # on the loop than a thread hop. Large batches go to a thread.
            read = read_delivery(
                source=source, headers=request.headers, body=body, query=request.query_params
            )
        else:
            read = await run_in_threadpool(
                read_delivery,
                source=source,
                headers=request.headers,
                body=body,
                query=request.query_params,
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
    source_id: Annotated[
        str,
        Path(min_length=1, max_length=64, description="A `[[sources]]` id of QUNYUN_CONFIG"),
    ],
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
