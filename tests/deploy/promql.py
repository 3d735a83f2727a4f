"""Just enough PromQL reading to list the metric names an expression selects."""

from __future__ import annotations

import re

_KEYWORDS = frozenset(
    {"by", "without", "and", "or", "unless", "on", "ignoring", "bool", "offset"}
    | {"group_left", "group_right", "inf", "nan", "atan2"}
)
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_IDENT = re.compile(r"(?<![\w.$])([A-Za-z_:][\w:]*)(\s*\()?")


def substitute_grafana(expr: str, interval: str = "1m", variable: str = "x") -> str:
    """Replace Grafana's interval variables and the dashboard's own variables in a query."""
    for name in ("$__rate_interval", "$__interval"):
        expr = expr.replace(name, interval)
    expr = expr.replace("$__range", "1h")
    return re.sub(r"\$\{?\w+\}?", variable, expr)


def metric_names(expr: str) -> set[str]:
    """Return the metric names a PromQL expression selects (functions and labels excluded)."""
    text = _STRING.sub('""', expr)
    text = _GROUPING.sub(" ", text)
    text = _MATCHERS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    names = set()
    for match in _IDENT.finditer(text):
        word, call = match.group(1), match.group(2)
        if call or word in _KEYWORDS:
            continue
        names.add(word)
    return names
