"""Membership routes: join requests, lurker clean-ups (per group) and shared blocklists.

Thin routes: check, delegate, commit, wake the outbox relay. Blocklists span groups, so
only tokens whose groups are `["*"]` may read or change them (403 for the others).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response, status
from sqlmodel import Field

from services.common.auth import Principal
from services.common.db import utcnow
from services.common.deps import (
    PrincipalDep,
    ReadEveryGroup,
    ReadGroup,
    SessionDep,
    SettingsDep,
    WriteEveryGroup,
    WriteGroup,
)
from services.moderation import blocklists, cleanups, join_requests, rulesets
from services.moderation.api import Cursor, Limit, _error
from services.moderation.deps import ModerationStateDep
from services.moderation.gatekeeping import propagate
from services.moderation.membership_models import (
    BlocklistCreate,
    BlocklistPublic,
    BlocklistsPublic,
    CleanupCreate,
    CleanupPublic,
    CleanupsPublic,
    CleanupStatus,
    CleanupSummaryPublic,
    EntriesPublic,
    EntryCreate,
    EntryPublic,
    JoinRequestPublic,
    JoinRequestsPublic,
    JoinRequestStatus,
    ListName,
)

COMMON: dict[int | str, dict[str, Any]] = {
    401: _error("Missing or unknown bearer token"),
    403: _error("The token lacks the scope or the group"),
    503: _error("Redis, the database or Kafka is unavailable; see Retry-After"),
}

MemberCursor = Annotated[
    str | None, Query(max_length=256, description="next_cursor of the previous page")
]
router = APIRouter(prefix="/v1/groups/{group_id}", tags=["membership"], responses=COMMON)
blocklist_router = APIRouter(prefix="/v1/blocklists", tags=["blocklists"], responses=COMMON)


# --- join requests ------------------------------------------------------------------

REQUEST_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: _error("`join request not found`: no such request in this group")
}


@router.get(
    "/join-requests", response_model=JoinRequestsPublic, summary="The group's join requests"
)
def list_join_requests(
    group_id: ReadGroup,
    session: SessionDep,
    status_: Annotated[JoinRequestStatus | None, Query(alias="status")] = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Any:
    """Join requests, newest first (those the policy or a blocklist decided too); `status`
    narrows them to `pending`, `approved` or `declined`."""
    found, next_cursor = join_requests.list_requests(
        session=session, group_id=group_id, status=status_, limit=limit, cursor=cursor
    )
    return JoinRequestsPublic(
        join_requests=[JoinRequestPublic.model_validate(r, from_attributes=True) for r in found],
        next_cursor=next_cursor,
    )


def _decide(
    approve: bool,
    group_id: str,
    request_id: str,
    principal: Principal,
    session: SessionDep,
    settings: SettingsDep,
    state: ModerationStateDep,
) -> JoinRequestPublic:
    request = join_requests.decide(
        session=session,
        group_id=group_id,
        request_id=request_id,
        approve=approve,
        by=principal.name,
        policy=rulesets.get_policy(session=session, group_id=group_id),
        topic=settings.topic_moderation_actions,
    )
    session.commit()
    state.relay.wake()
    return JoinRequestPublic.model_validate(request, from_attributes=True)


DECIDED = {
    **REQUEST_NOT_FOUND,
    409: _error("The request was decided already, or (approve) the member is blocklisted"),
}


@router.post(
    "/join-requests/{request_id}/approve",
    response_model=JoinRequestPublic,
    summary="Approve a pending join request",
    responses=DECIDED,
)
def approve_join_request(
    group_id: WriteGroup,
    request_id: Annotated[str, Path(max_length=40)],
    principal: PrincipalDep,
    session: SessionDep,
    settings: SettingsDep,
    state: ModerationStateDep,
) -> Any:
    """Approve: a case (`by` = the token's name) whose `approve_join` action carries the
    platform's `request_ref`. 409 when already decided, or when a blocklist the group
    subscribes to lists the applicant."""
    return _decide(True, group_id, request_id, principal, session, settings, state)


@router.post(
    "/join-requests/{request_id}/decline",
    response_model=JoinRequestPublic,
    summary="Decline a pending join request",
    responses=DECIDED,
)
def decline_join_request(
    group_id: WriteGroup,
    request_id: Annotated[str, Path(max_length=40)],
    principal: PrincipalDep,
    session: SessionDep,
    settings: SettingsDep,
    state: ModerationStateDep,
) -> Any:
    """Decline: a case whose `decline_join` action carries `request_ref`. 409 when decided."""
    return _decide(False, group_id, request_id, principal, session, settings, state)


# --- clean-ups ----------------------------------------------------------------------

CLEANUP_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: _error("`cleanup not found`: no such clean-up in this group")
}


@router.post(
    "/cleanups",
    response_model=CleanupPublic,
    status_code=status.HTTP_201_CREATED,
    summary="Preview a lurker clean-up",
)
def create_cleanup(
    group_id: WriteGroup,
    body: CleanupCreate,
    principal: PrincipalDep,
    session: SessionDep,
    settings: SettingsDep,
) -> Any:
    """List the current members who joined at least `inactive_days` ago and sent no message
    on the last `inactive_days` local days (`never_spoke_only`: never), exempt members left
    out — metrics' `members/dormant?days=` for the same day, less members who joined within
    the window. Nothing happens until `start`. `inactive_days` 1..400, `per_minute` 1..6000."""
    cleanup = cleanups.preview(
        session=session,
        group_id=group_id,
        body=body,
        by=principal.name,
        policy=rulesets.get_policy(session=session, group_id=group_id),
        tz=settings.tz,
        now=utcnow(),
    )
    session.commit()
    return cleanups.present(session, cleanup)


@router.get("/cleanups", response_model=CleanupsPublic, summary="The group's clean-ups")
def list_cleanups(
    group_id: ReadGroup,
    session: SessionDep,
    status_: Annotated[CleanupStatus | None, Query(alias="status")] = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Any:
    """Clean-ups, newest first; `status` narrows them to `preview`, `running`, `done` or
    `cancelled`. Items leave out `members` (a preview lists up to 10,000): read one
    clean-up with `GET …/cleanups/{id}` for its members."""
    found, next_cursor = cleanups.list_cleanups(
        session=session, group_id=group_id, status=status_, limit=limit, cursor=cursor
    )
    return CleanupsPublic(
        cleanups=[CleanupSummaryPublic.model_validate(c, from_attributes=True) for c in found],
        next_cursor=next_cursor,
    )


@router.get(
    "/cleanups/{cleanup_id}",
    response_model=CleanupPublic,
    summary="A clean-up's status and progress",
    responses=CLEANUP_NOT_FOUND,
)
def read_cleanup(
    group_id: ReadGroup, cleanup_id: Annotated[str, Path(max_length=40)], session: SessionDep
) -> Any:
    """`status` (`preview`, `running`, `done`, `cancelled`), `kicked` so far, `skipped`
    (listed members who left meanwhile or became exempt), and the listed members."""
    cleanup = cleanups.get_cleanup(session=session, group_id=group_id, cleanup_id=cleanup_id)
    return cleanups.present(session, cleanup)


@router.post(
    "/cleanups/{cleanup_id}/start",
    response_model=CleanupPublic,
    summary="Start kicking the previewed members",
    responses={**CLEANUP_NOT_FOUND, 409: _error("The clean-up is not a preview")},
)
def start_cleanup(
    group_id: WriteGroup,
    cleanup_id: Annotated[str, Path(max_length=40)],
    principal: PrincipalDep,
    session: SessionDep,
) -> Any:
    """Kick the previewed members, at most `per_minute` a minute, a case each (reason
    `cleanup`, `by` = the token's name, no notice posted)."""
    cleanup = cleanups.start(
        session=session, group_id=group_id, cleanup_id=cleanup_id, by=principal.name
    )
    session.commit()
    return cleanups.present(session, cleanup)


@router.post(
    "/cleanups/{cleanup_id}/cancel",
    response_model=CleanupPublic,
    summary="Stop a preview or a running clean-up",
    responses={**CLEANUP_NOT_FOUND, 409: _error("The clean-up is done or cancelled already")},
)
def cancel_cleanup(
    group_id: WriteGroup, cleanup_id: Annotated[str, Path(max_length=40)], session: SessionDep
) -> Any:
    """No further kicks: the members kicked so far stay out, the others stay listed as
    they were; a clean-up done or cancelled already is a 409."""
    cleanup = cleanups.cancel(session=session, group_id=group_id, cleanup_id=cleanup_id)
    session.commit()
    return cleanups.present(session, cleanup)


# --- blocklists ---------------------------------------------------------------------


ListPath = Annotated[ListName, Path(description="The blocklist's name")]
LIST_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: _error("No blocklist of this name")}


class EntryAdded(EntryPublic):
    banned_in: list[str] = Field(description="The subscribed groups the member was banned in")


@blocklist_router.get("", response_model=BlocklistsPublic, summary="The blocklists")
def list_blocklists(
    principal: ReadEveryGroup, session: SessionDep, limit: Limit = 100, cursor: Cursor = None
) -> Any:
    """Every blocklist by name, a page at a time (`next_cursor` is null on the last)."""
    found, next_cursor = blocklists.list_lists(session=session, limit=limit, cursor=cursor)
    return BlocklistsPublic(
        blocklists=[BlocklistPublic.model_validate(b, from_attributes=True) for b in found],
        next_cursor=next_cursor,
    )


@blocklist_router.post(
    "",
    response_model=BlocklistPublic,
    status_code=status.HTTP_201_CREATED,
    summary="Create a blocklist",
    responses={409: _error("A blocklist of this name exists")},
)
def create_blocklist(principal: WriteEveryGroup, body: BlocklistCreate, session: SessionDep) -> Any:
    """An empty list; groups subscribe with policy `blocklists: [name]`."""
    created = blocklists.create_list(session=session, name=body.name, by=principal.name)
    session.commit()
    return created


@blocklist_router.get(
    "/{name}/entries",
    response_model=EntriesPublic,
    summary="A blocklist's entries",
    responses=LIST_NOT_FOUND,
)
def list_entries(
    principal: ReadEveryGroup,
    name: ListPath,
    session: SessionDep,
    limit: Limit = 100,
    cursor: MemberCursor = None,
) -> Any:
    """The list's members by member id, with why and by whom they were listed (a ban shared
    by `share_bans_to` shows `share:<group>`); 404 for an unknown list."""
    found, next_cursor = blocklists.list_entries(
        session=session, name=name, limit=limit, cursor=cursor
    )
    return EntriesPublic(
        entries=[EntryPublic.model_validate(e, from_attributes=True) for e in found],
        next_cursor=next_cursor,
    )


@blocklist_router.post(
    "/{name}/entries",
    response_model=EntryAdded,
    status_code=status.HTTP_201_CREATED,
    summary="List a member (banned at once in every subscribed group they are in)",
    responses={**LIST_NOT_FOUND, 409: _error("The member is on the list already")},
)
def add_entry(
    principal: WriteEveryGroup,
    name: ListPath,
    body: EntryCreate,
    session: SessionDep,
    settings: SettingsDep,
    state: ModerationStateDep,
) -> Any:
    """List the member: they are banned (a case each) in every group subscribed to the list
    where they are a member now, their pending join requests there are declined, and joins
    or join requests of theirs in those groups are answered with a ban or a decline."""
    entry = blocklists.add_entry(session=session, name=name, entry_in=body, by=principal.name)
    blocklists.claim_entry(session=session, name=name, member_id=body.member_id)
    banned = propagate(session, entry, topic=settings.topic_moderation_actions, by=principal.name)
    session.commit()
    state.relay.wake()
    return EntryAdded.model_validate(entry, from_attributes=True, update={"banned_in": banned})


@blocklist_router.delete(
    "/{name}/entries/{member_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Take a member off a blocklist",
    responses={404: _error("No blocklist of this name, or the member is not on it")},
)
def remove_entry(
    principal: WriteEveryGroup,
    name: ListPath,
    member_id: Annotated[str, Path(min_length=1, max_length=256)],
    session: SessionDep,
) -> Response:
    """The member is no longer stopped; bans already made stay (unban them by hand)."""
    blocklists.remove_entry(session=session, name=name, member_id=member_id)
    session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
