"""The delivery REST API: thin routes over deliveries.py (check, delegate, commit, wake).

Use cases raise NotFound/Conflict (404/409, mapped once by the app) and never commit;
each route commits, then wakes the dispatcher so queued work starts at once.
Operations routes (/healthz, /readyz, /metrics) come from the app factory.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, status

from services.common.deps import ReadGroup, SessionDep, WriteGroup
from services.delivery import deliveries
from services.delivery.deps import ConfigDep, WakeDep
from services.delivery.schemas import (
    MAX_TEXT,
    DeliveriesPublic,
    DeliveryPublic,
    MessageAccepted,
    MessageCreate,
    Outcome,
)

router = APIRouter(prefix="/v1/groups/{group_id}", tags=["delivery"])

DeliveryId = Annotated[str, Path(min_length=1, max_length=40, description="The delivery's id")]
Limit = Annotated[int, Query(ge=1, le=500, description="Page size")]
Cursor = Annotated[str | None, Query(max_length=64, description="next_cursor of the previous page")]
RefId = Annotated[str | None, Query(min_length=1, max_length=255, description="Only this record")]
Responses = dict[int | str, dict[str, Any]]


def _error(description: str, detail: str) -> dict[str, Any]:
    """A documented error answer: `{"detail": …}` with an example."""
    schema = {"$ref": "#/components/schemas/HTTPError"}
    return {
        "description": description,
        "content": {"application/json": {"schema": schema, "example": {"detail": detail}}},
    }


NOT_FOUND: Responses = {
    404: _error("No delivery by this id in this group", "no delivery 'dl_x' in group 'telegram:-1'")
}
NOT_RETRYABLE: Responses = {
    409: _error(
        "The delivery is under way or ended delivered, recorded, unsupported or expired",
        "delivery 'dl_x' is delivered: nothing to retry",
    )
}
NO_SOURCE: Responses = {
    422: _error(
        "Blank or too long text, or no source to post through (none named, none known)",
        "no source known for group 'telegram:-1': name one",
    )
}


@router.get(
    "/deliveries",
    response_model=DeliveriesPublic,
    summary="List the group's deliveries",
    description=(
        "Every record delivery carried out (or is carrying out) for the group, newest "
        "first: moderation actions, campaign notifications and messages posted here. "
        "Filter by `outcome` (e.g. `failed` or `forbidden` to find what needs an operator) "
        "or by `ref_id` (the record's id, as on its receipt). `outcome` is null while the "
        "record is still under way. Cursor-paginated."
    ),
)
def list_deliveries(
    group_id: ReadGroup,
    session: SessionDep,
    outcome: Annotated[Outcome | None, Query(description="Only this outcome")] = None,
    ref_id: RefId = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> DeliveriesPublic:
    rows, next_cursor = deliveries.list_deliveries(
        session, group_id=group_id, outcome=outcome, ref_id=ref_id, limit=limit, cursor=cursor
    )
    return DeliveriesPublic(
        deliveries=[DeliveryPublic.of(r) for r in rows], next_cursor=next_cursor
    )


@router.post(
    "/deliveries/{delivery_id}/retry",
    response_model=DeliveryPublic,
    status_code=status.HTTP_202_ACCEPTED,
    responses={**NOT_FOUND, **NOT_RETRYABLE},
    summary="Carry out a failed delivery again",
    description=(
        "For a delivery that ended `failed`, `forbidden` or `no_route`, once the operator "
        "fixed what stopped it (the bot's admin rights, the source's credentials): the "
        "record is queued again, behind what its group already has queued, and carried out "
        "from the step that failed. Its new "
        "receipt has the same `ref_id`, with `attempts` counting on. Any other delivery "
        "answers 409; an unknown id 404."
    ),
)
def retry_delivery(
    group_id: WriteGroup, delivery_id: DeliveryId, session: SessionDep, wake: WakeDep
) -> DeliveryPublic:
    row = deliveries.retry_delivery(session, group_id=group_id, delivery_id=delivery_id)
    public = DeliveryPublic.of(row)
    session.commit()
    wake()
    return public


@router.post(
    "/messages",
    response_model=MessageAccepted,
    status_code=status.HTTP_202_ACCEPTED,
    responses=NO_SOURCE,
    summary="Post a message in the group now",
    description=(
        "Queues a post carried out and receipted like a campaign notification (paced, "
        "retried, one receipt whose `ref_id` is the answered `id`; find it with "
        "`GET …/deliveries?ref_id=`). It goes through `source`, or else the source of the "
        "latest record delivery carried for the group; 422 when no source is named and "
        "none is known, when the named source is not configured, or for blank text "
        f"(at most {MAX_TEXT} characters). `reply_to` is a platform message id to answer."
    ),
)
def post_message(
    group_id: WriteGroup, body: MessageCreate, session: SessionDep, config: ConfigDep, wake: WakeDep
) -> MessageAccepted:
    try:
        message_id = deliveries.post_message(
            session,
            config=config,
            group_id=group_id,
            text=body.text,
            reply_to=body.reply_to,
            source=body.source,
        )
    except deliveries.NoSource as exc:
        raise HTTPException(422, str(exc)) from None
    session.commit()
    wake()
    return MessageAccepted(id=message_id)
