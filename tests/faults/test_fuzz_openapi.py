"""Every operation of every service fuzzed from its own OpenAPI schema, on a running app.

Each service runs its lifespan (consumers included) on the session broker, Redis and
database. Requests go through the app's TestClient and every response is checked against
the schema: no 5xx, the status code is documented, the content type and body match what
the schema declares. Failures are collected, then reported together.

- test_fuzz_openapi: schemathesis generates valid and invalid requests per operation, with
  the admin token (deep paths) and with the read-only token (writes must be refused).
- test_hostile_values: a deterministic sweep putting each hostile value (NUL, control
  characters, huge numbers, very long strings…) into every string and number a minimal
  valid request carries, path, query and body alike.
"""

from __future__ import annotations

import importlib
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import orjson
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.failures import FailureGroup

from tests.faults.harness import FIGURES, current_scale
from tests.support import SOURCE_SECRETS, auth

SERVICES = ["ingest", "metrics", "moderation", "campaigns", "delivery"]
LARGE = current_scale().name == "large"
# Examples per operation: bounded in `make test` (every operation still gets valid and
# invalid requests under both tokens, and the hostile sweep below is complete), 10× more
# in `make faults`.
EXAMPLES = {"admin": 200 if LARGE else 12, "reader": 50 if LARGE else 4}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
HOSTILE_STRINGS = [
    "a\x00b",
    "\x01\x07\x1b[2J\x7f",
    "\u202eevil\u200b\ufeff",
    "😀" * 64,
    "x" * 5000,
    "' OR '1'='1' --",
    "../../etc/passwd",
    "%00%ff%",
    "${jndi:ldap://x}{{7*7}}",
    " ",
]
HOSTILE_NUMBERS = [2**63, -(2**63) - 1, 10**30, -1, 0, 1e308]


@dataclass
class Tally:
    """What one run sent and saw."""

    requests: int = 0
    server_errors: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    failures: dict[tuple[str, str], str] = field(default_factory=dict)

    def fail(self, operation: str, kind: str, message: str) -> None:
        self.failures.setdefault((operation, kind), message[:1500])

    def summary(self, what: str, operations: int) -> str:
        return (
            f"{what}: {operations} operations, {self.requests} requests, "
            f"{self.server_errors} 5xx, {len(self.failures)} distinct failures, "
            f"statuses {dict(sorted(self.statuses.items()))}"
        )

    def report(self) -> str:
        return "\n\n".join(f"[{op}] {kind}\n{msg}" for (op, kind), msg in self.failures.items())


def wait_ready(client: Any, timeout: float = 30.0) -> None:
    """Wait until /readyz says 200: a 503 while consumers join is documented, not a bug."""
    deadline = time.monotonic() + timeout
    while (response := client.get("/readyz")).status_code != 200:
        assert time.monotonic() < deadline, f"not ready: {response.text}"
        time.sleep(0.3)


def send_and_check(case: Any, client: Any, headers: dict[str, str], tally: Tally) -> Any:
    """Send a case through the TestClient, count it and collect every failed check."""
    label = f"{case.method.upper()} {case.operation.path}"
    kwargs = case.as_transport_kwargs(base_url="http://testserver", headers=headers)
    kwargs.pop("cookies", None)
    if "data" in kwargs:
        kwargs["content"] = kwargs.pop("data")
    response = client.request(**kwargs)
    tally.requests += 1
    tally.statuses[response.status_code] += 1
    if response.status_code >= 500:
        tally.server_errors += 1
    try:
        case.validate_response(response, checks=CHECKS, headers=headers)
    except FailureGroup as exc:  # every check failure is collected, not raised
        body = kwargs.get("json", kwargs.get("content"))
        sent = f"{kwargs['method']} {kwargs['url']} params={kwargs.get('params')}"
        for inner in exc.exceptions:
            tally.fail(
                label,
                f"{type(inner).__name__}:{response.status_code}",
                f"{inner}\nrequest: {sent} body={str(body)[:300]}\n"
                f"response: {response.status_code} {response.text[:300]}",
            )
    return response


def _strategy(operation: Any) -> Any:
    """Valid and invalid requests; webhooks also aimed at the configured sources."""
    strategy = operation.as_strategy(GenerationMode.POSITIVE) | operation.as_strategy(
        GenerationMode.NEGATIVE
    )
    if "{source_id}" in operation.path:
        for source_id in SOURCE_SECRETS:
            strategy |= operation.as_strategy(path_parameters={"source_id": source_id})
    return strategy


