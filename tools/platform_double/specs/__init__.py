"""The platforms' published request schemas, reduced to the methods qunyun calls, and a checker.

`telegram.json` and `slack.json` are written by `extract.py` from the upstream specs (the
upstream repository, commit and file sha256 are in each file's `x-upstream`). `violations`
checks one request, as the platform double received it, against them: the method is one
the contract knows, required parameters are there, no parameter the platform does not know,
each value of the right type (nested objects too).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema_rs

SPECS_DIR = Path(__file__).parent
PLATFORMS = ("telegram", "slack")


@cache
def contract(platform: str) -> dict[str, Any]:
    """The committed request contract of `platform`."""
    loaded: dict[str, Any] = json.loads((SPECS_DIR / f"{platform}.json").read_text())
    return loaded


@cache
def _validator(platform: str, method: str) -> Any:
    spec = contract(platform)
    schema = {**spec["methods"][method], "$defs": spec.get("$defs", {})}
    return jsonschema_rs.Draft202012Validator(schema)


def violations(platform: str, method: str, body: Any) -> list[str]:
    """What is wrong with a `method` request whose parameters are `body` (empty: nothing)."""
    if method not in contract(platform)["methods"]:
        return [f"{method}: not a method of {platform}'s contract"]
    problems = []
    for error in _validator(platform, method).iter_errors(body):
        where = "/".join(str(part) for part in error.instance_path) or "(parameters)"
        problems.append(f"{method} {where}: {error.message}")
    return problems
