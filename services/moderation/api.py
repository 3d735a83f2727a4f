"""Moderation routes: rules, policy, rules/test, cases and reversal.

Each route owns its transaction: the service functions flush, the route commits,
then tells the rest (a rule-set version bump, the outbox relay's wake-up).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import AwareDatetime, BaseModel
from sqlmodel import Session

from services.common.contracts.actions import PublishedAction
from services.common.deps import (
    PrincipalDep,
    ReadGroup,
    RedisDep,
    SessionDep,
    SettingsDep,
    WriteGroup,
)
from services.moderation import blocklists, manual, reports, rulesets
from services.moderation import cases as case_store
from services.moderation.deps import ModerationState, ModerationStateDep
from services.moderation.enforcement import present
from services.moderation.examples import (
    CREATE_EXAMPLES,
    POLICY_EXAMPLES,
    SAMPLE_EXAMPLES,
    UPDATE_EXAMPLES,
)
from services.moderation.models import (
    CaseFilters,
    CasePublic,
    CasesPublic,
    PolicyPublic,
    PolicyUpdate,
    ReportsPublic,
    ReportStatus,
    ReversalPublic,
    ReverseRequest,
    RulePublic,
    RulesPublic,
)
from services.moderation.params import InvalidParams
from services.moderation.rule_bodies import RuleCreate, RuleUpdate
from services.moderation.rulebook_cache import announce_change
from services.moderation.telemetry import MANUAL_ACTIONS
from services.moderation.tracking import Tracker
from services.moderation.trial import SampleEvent, TestResult, judge_sample


class HTTPErrorBody(BaseModel):
    """An error answer: `detail` is a message, or FastAPI's list of bad fields for 422."""

    detail: Any


def _error(description: str) -> dict[str, Any]:
    return {"model": HTTPErrorBody, "description": description}


router = APIRouter(
    prefix="/v1/groups/{group_id}",
    tags=["moderation"],
    responses={
        400: _error("The body cannot be parsed"),
        401: _error("Missing or unknown bearer token"),
        403: _error("The token lacks the scope or the group"),
        503: _error("Redis, the database or Kafka is unavailable; see Retry-After"),
    },
)

Limit = Annotated[int, Query(ge=1, le=500, description="Page size")]
Cursor = Annotated[str | None, Query(max_length=64, description="next_cursor of the previous page")]
RULE_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: _error("`rule not found`: no rule with this id in this group")
}
CASE_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: _error("`case not found`: no case with this id in this group")
}


def _commit_change(session: Session, state: ModerationState, client: Any, group_id: str) -> None:
    """Commit a rule or policy change, then have every consumer rebuild the group's rulebook."""
    session.commit()
    announce_change(client=client, group_id=group_id)
    state.rulebooks.invalidate(group_id)


@router.get("/rules", response_model=RulesPublic, summary="List the group's rules")
def list_rules(
    group_id: ReadGroup, session: SessionDep, limit: Limit = 100, cursor: Cursor = None
) -> Any:
    """The group's rules in creation order, a page at a time (empty for a group with none).

    Pass `next_cursor` as `cursor` for the next page; it is null on the last one.
    """
    rules, next_cursor = rulesets.list_rules(
        session=session, group_id=group_id, limit=limit, cursor=cursor
    )
    return RulesPublic(rules=[RulePublic.model_validate(r) for r in rules], next_cursor=next_cursor)


@router.post(
    "/rules",
    response_model=RulePublic,
    status_code=status.HTTP_201_CREATED,
    summary="Create a rule",
)
def create_rule(
    group_id: WriteGroup,
    rule_in: Annotated[RuleCreate, Body(openapi_examples=CREATE_EXAMPLES)],
    session: SessionDep,
    client: RedisDep,
    state: ModerationStateDep,
) -> Any:
    """Add a rule to the group; it judges the next event the consumer reads.

    `params` depend on `kind` (see the schema of each kind); a `mute` without
    `mute_seconds` mutes for 600 s. Run it in `shadow` mode first to see what it would
    catch (its cases are recorded, nothing is enforced). A bad rule is a 422 naming the
    field: `body.kind`, or `body.params.<field>` for params that do not fit the kind.
    """
    try:
        rule = rulesets.create_rule(session=session, group_id=group_id, rule_in=rule_in)
    except InvalidParams as exc:
        raise RequestValidationError(exc.errors) from exc
    _commit_change(session, state, client, group_id)
    return rule


@router.get(
    "/rules/{rule_id}", response_model=RulePublic, summary="Get a rule", responses=RULE_NOT_FOUND
)
def read_rule(group_id: ReadGroup, rule_id: str, session: SessionDep) -> Any:
    """One rule of the group, with its params filled with their defaults."""
    return rulesets.get_rule(session=session, group_id=group_id, rule_id=rule_id)


