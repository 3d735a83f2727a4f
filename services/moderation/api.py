"""Moderation routes: rules, policy, rules/test, cases and reversal."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import AwareDatetime, BaseModel, Field
from sqlmodel import Session

from services.common.contracts.events import Attachment, MessageKind
from services.common.deps import (
    ProducerDep,
    ReadGroup,
    RedisDep,
    ResourcesDep,
    SessionDep,
    SettingsDep,
    WriteGroup,
)
from services.common.kafka.errors import BrokerUnavailable
from services.moderation import cases as case_store
from services.moderation import rulesets
from services.moderation.deps import ModerationState, ModerationStateDep
from services.moderation.engine import Subject
from services.moderation.ladder import count_strikes, escalation
from services.moderation.models import (
    CasePublic,
    CasesPublic,
    PolicyPublic,
    PolicyUpdate,
    Rule,
    RuleCreate,
    RulePublic,
    RulesPublic,
    RuleUpdate,
)
from services.moderation.outbox import publish_pending
from services.moderation.params import InvalidParams
from services.moderation.tracking import Tracker

log = logging.getLogger(__name__)


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
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: _error("No such id in this group")}


def _changed(state: ModerationState, client: Any, group_id: str) -> None:
    rulesets.announce_change(client=client, group_id=group_id)
    state.engines.invalidate(group_id)


def _rule_or_404(session: Session, group_id: str, rule_id: str) -> Rule:
    rule = rulesets.get_rule(session=session, group_id=group_id, rule_id=rule_id)
    if rule is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "rule not found")
    return rule


@router.get("/rules", response_model=RulesPublic, summary="List the group's rules")
def list_rules(
    group_id: ReadGroup, session: SessionDep, limit: Limit = 100, cursor: Cursor = None
) -> Any:
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
    rule_in: RuleCreate,
    session: SessionDep,
    client: RedisDep,
    state: ModerationStateDep,
) -> Any:
    try:
        rule = rulesets.create_rule(session=session, group_id=group_id, rule_in=rule_in)
    except InvalidParams as exc:
        raise RequestValidationError(exc.errors) from exc
    _changed(state, client, group_id)
    return rule


@router.get("/rules/{rule_id}", response_model=RulePublic, responses=NOT_FOUND)
def read_rule(group_id: ReadGroup, rule_id: str, session: SessionDep) -> Any:
    return _rule_or_404(session, group_id, rule_id)


@router.patch("/rules/{rule_id}", response_model=RulePublic, responses=NOT_FOUND)
def update_rule(
    group_id: WriteGroup,
    rule_id: str,
    rule_in: RuleUpdate,
    session: SessionDep,
    client: RedisDep,
    state: ModerationStateDep,
) -> Any:
    rule = _rule_or_404(session, group_id, rule_id)
    try:
        rule = rulesets.update_rule(session=session, rule=rule, rule_in=rule_in)
    except InvalidParams as exc:
        raise RequestValidationError(exc.errors) from exc
    _changed(state, client, group_id)
    return rule


@router.delete("/rules/{rule_id}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
def delete_rule(
    group_id: WriteGroup,
    rule_id: str,
    session: SessionDep,
    client: RedisDep,
    state: ModerationStateDep,
) -> Response:
    rulesets.delete_rule(session=session, rule=_rule_or_404(session, group_id, rule_id))
    _changed(state, client, group_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/policy", response_model=PolicyPublic, summary="The group's strike policy")
def read_policy(group_id: ReadGroup, session: SessionDep) -> Any:
    return rulesets.get_policy(session=session, group_id=group_id)


@router.put("/policy", response_model=PolicyPublic, summary="Replace the group's strike policy")
def put_policy(
    group_id: WriteGroup,
    policy_in: PolicyUpdate,
    session: SessionDep,
    client: RedisDep,
    state: ModerationStateDep,
) -> Any:
    policy = rulesets.put_policy(session=session, group_id=group_id, policy_in=policy_in)
    _changed(state, client, group_id)
    return policy


class SampleEvent(BaseModel):
    """A message (or a join/rename) to judge; nothing is stored, counted or published."""

    type: Literal["message.created", "member.joined", "member.updated"] = "message.created"
    member_id: str = Field(default="test:member", min_length=1, max_length=256)
    text: str = Field(default="", max_length=65536)
    kind: MessageKind = "text"
    mentions: list[str] = Field(default_factory=list, max_length=1000)
    display_name: str | None = Field(default=None, max_length=256)
    attachments: list[Attachment] = Field(default_factory=list, max_length=50)
    joined_at: AwareDatetime | None = Field(
        default=None, description="Join time to assume (default: what moderation has seen)"
    )


class MatchPublic(BaseModel):
    rule_id: str
    kind: str
    evidence: str


class TestResult(BaseModel):
    matched: list[MatchPublic]
    action: str | None
    shadow_matched: list[MatchPublic]
    exempt: bool
    strike: bool
    strikes: int
    escalation: dict[str, Any] | None


@router.post("/rules/test", response_model=TestResult, summary="Judge a sample, no side effects")
def test_rules(
    group_id: WriteGroup,
    sample: SampleEvent,
    session: SessionDep,
    client: RedisDep,
    state: ModerationStateDep,
) -> Any:
    engine = state.engines.engines_for([group_id])[group_id]
    now = datetime.now(UTC)
    subject = Subject(
        type=sample.type,
        member_id=sample.member_id,
        occurred_at=now,
        text=sample.text,
        kind=sample.kind,
        attachment_kinds=tuple(a.kind for a in sample.attachments),
        images=tuple(c for a in sample.attachments if (c := a.content())),
        mentions=len(set(sample.mentions)),
        display_name=sample.display_name,
        check_name=sample.display_name is not None,
    )
    context = Tracker(client).peek(
        engine=engine, group_id=group_id, subject=subject, message_text=sample.text
    )
    if sample.joined_at is not None:
        context.joined_at = sample.joined_at
    verdict = engine.evaluate(subject, context)
    strikes = count_strikes(
        session=session,
        group_id=group_id,
        member_id=sample.member_id,
        until=now,
        window_days=engine.policy.strike_window_days,
    ) + int(verdict.strike)
    step = (
        escalation(
            policy=engine.policy,
            strikes=strikes,
            action=verdict.action,
            mute_seconds=verdict.mute_seconds,
        )
        if verdict.strike
        else None
    )
    return TestResult(
        matched=[MatchPublic(**m.as_dict()) for m in verdict.matched],
        action=verdict.action,
        shadow_matched=[MatchPublic(**m.as_dict()) for m in verdict.shadow_matched],
        exempt=verdict.exempt,
        strike=verdict.strike,
        strikes=strikes,
        escalation=step.as_dict() if step else None,
    )


@router.get("/cases", response_model=CasesPublic, summary="The group's cases, newest first")
def list_cases(
    group_id: ReadGroup,
    session: SessionDep,
    member_id: Annotated[str | None, Query(min_length=1, max_length=256)] = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Any:
    found, next_cursor = case_store.list_cases(
        session=session, group_id=group_id, member_id=member_id, limit=limit, cursor=cursor
    )
    return CasesPublic(cases=[CasePublic.model_validate(c) for c in found], next_cursor=next_cursor)


@router.get("/cases/{case_id}", response_model=CasePublic, responses=NOT_FOUND)
def read_case(group_id: ReadGroup, case_id: str, session: SessionDep) -> Any:
    case = case_store.get_case(session=session, group_id=group_id, case_id=case_id)
    if case is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "case not found")
    return case


@router.post(
    "/cases/{case_id}/reverse",
    response_model=CasePublic,
    summary="Uphold an appeal: remove the strike, lift a running mute or ban",
    responses={**NOT_FOUND, 409: _error("The case was already reversed")},
)
def reverse_case(
    group_id: WriteGroup,
    case_id: str,
    session: SessionDep,
    producer: ProducerDep,
    settings: SettingsDep,
    resources: ResourcesDep,
) -> Any:
    try:
        case = case_store.reverse_case(session=session, group_id=group_id, case_id=case_id)
    except case_store.CaseNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "case not found") from exc
    except case_store.AlreadyReversed as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, "case already reversed") from exc
    assert resources.engine is not None
    try:
        publish_pending(
            db=resources.engine, producer=producer, topic=settings.topic_moderation_actions
        )
    except BrokerUnavailable:
        log.warning("reversal queued; the outbox relay publishes it when Kafka is back")
    return case