def fuzz_operation(
    operation: Any, client: Any, headers: dict[str, str], tally: Tally, *, examples: int, role: str
) -> None:
    """Send up to `examples` generated requests for one operation."""

    @hypothesis_settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=_strategy(operation))
    def run(case: Any) -> None:
        response = send_and_check(case, client, headers, tally)
        if role == "reader" and case.method.upper() in WRITE_METHODS and response.is_success:
            label = f"{case.method.upper()} {operation.path}"
            tally.fail(label, "reader-wrote", f"{response.status_code} {response.text[:300]}")

    run()


# Parsed operations by schema text: the admin, reader and hostile runs of a service serve
# the same schema, which takes ~0.5 s of CPU to parse.
_OPERATIONS: dict[bytes, list[Any]] = {}


def operations_of(client: Any) -> list[Any]:
    """The operations of the schema the app serves (parsed once per distinct schema)."""
    served = client.get("/openapi.json").content
    if served not in _OPERATIONS:
        schema = schemathesis.openapi.from_dict(orjson.loads(served))
        _OPERATIONS[served] = [result.ok() for result in schema.get_all_operations()]
    return _OPERATIONS[served]


@pytest.mark.parametrize("role", ["admin", "reader"])
@pytest.mark.parametrize("service", SERVICES)
def test_fuzz_openapi(service, role, make_settings, run_app, tokens):
    app = importlib.import_module(f"services.{service}.app").create_app(make_settings())
    headers = auth(tokens.admin if role == "admin" else tokens.reader)
    tally = Tally()
    with run_app(app) as client:
        wait_ready(client)
        operations = operations_of(client)
        for operation in operations:
            fuzz_operation(operation, client, headers, tally, examples=EXAMPLES[role], role=role)
    FIGURES.append(tally.summary(f"[faults:fuzz {service}/{role}]", len(operations)))
    print(f"\n{FIGURES[-1]}")
    assert tally.requests >= len(operations)
    assert not tally.failures, f"{service}/{role}: {len(tally.failures)} failures\n{tally.report()}"


def _with(container: Any, path: tuple[Any, ...], value: Any) -> Any:
    """Return a copy of a JSON-like container with the leaf at `path` replaced."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    copy: Any = list(container) if isinstance(container, list) else dict(container)
    copy[head] = _with(container[head], rest, value)
    return copy


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, (*path, index))
    else:
        yield path, value


def first_case(operation: Any) -> Any:
    """Return the first valid request hypothesis generates, the same on every run."""
    found: list[Any] = []

    @hypothesis_settings(
        max_examples=1,
        derandomize=True,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(GenerationMode.POSITIVE))
    def take(case: Any) -> None:
        found.append(case)

    take()
    return found[0]


def hostile_cases(operation: Any) -> Iterator[Any]:
    """Yield a valid request with, in turn, each string or number it carries made hostile."""
    base = first_case(operation)
    parts = {
        "path_parameters": dict(base.path_parameters or {}),
        "query": dict(base.query or {}),
        "body": base.body if isinstance(base.body, dict | list) else None,
    }
    for location, container in parts.items():
        if container is None:
            continue
        for path, leaf in _leaves(container):
            if isinstance(leaf, bool) or not isinstance(leaf, str | int | float):
                continue
            for value in HOSTILE_STRINGS if isinstance(leaf, str) else HOSTILE_NUMBERS:
                if location == "path_parameters":
                    if "/" in str(value):
                        continue  # routing decodes %2F: such a path matches no route (404)
                    value = quote(str(value), safe="")  # schemathesis sends them as given
                mutated = {**parts, location: _with(container, path, value)}
                yield operation.Case(
                    path_parameters=mutated["path_parameters"],
                    query=mutated["query"],
                    body=mutated["body"] if mutated["body"] is not None else base.body,
                    media_type=base.media_type,
                )


@pytest.mark.parametrize("service", SERVICES)
def test_hostile_values(service, make_settings, run_app, tokens):
    app = importlib.import_module(f"services.{service}.app").create_app(make_settings())
    headers = auth(tokens.admin)
    tally = Tally()
    with run_app(app) as client:
        wait_ready(client)
        operations = operations_of(client)
        for operation in operations:
            for case in hostile_cases(operation):
                send_and_check(case, client, headers, tally)
    FIGURES.append(tally.summary(f"[faults:hostile values {service}]", len(operations)))
    print(f"\n{FIGURES[-1]}")
    assert tally.requests > 0
    assert not tally.failures, f"{service}: {len(tally.failures)} failures\n{tally.report()}"
