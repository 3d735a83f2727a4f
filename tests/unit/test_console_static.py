"""The console's web app as shipped: vendored libraries as pinned, every string translated.

No server and no network: the files in services/console/static are read as they are.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import get_args

from services.campaigns.kinds import KIND_MODELS
from services.common.contracts.actions import PublishedAction
from services.common.contracts.events import MessageKind
from services.moderation.params import RULE_KINDS
from services.platforms.base import OPERATIONS, OUTCOMES
from tools.console_vendor import PACKAGES, VENDOR, check, read_sums

STATIC = Path(__file__).resolve().parents[2] / "services" / "console" / "static"
LOCALES = ("zh-CN", "en")
NOTIFICATION_KINDS = (
    "announce", "reminder", "started", "ended", "winners",
    "welcome", "reply", "broadcast", "results",
)  # fmt: skip


def dictionary(locale: str) -> dict[str, str]:
    return json.loads((STATIC / "i18n" / f"{locale}.json").read_text())


def scripts() -> dict[Path, str]:
    return {path: path.read_text() for path in (STATIC / "js").rglob("*.js")}


def test_the_vendored_files_are_the_pinned_ones() -> None:
    assert check() == []
    shipped = {p.name for p in VENDOR.iterdir()} - {"SHA256SUMS"}
    assert shipped == set(read_sums())  # nothing vendored without a recorded sum


def test_every_vendored_library_carries_its_licence() -> None:
    for package in PACKAGES:
        licence = VENDOR / f"LICENSE.{package.name}"
        assert licence.name in package.files.values(), package.name
        assert "License" in licence.read_text(), licence


def test_the_import_map_names_only_vendored_modules() -> None:
    page = (STATIC / "index.html").read_text()
    (block,) = re.findall(r'<script type="importmap">(.*?)</script>', page, re.S)
    imports = json.loads(block)["imports"]
    assert set(imports) == {"preact", "preact/hooks", "htm", "echarts"}
    for target in imports.values():
        assert target.startswith("./vendor/") and (STATIC / target).is_file(), target
    assert not re.search(r"""(src|href)=["'](https?:)?//""", page)  # nothing from a CDN


def test_the_scripts_import_nothing_from_the_network() -> None:
    for path, text in scripts().items():
        for spec in re.findall(r"""from\s+["']([^"']+)["']""", text):
            assert spec.startswith(".") or spec in ("preact", "preact/hooks", "htm", "echarts"), (
                path,
                spec,
            )


def test_both_locales_translate_the_same_keys() -> None:
    zh, en = (dictionary(locale) for locale in LOCALES)
    assert set(zh) == set(en)
    assert all(value.strip() for value in [*zh.values(), *en.values()])


def test_every_key_the_scripts_use_is_translated() -> None:
    zh = dictionary("zh-CN")
    used = {key for text in scripts().values() for key in re.findall(r'\bt\("([\w.-]+)"', text)}
    assert used and sorted(used - set(zh)) == []


def test_every_value_of_the_contract_shown_by_name_is_translated() -> None:
    """Keys built from API values (t(`outcome.${x}`)) cover every value the APIs answer."""
    zh = dictionary("zh-CN")
    families = {
        "outcome": OUTCOMES,
        "op": OPERATIONS,
        "action": get_args(PublishedAction),
        "kind": RULE_KINDS,
        "msgkind": get_args(MessageKind),
        "ckind": tuple(KIND_MODELS),
        "nkind": NOTIFICATION_KINDS,
        "status": ("scheduled", "active", "ended", "cancelled"),
        "cleanup.status": ("preview", "running", "done", "cancelled"),
    }
    keys = [
        f"cleanup.status_{value}" if family == "cleanup.status" else f"{family}.{value}"
        for family, values in families.items()
        for value in values
    ]
    assert [key for key in keys if key not in zh] == []
