"""Reduce a platform's published request schema to the contract of the methods qunyun calls.

Upstream machine-readable specs:
- Telegram: the community Bot API spec (PaulSonOfLars/telegram-bot-api-spec, `api.json`,
  scraped from the Bot API reference; MIT). Methods list `fields` with Telegram's type names
  (`Integer`, `String`, `Array of MessageEntity`, `ChatPermissions`, …) and `required`.
- Slack: Slack's OpenAPI 2 spec of the Web API (slackapi/slack-api-specs,
  `web-api/slack_web_openapi_v2.json`; MIT). Each method's `parameters` are `formData`
  fields with an OpenAPI type, the token goes in a header.

The contract keeps facts only (each parameter's name, type and whether it is required, and
for Telegram the fields of every object type those parameters reach), written as JSON Schema
(draft 2020-12) with the upstream repository, commit and file sha256 beside it. Run it on
the upstream file (or a git directory holding it) to write the contract, or with `--check`
to prove the committed one still matches:

    python -m tools.platform_double.specs.extract telegram --git-dir <clone>/.git
    python -m tools.platform_double.specs.extract slack --file slack_web_openapi_v2.json \
        --commit <sha> --check
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

SPECS_DIR = Path(__file__).parent

# Every method services/platforms/<platform>/outbound.py calls.
METHODS = {
    "telegram": (
        "deleteMessage",
        "restrictChatMember",
        "banChatMember",
        "unbanChatMember",
        "sendMessage",
        "approveChatJoinRequest",
        "declineChatJoinRequest",
    ),
    "slack": ("chat.delete", "conversations.kick", "chat.postMessage"),
}

UPSTREAM = {
    "telegram": {
        "repo": "PaulSonOfLars/telegram-bot-api-spec",
        "path": "api.json",
        "licence": "MIT (LICENSE in the upstream repository, Copyright (c) 2020 Paul Larsen)",
    },
    "slack": {
        "repo": "slackapi/slack-api-specs",
        "path": "web-api/slack_web_openapi_v2.json",
        "licence": "MIT (LICENSE in the upstream repository, Copyright (c) 2017 SlackAPI)",
    },
}

TELEGRAM_SCALARS: dict[str, dict[str, Any]] = {
    "Integer": {"type": "integer"},
    "String": {"type": "string"},
    "Boolean": {"type": "boolean"},
    "Float": {"type": "number"},
    "True": {"const": True},
    "InputFile": {"type": "string"},  # in a JSON body: a file_id or URL (uploads are multipart)
}

# Slack's parameters are form fields: a form value is text, so a `number`, `integer` or
# `boolean` parameter sent in a JSON body is right as the JSON value or as the text a form
# would carry (Slack's own `ts` is the string "1712345678.000100", typed `number`).
SLACK_TYPES: dict[str, dict[str, Any]] = {
    "string": {"type": "string"},
    "number": {"anyOf": [{"type": "number"}, {"type": "string", "pattern": r"^-?\d+(\.\d+)?$"}]},
    "integer": {"anyOf": [{"type": "integer"}, {"type": "string", "pattern": r"^-?\d+$"}]},
    "boolean": {"anyOf": [{"type": "boolean"}, {"enum": ["true", "false", "1", "0"]}]},
}


def object_schema(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    """A closed object: these properties, these required, nothing else."""
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    if required:
        schema["required"] = sorted(required)
    return schema


def telegram_contract(spec: dict[str, Any]) -> dict[str, Any]:
    """The Telegram methods' parameter schemas and the object types they reach."""
    defs: dict[str, Any] = {}

    def type_schema(name: str) -> dict[str, Any]:
        if name.startswith("Array of "):
            return {"type": "array", "items": type_schema(name.removeprefix("Array of "))}
        if name in TELEGRAM_SCALARS:
            return TELEGRAM_SCALARS[name]
        define(name)
        return {"$ref": f"#/$defs/{name}"}

    def field_schema(types: list[str]) -> dict[str, Any]:
        schemas = [type_schema(t) for t in types]
        return schemas[0] if len(schemas) == 1 else {"anyOf": schemas}

    def fields_schema(fields: list[dict[str, Any]]) -> dict[str, Any]:
        properties = {f["name"]: field_schema(f["types"]) for f in fields}
        return object_schema(properties, [f["name"] for f in fields if f["required"]])

    def define(name: str) -> None:
        if name in defs:
            return
        entry = spec["types"][name]
        defs[name] = {}  # taken before recursing: types refer to each other
        if entry.get("subtypes"):
            defs[name] = {"anyOf": [type_schema(s) for s in entry["subtypes"]]}
        else:
            defs[name] = fields_schema(entry.get("fields", []))

    methods = {m: fields_schema(spec["methods"][m].get("fields", [])) for m in METHODS["telegram"]}
    return {"version": spec.get("version"), "methods": methods, "$defs": defs}


