"""What every outbound platform client shares: operations, outcomes, credentials, transport.

A client turns one `OperationRequest` (a moderation action or a post, already resolved to
its group's source) into the platform's own calls and answers a `CallResult`. It never
retries and never sleeps: the delivery service owns pacing, backoff and rate-limit waits,
and reads `retryable` / `retry_after` to decide them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol, get_args

import httpx

Operation = Literal[
    "delete", "mute", "unmute", "kick", "ban", "unban", "post", "approve_join", "decline_join"
]
OPERATIONS: tuple[Operation, ...] = get_args(Operation)

Outcome = Literal[
    "delivered", "recorded", "unsupported", "forbidden", "expired", "failed", "no_route"
]
OUTCOMES: tuple[Outcome, ...] = get_args(Outcome)

DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=3.0)


class InvalidTarget(ValueError):
    """A group, member or message id that this platform cannot address."""


@dataclass(frozen=True)
class Mention:
    """A member named in a post's text: rendered `@<display name>` (or `@<member id>`)."""

    member_id: str
    display_name: str | None = None

    @property
    def label(self) -> str:
        """The `@name` placeholder the text carries for this member."""
        return "@" + (self.display_name or self.member_id)


@dataclass(frozen=True)
class OperationRequest:
    """One thing to carry out in one group; `record_id` is the idempotency key."""

    operation: Operation
    group_id: str
    record_id: str
    member_id: str | None = None
    message_id: str | None = None
    duration_seconds: int | None = None
    text: str | None = None
    reply_to: str | None = None
    mentions: tuple[Mention, ...] = ()
    request_ref: str | None = None
    message_at: datetime | None = None


@dataclass(frozen=True)
class CallResult:
    """What the platform answered, in delivery's terms.

    `retryable` is set for 429, 5xx, transport errors and timeouts; `retry_after` is the
    platform's own hint in seconds; `unknown` says the call may have taken effect (a
    timeout after the request was sent).
    """

    outcome: Outcome
    detail: str = ""
    platform_message_id: str | None = None
    retry_after: float | None = None
    retryable: bool = False
    unknown: bool = False

    @property
    def rate_limited(self) -> bool:
        """Whether the platform asked us to slow down."""
        return self.retry_after is not None


@dataclass(frozen=True)
class OutboundCredentials:
    """A source's outbound credentials, filled from its `[[sources]]` entry; never printed."""

    bot_token: str | None = field(default=None, repr=False)
    user_token: str | None = field(default=None, repr=False)
    app_id: str | None = None
    app_secret: str | None = field(default=None, repr=False)
    api_url: str | None = None
    access_token: str | None = field(default=None, repr=False)
    api_base: str | None = None
    sender: str | None = None  # wecom: the staff userid that sends group posts

    def secrets(self) -> list[str]:
        """Return every secret value held here (for log redaction)."""
        values = [self.bot_token, self.user_token, self.app_secret, self.access_token]
        return [v for v in values if v]


class PlatformClient(Protocol):
    """An outbound client of one platform, bound to one source's credentials."""

    platform: str

    async def carry_out(self, op: OperationRequest) -> CallResult:
        """Make the platform calls for `op` and say how it went."""
        ...


def delivered(detail: str = "", message_id: str | None = None) -> CallResult:
    """The call took effect."""
    return CallResult("delivered", detail, platform_message_id=message_id)


def unsupported(detail: str) -> CallResult:
    """The platform has no call for this operation; `detail` says which is missing."""
    return CallResult("unsupported", detail)


def forbidden(detail: str) -> CallResult:
    """The platform refused for lack of rights or credentials; never retried."""
    return CallResult("forbidden", detail)


def failed(detail: str, *, retryable: bool = False, retry_after: float | None = None) -> CallResult:
    """The call did not take effect; `retryable` when trying again may help."""
    return CallResult("failed", detail, retry_after=retry_after, retryable=retryable)


def split_id(value: str | None, prefix: str, parts: int, what: str) -> tuple[str, ...]:
    """Split `prefix:a[:b]` into its `parts` non-empty pieces, or raise InvalidTarget."""
    if not value:
        raise InvalidTarget(f"{what} is required")
    head, _, rest = value.partition(":")
    pieces = tuple(rest.split(":", parts - 1)) if rest else ()
    if head != prefix or len(pieces) != parts or not all(pieces):
        raise InvalidTarget(f"{what} {value!r} is not a {prefix}: id")
    return pieces


