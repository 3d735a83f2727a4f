"""Checks of a /metrics exposition: promtool's lint and our own cardinality rules."""

from __future__ import annotations

import subprocess

from prometheus_client.parser import text_string_to_metric_families

from tests.deploy.agreed import FORBIDDEN_LABELS


def promtool_lint(promtool: str, body: str) -> subprocess.CompletedProcess[str]:
    """Run `promtool check metrics` on an exposition."""
    return subprocess.run(
        [promtool, "check", "metrics"], input=body, capture_output=True, text=True, timeout=60
    )


def lint_problems(promtool: str, body: str, ids: list[str]) -> list[str]:
    """List promtool's lint findings, id-like labels, and any of `ids` appearing in the text."""
    problems: list[str] = []
    result = promtool_lint(promtool, body)
    if result.returncode != 0 or result.stdout.strip():
        problems.append(f"promtool check metrics: {result.stdout}{result.stderr}".strip())
    for family in text_string_to_metric_families(body):
        if not family.name.startswith("qunyun_"):
            continue
        for sample in family.samples:
            if FORBIDDEN_LABELS & set(sample.labels):
                problems.append(f"id-like label on {sample.name}: {sorted(sample.labels)}")
                break
    problems += [f"{value!r} appears in a label" for value in ids if value in body]
    return problems