def slack_contract(spec: dict[str, Any]) -> dict[str, Any]:
    """The Slack methods' form parameters as a JSON body's schema (the token is a header)."""
    methods: dict[str, Any] = {}
    for method in METHODS["slack"]:
        parameters = spec["paths"][f"/{method}"]["post"]["parameters"]
        body = [p for p in parameters if p["in"] in ("formData", "query")]
        properties = {p["name"]: SLACK_TYPES[p["type"]] for p in body}
        methods[method] = object_schema(properties, [p["name"] for p in body if p.get("required")])
        methods[method]["x-headers"] = sorted(p["name"] for p in parameters if p["in"] == "header")
    return {"version": spec["info"]["version"], "methods": methods}


CONTRACTS = {"telegram": telegram_contract, "slack": slack_contract}


def contract_path(platform: str) -> Path:
    """Where the committed contract of `platform` lives."""
    return SPECS_DIR / f"{platform}.json"


def build(platform: str, raw: bytes, commit: str) -> dict[str, Any]:
    """The contract of `platform` from the upstream file's bytes at `commit`."""
    upstream = {
        **UPSTREAM[platform],
        "commit": commit,
        "sha256": hashlib.sha256(raw).hexdigest(),
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$comment": (
            "Generated by tools/platform_double/specs/extract.py from the upstream spec "
            "(facts only: names, types, required); do not edit by hand."
        ),
        "x-upstream": upstream,
        **CONTRACTS[platform](json.loads(raw)),
    }


def render(contract: dict[str, Any]) -> str:
    """The contract as committed: stable key order, one trailing newline."""
    return json.dumps(contract, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def read_upstream(platform: str, args: argparse.Namespace) -> tuple[bytes, str]:
    """The upstream file's bytes and the commit they are from."""
    if args.file:
        if not args.commit:
            sys.exit("--file needs --commit: the upstream commit the file is from")
        return Path(args.file).read_bytes(), args.commit
    git = ["git", f"--git-dir={args.git_dir}"]
    commit = subprocess.run(
        [*git, "rev-parse", f"{args.commit or 'HEAD'}^{{commit}}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    path = UPSTREAM[platform]["path"]
    raw = subprocess.run([*git, "show", f"{commit}:{path}"], check=True, capture_output=True)
    return raw.stdout, commit


def main(argv: list[str] | None = None) -> int:
    """Write (or `--check`) one platform's contract from its upstream spec."""
    parser = argparse.ArgumentParser(description="Extract a platform's request contract.")
    parser.add_argument("platform", choices=sorted(CONTRACTS))
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--file", help="the upstream spec file")
    source.add_argument("--git-dir", help="a git directory of the upstream repository")
    parser.add_argument("--commit", help="the upstream commit (default with --git-dir: HEAD)")
    parser.add_argument("--check", action="store_true", help="fail if the committed one differs")
    args = parser.parse_args(argv)
    raw, commit = read_upstream(args.platform, args)
    text = render(build(args.platform, raw, commit))
    target = contract_path(args.platform)
    if args.check:
        committed = target.read_text() if target.exists() else ""
        if committed != text:
            print(f"{target} differs from {UPSTREAM[args.platform]['repo']}@{commit}")
            return 1
        print(f"{target} matches {UPSTREAM[args.platform]['repo']}@{commit}")
        return 0
    target.write_text(text)
    print(f"wrote {target} from {UPSTREAM[args.platform]['repo']}@{commit}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