def required(value: str | None, what: str) -> str:
    """The value, or InvalidTarget when it is missing."""
    if not value:
        raise InvalidTarget(f"{what} is required")
    return value


def int_id(value: str, what: str) -> int:
    """Parse a platform's numeric id, or raise InvalidTarget."""
    try:
        return int(value)
    except ValueError:
        raise InvalidTarget(f"{what} {value!r} is not numeric") from None


def base_url(api_base: str | None, default: str) -> str:
    """The scheme and host to call: `api_base` (a test double, Lark, a local server) wins."""
    return (api_base or default).rstrip("/")


def with_base(url: str, api_base: str | None) -> str:
    """Replace the scheme and host of `url` with `api_base`, keeping the path."""
    if not api_base:
        return url.rstrip("/")
    target = httpx.URL(url)
    base = httpx.URL(api_base)
    return str(target.copy_with(scheme=base.scheme, host=base.host, port=base.port)).rstrip("/")


def stable_uuid(record_id: str, length: int = 40) -> str:
    """A stable digest of a record id, short enough for a platform's de-duplication key."""
    return hashlib.sha256(record_id.encode()).hexdigest()[:length]


def render_mentions(
    text: str,
    mentions: Iterable[Mention],
    *,
    render: Callable[[Mention], str],
    escape: Callable[[str], str] = lambda s: s,
) -> str:
    """Escape `text` and turn each mention's `@name` into the platform's mention markup.

    A mention whose label is not in the text is appended, so the member is still notified.
    """
    pieces: list[tuple[str, Mention | None]] = [(text, None)]
    for mention in mentions:
        label, found = mention.label, False
        out: list[tuple[str, Mention | None]] = []
        for chunk, tag in pieces:
            if tag is not None or found or label not in chunk:
                out.append((chunk, tag))
                continue
            before, _, after = chunk.partition(label)
            out += [(before, None), (label, mention), (after, None)]
            found = True
        if not found:
            out += [(" ", None), (label, mention)]
        pieces = out
    return "".join(render(tag) if tag else escape(chunk) for chunk, tag in pieces if chunk)


async def send(
    http: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    limits: httpx.Timeout,
    **kwargs: Any,
) -> httpx.Response | CallResult:
    """Make one HTTP call; a transport error or timeout becomes a retryable CallResult."""
    try:
        return await http.request(method, url, timeout=limits, **kwargs)
    except (httpx.ConnectTimeout, httpx.ConnectError, httpx.PoolTimeout) as exc:
        return failed(f"not sent: {type(exc).__name__}", retryable=True)
    except httpx.TimeoutException as exc:
        return CallResult(
            "failed",
            f"no answer in time ({type(exc).__name__}): the call may have taken effect",
            retryable=True,
            unknown=True,
        )
    except httpx.TransportError as exc:
        return CallResult(
            "failed", f"transport error: {type(exc).__name__}", retryable=True, unknown=True
        )


def server_error(response: httpx.Response) -> CallResult:
    """A 5xx answer: retryable, the effect unknown."""
    return CallResult(
        "failed", f"HTTP {response.status_code} from the platform", retryable=True, unknown=True
    )


def json_body(response: httpx.Response) -> dict[str, Any]:
    """The response's JSON object, or an empty dict when it has none."""
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def rate_limited(detail: str, hint: Any, default: float = 1.0) -> CallResult:
    """A rate-limit answer: retryable after the platform's hint in seconds (or `default`)."""
    try:
        seconds = max(float(hint), 0.0)
    except (TypeError, ValueError):
        seconds = default
    return failed(detail, retryable=True, retry_after=seconds)


class HttpClient:
    """The transport every client shares: the service's pooled httpx client, explicit timeouts.

    `needs` names the credentials the platform cannot work without.
    """

    platform = ""
    needs: tuple[str, ...] = ()

    def __init__(
        self,
        credentials: OutboundCredentials,
        http: httpx.AsyncClient,
        *,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    ) -> None:
        missing = [key for key in self.needs if not getattr(credentials, key)]
        if missing:
            raise ValueError(f"{self.platform} needs {', '.join(missing)}")
        self.credentials = credentials
        self._http = http
        self._timeout = timeout

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response | CallResult:
        """One HTTP call with this client's timeouts (see `send`)."""
        return await send(self._http, method, url, limits=self._timeout, **kwargs)
