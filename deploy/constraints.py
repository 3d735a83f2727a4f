"""Write deploy/constraints.txt: `.venv/bin/python deploy/constraints.py`.

The Docker image installs qunyun with `pip install -c deploy/constraints.txt .`, so it gets
the versions this virtualenv was tested with. The file pins the product's dependency
closure only (pyproject's `dependencies`, their extras and what they require on Linux and
this Python), not the dev tools. Re-run it after changing dependencies or upgrading the
venv, and commit the result (tests/deploy/test_image.py checks it covers pyproject).
"""

from __future__ import annotations

import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "deploy" / "constraints.txt"
HEADER = (
    "# Versions for the Docker image (pip install -c): the product's dependency closure as\n"
    "# installed in the dev virtualenv. Regenerate: .venv/bin/python deploy/constraints.py\n"
)


def canonical(name: str) -> str:
    """The PEP 503 normalized name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def product_requirements() -> list[Requirement]:
    """pyproject.toml's runtime dependencies (no optional extras)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(line) for line in project["dependencies"]]


def closure(roots: list[Requirement]) -> dict[str, str]:
    """Installed name -> version of every distribution `roots` need here, transitively."""
    pinned: dict[str, str] = {}
    seen: set[tuple[str, str]] = set()  # (distribution, extra) already expanded; "" = base
    todo = [req for req in roots if not req.marker or req.marker.evaluate({"extra": ""})]
    while todo:
        req = todo.pop()
        dist = metadata.distribution(req.name)
        name = canonical(req.name)
        pinned[name] = dist.version
        for extra in ["", *sorted(req.extras)]:
            if (name, extra) in seen:
                continue
            seen.add((name, extra))
            for line in dist.requires or []:
                child = Requirement(line)
                if not child.marker or child.marker.evaluate({"extra": extra}):
                    todo.append(child)
    return pinned


def render(pins: dict[str, str]) -> str:
    """The constraints file text, sorted by name."""
    return HEADER + "".join(f"{name}=={pins[name]}\n" for name in sorted(pins))


def main() -> int:
    OUT.write_text(render(closure(product_requirements())))
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
