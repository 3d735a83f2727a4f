"""The create body per campaign kind: one model per kind, told apart by `kind` (OpenAPI shows
a oneOf with a discriminator, each kind with an example), errors naming fields as one model."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, cast, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    RootModel,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from services.campaigns.params import (
    AutoreplyParams,
    BroadcastParams,
    ChallengeParams,
    CheckinParams,
    EventParams,
    FeedbackParams,
    InviteParams,
    LotteryParams,
    Moment,
    PollParams,
    Reminder,
    WelcomeParams,
    add_example,
)

WEEK = {
    "starts_at": "2026-12-01T09:00:00+08:00",
    "ends_at": "2026-12-08T09:00:00+08:00",
    "announce_at": "2026-11-30T20:00:00+08:00",
}


class NewCampaign(BaseModel):
    """The fields every kind shares; a kind is a subclass naming its `kind` and `params`."""

    model_config = ConfigDict(json_schema_extra=add_example)
    EXAMPLE: ClassVar[dict[str, Any] | None] = None

    kind: str
    title: str = Field(min_length=1, max_length=200)
    starts_at: Moment
    ends_at: Moment
    announce_at: Moment | None = Field(
        default=None,
        description="When to post the announcement (not after starts_at; none when null)",
    )
    reminders: list[Reminder] = Field(default_factory=list, max_length=10)
    params: BaseModel


def _example(kind: str, title: str, params: type[BaseModel]) -> dict[str, Any]:
    example = getattr(params, "EXAMPLE", None)
    return {"kind": kind, "title": title, **WEEK, "reminders": ["PT1H"], "params": example}


class CheckinCampaign(NewCampaign):
    """A daily check-in: points per check-in, bonuses and badges for streaks."""

    EXAMPLE = _example("checkin", "每日打卡", CheckinParams)
    kind: Literal["checkin"]
    params: CheckinParams = Field(default_factory=CheckinParams)


class LotteryCampaign(NewCampaign):
    """A lottery drawn at the end; the seed's hash is published at the start."""

    EXAMPLE = _example("lottery", "周末抽奖", LotteryParams)
    kind: Literal["lottery"]
    params: LotteryParams


class ChallengeCampaign(NewCampaign):
    """A challenge: enough messages in the window earn the reward."""

    EXAMPLE = _example("challenge", "活跃挑战", ChallengeParams)
    kind: Literal["challenge"]
    params: ChallengeParams


class EventCampaign(NewCampaign):
    """A lecture or meetup: announcement, reminders, optional attendance keyword."""

    EXAMPLE = _example("event", "线上分享会", EventParams)
    kind: Literal["event"]
    params: EventParams = Field(default_factory=EventParams)


class WelcomeCampaign(NewCampaign):
    """A welcome: a wave of joins greeted in one post mentioning each newcomer."""

    EXAMPLE = _example("welcome", "新人欢迎", WelcomeParams)
    kind: Literal["welcome"]
    params: WelcomeParams = Field(default_factory=WelcomeParams)


class AutoreplyCampaign(NewCampaign):
    """Keyword auto-replies: the questions every newcomer asks, answered as replies."""

    EXAMPLE = _example("autoreply", "常见问题自动回复", AutoreplyParams)
    kind: Literal["autoreply"]
    params: AutoreplyParams


class BroadcastCampaign(NewCampaign):
    """Scheduled posts (群SOP): each message posted once at its time."""

    EXAMPLE = {**_example("broadcast", "每日早安", BroadcastParams), "reminders": []}
    kind: Literal["broadcast"]
    params: BroadcastParams


class PollCampaign(NewCampaign):
    """A poll: members vote by keyword and option number; the results are posted at the end."""

    EXAMPLE = _example("poll", "主题投票", PollParams)
    kind: Literal["poll"]
    params: PollParams


class FeedbackCampaign(NewCampaign):
    """A feedback channel: tagged messages become items; accepted ones earn points."""

    EXAMPLE = _example("feedback", "产品反馈", FeedbackParams)
    kind: Literal["feedback"]
    params: FeedbackParams = Field(default_factory=FeedbackParams)


class InviteCampaign(NewCampaign):
    """Invite rewards: inviters earn points for invitees who stay `retain_days`."""

    EXAMPLE = _example("invite", "老带新", InviteParams)
    kind: Literal["invite"]
    params: InviteParams = Field(default_factory=InviteParams)


AnyCampaign = Annotated[
    CheckinCampaign
    | LotteryCampaign
    | ChallengeCampaign
    | EventCampaign
    | WelcomeCampaign
    | AutoreplyCampaign
    | BroadcastCampaign
    | PollCampaign
    | FeedbackCampaign
    | InviteCampaign,
    Field(discriminator="kind"),
]
"""Adding a kind: its params model, its NewCampaign subclass, and its name here."""

KIND_MODELS: dict[str, type[NewCampaign]] = {
    get_args(m.model_fields["kind"].annotation)[0]: m for m in get_args(get_args(AnyCampaign)[0])
}
PARAMS_MODELS: dict[str, type[BaseModel]] = {
    kind: cast(type[BaseModel], m.model_fields["params"].annotation)
    for kind, m in KIND_MODELS.items()
}
if TYPE_CHECKING:
    Kind = str
else:
    Kind = Literal[tuple(KIND_MODELS)]


def _kind_error(error: Any, body: Any) -> dict[str, Any] | None:
    """The error a single model would give for a missing or unknown `kind`, else None."""
    if error["type"] == "union_tag_not_found":
        return {
            "type": PydanticCustomError("missing", "Field required"),
            "loc": ("kind",),
            "input": body,
        }
    if error["type"] == "union_tag_invalid":
        *first, last = (repr(k) for k in KIND_MODELS)
        expected = f"{', '.join(first)} or {last}"
        return {
            "type": PydanticCustomError(
                "literal_error", f"Input should be {expected}", {"expected": expected}
            ),
            "loc": ("kind",),
            "input": error["ctx"]["tag"],
        }
    return None


def _untagged(error: Any, body: Any) -> Any:
    """An error of the union with the kind's tag left out of its `loc`, as for one model."""
    kind_error = _kind_error(error, body)
    if kind_error is not None:
        return kind_error
    return {
        "type": PydanticCustomError(error["type"], error["msg"], error.get("ctx")),
        "loc": error["loc"][1:],
        "input": error["input"],
    }


class CampaignCreate(RootModel[AnyCampaign]):
    """A new campaign: its `kind` decides the shape of its `params`."""

    @model_validator(mode="wrap")
    @classmethod
    def _errors_name_the_field(
        cls, value: Any, handler: ModelWrapValidatorHandler[CampaignCreate]
    ) -> CampaignCreate:
        try:
            return handler(value)
        except ValidationError as exc:
            errors = [_untagged(e, value) for e in exc.errors()]
            raise ValidationError.from_exception_data(exc.title, errors) from None