@router.patch(
    "/rules/{rule_id}",
    response_model=RulePublic,
    summary="Change a rule",
    responses=RULE_NOT_FOUND,
)
def update_rule(
    group_id: WriteGroup,
    rule_id: str,
    rule_in: Annotated[RuleUpdate, Body(openapi_examples=UPDATE_EXAMPLES)],
    session: SessionDep,
    client: RedisDep,
    state: ModerationStateDep,
) -> Any:
    """Change the given fields; absent (or null) fields keep their value.

    `params` is replaced as a whole and checked against the rule's kind: the new `kind`
    when the body has one, else the stored kind (so changing `kind` alone is a 422 when
    the stored params do not fit the new kind).
    """
    try:
        rule = rulesets.update_rule(
            session=session, group_id=group_id, rule_id=rule_id, rule_in=rule_in
        )
    except InvalidParams as exc:
        raise RequestValidationError(exc.errors) from exc
    _commit_change(session, state, client, group_id)
    return rule


@router.delete(
    "/rules/{rule_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a rule",
    responses=RULE_NOT_FOUND,
)
def delete_rule(
    group_id: WriteGroup,
    rule_id: str,
    session: SessionDep,
    client: RedisDep,
    state: ModerationStateDep,
) -> Response:
    """Delete the rule; its past cases keep its id and name. To pause a rule, PATCH
    `enabled: false` instead."""
    rulesets.delete_rule(session=session, group_id=group_id, rule_id=rule_id)
    _commit_change(session, state, client, group_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/policy", response_model=PolicyPublic, summary="The group's strike policy")
def read_policy(group_id: ReadGroup, session: SessionDep) -> Any:
    """The strike window, the ladder and the exempt members; a group never configured has
    the default policy (30 days, no ladder, nobody exempt)."""
    return rulesets.get_policy(session=session, group_id=group_id)


@router.put("/policy", response_model=PolicyPublic, summary="Replace the group's strike policy")
def put_policy(
    group_id: WriteGroup,
    policy_in: Annotated[PolicyUpdate, Body(openapi_examples=POLICY_EXAMPLES)],
    session: SessionDep,
    client: RedisDep,
    state: ModerationStateDep,
) -> Any:
    """Replace the whole policy (absent fields take their defaults).

    A `warn` adds a strike; when a member's strikes within `strike_window_days` reach a
    ladder step, that step's action is applied too. `exempt_members` (admins) are never
    actioned. Two steps with the same `strikes` are a 422, and so is a blocklist in
    `blocklists` or `share_bans_to` that does not exist. `reports` turns member reports
    (举报) on: a reply starting with one of its `keywords` reports the replied-to message,
    and at `threshold` distinct reporters (≥ 1) its `action` hits the author (see
    GET …/reports).
    """
    try:
        blocklists.check_subscriptions(session=session, policy_in=policy_in)
    except InvalidParams as exc:
        raise RequestValidationError(exc.errors) from exc
    policy = rulesets.put_policy(session=session, group_id=group_id, policy_in=policy_in)
    _commit_change(session, state, client, group_id)
    return policy


@router.post("/rules/test", response_model=TestResult, summary="Judge a sample, no side effects")
def test_rules(
    group_id: WriteGroup,
    sample: Annotated[SampleEvent, Body(openapi_examples=SAMPLE_EXAMPLES)],
    session: SessionDep,
    client: RedisDep,
    state: ModerationStateDep,
) -> Any:
    """Judge a sample message, join or rename with the group's rules as the consumer would.

    Nothing is stored, counted or published: the member's windows (flood, duplicates)
    and join time are read as they stand, strikes from the cases. The answer says which
    rules matched (and which shadow rules), the action, and the ladder step it would reach.
    """
    rulebook = state.rulebooks.rulebooks_for([group_id])[group_id]
    return judge_sample(
        session=session,
        tracker=Tracker(client),
        rulebook=rulebook,
        group_id=group_id,
        sample=sample,
    )


@router.get("/cases", response_model=CasesPublic, summary="The group's cases, newest first")
def list_cases(
    group_id: ReadGroup,
    session: SessionDep,
    member_id: Annotated[str | None, Query(min_length=1, max_length=256)] = None,
    action: Annotated[PublishedAction | None, Query(description="The case's action")] = None,
    rule_id: Annotated[
        str | None, Query(min_length=1, max_length=40, description="A rule the case lists")
    ] = None,
    created_from: Annotated[
        AwareDatetime | None, Query(alias="from", description="Made at or after (ISO 8601)")
    ] = None,
    created_to: Annotated[
        AwareDatetime | None, Query(alias="to", description="Made before (ISO 8601)")
    ] = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Any:
    """The group's cases (one per event that a rule matched, shadow rules included, and the
    manual and report cases), newest first, a page at a time. Each filter narrows them:
    `member_id`, `action` (the case's own action), `rule_id` (a rule among `rule_ids`),
    `from` / `to` (when the case was made, `from` ≤ created_at < `to`, with a time zone).
    A bad value is a 422 naming the parameter (`to` before `from` names `to`)."""
    if created_from and created_to and created_to < created_from:
        raise RequestValidationError(
            [{"loc": ["query", "to"], "msg": "`to` is before `from`", "type": "value_error"}]
        )
    filters = CaseFilters(
        member_id=member_id,
        action=action,
        rule_id=rule_id,
        created_from=created_from,
        created_to=created_to,
    )
    found, next_cursor = case_store.list_cases(
        session=session, group_id=group_id, filters=filters, limit=limit, cursor=cursor
    )
    return CasesPublic(cases=present(session, found), next_cursor=next_cursor)


@router.get(
    "/cases/{case_id}", response_model=CasePublic, summary="Get a case", responses=CASE_NOT_FOUND
)
def read_case(group_id: ReadGroup, case_id: str, session: SessionDep) -> Any:
    """One case: the rules that matched, their evidence, the action and any ladder step, and
    `enforcement` (what delivery did with its last action; null until it answered)."""
    case = case_store.get_case(session=session, group_id=group_id, case_id=case_id)
    return present(session, [case])[0]


@router.post(
    "/cases/{case_id}/reverse",
    response_model=ReversalPublic,
    summary="Uphold an appeal: remove the strike, lift a running mute or ban",
    responses={
        **CASE_NOT_FOUND,
        409: _error("The case was already reversed (`case already reversed`)"),
    },
)
def reverse_case(
    group_id: WriteGroup,
    case_id: str,
    principal: PrincipalDep,
    session: SessionDep,
    settings: SettingsDep,
    state: ModerationStateDep,
    body: Annotated[ReverseRequest | None, Body()] = None,
) -> Any:
    """Reverse the case: its strike no longer counts, and a mute or ban it applied that is
    still running is lifted (an `unmute` / `unban` action is published, listed in `lifts`).
    The case records who reversed it (`reversed_by`, the token's name) and why
    (`reversal_reason`, the optional body `{"reason"}`). A case is reversed once."""
    case, lifts = case_store.reverse_case(
        session=session,
        group_id=group_id,
        case_id=case_id,
        by=principal.name,
        reason=body.reason if body else None,
        topic=settings.topic_moderation_actions,
    )
    session.commit()
    state.relay.wake()
    return ReversalPublic.model_validate(present(session, [case])[0], update={"lifts": lifts})


@router.post(
    "/actions",
    response_model=CasePublic,
    status_code=status.HTTP_201_CREATED,
    summary="Act on a member by hand (a case with `by`)",
    responses={409: _error("The member is exempt (`member is exempt`)")},
)
def create_action(
    group_id: WriteGroup,
    body: manual.ManualAction,
    principal: PrincipalDep,
    session: SessionDep,
    client: RedisDep,
    settings: SettingsDep,
    state: ModerationStateDep,
) -> Any:
    """Delete, warn, mute, unmute, kick, ban or unban a member: a case with `rule_ids: []`
    and `by` = the token's name, published like any other (with the policy's notice). A
    warn adds a strike and can climb the ladder. 409 for an exempt member; 422 for a mute
    without `duration_seconds` or a delete without `message_id`."""
    case = manual.act(
        session=session,
        group_id=group_id,
        body=body,
        by=principal.name,
        policy=rulesets.get_policy(session=session, group_id=group_id),
        display_name=Tracker(client).display_name(group_id, body.member_id),
        topic=settings.topic_moderation_actions,
    )
    session.commit()
    MANUAL_ACTIONS.labels(body.action).inc()
    state.relay.wake()
    return present(session, [case])[0]


@router.get("/reports", response_model=ReportsPublic, summary="Member reports (举报), newest first")
def list_reports(
    group_id: ReadGroup,
    session: SessionDep,
    status: Annotated[
        ReportStatus | None, Query(description="`open` (below the threshold) or `actioned`")
    ] = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Any:
    """The group's reported messages, newest first, a page at a time: the author
    (`member_id`), who reported it (`reporters`, in report order), `status` and, once
    actioned, the case it opened (`case_id`). Reports count when the policy's `reports`
    is set (see PUT …/policy)."""
    found, next_cursor = reports.list_reports(
        session=session, group_id=group_id, status=status, limit=limit, cursor=cursor
    )
    return ReportsPublic(reports=found, next_cursor=next_cursor)
