"""Vendor the console's JavaScript libraries from npm at pinned versions (`make vendor`).

The console (services/console/static) is plain ES modules with no build step; its three
libraries are copied into static/vendor/ with their licences, so `make run` needs neither
Node nor the network. This tool makes that copy reproducible: `npm pack` fetches each
pinned tarball, its sha512 must equal the pinned integrity, and each copied file's sha256
must equal vendor/SHA256SUMS.

    python -m tools.console_vendor            # fetch, verify, copy (needs npm)
    python -m tools.console_vendor --check    # verify the files in the repo (no network)
    python -m tools.console_vendor --record   # after changing a pin: fetch and rewrite the sums
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

VENDOR = Path(__file__).resolve().parents[1] / "services" / "console" / "static" / "vendor"
SUMS = VENDOR / "SHA256SUMS"


@dataclass(frozen=True)
class Package:
    """An npm package at a pinned version and the files taken from its tarball."""

    name: str
    version: str
    integrity: str  # npm's sha512 of the tarball
    files: dict[str, str]  # path in the tarball -> file name in vendor/


PACKAGES = (
    Package(
        "preact",
        "11.2.0",
        "sha512-/HfHI/7N84e6GrWBJ3J280z3mLaRJiDcSvj/A+y/4AbLnND/1UlGHe1sR6oYuTGwId0nP7dqDU9OnLxMPZ7xBg==",
        {
            "package/dist/preact.mjs": "preact.mjs",
            "package/hooks/dist/hooks.mjs": "preact-hooks.mjs",
            "package/LICENSE": "LICENSE.preact",
        },
    ),
    Package(
        "htm",
        "3.1.1",
        "sha512-983Vyg8NwUE7JkZ6NmOqpCZ+sh1bKv2iYTlUkzlWmA5JD2acKoxd4KVxbMmxX/85mtfdnDmTFoNKcg5DGAvxNQ==",
        {"package/dist/htm.mjs": "htm.mjs", "package/LICENSE": "LICENSE.htm"},
    ),
    Package(
        "echarts",
        "6.1.0",
        "sha512-q0yaFPggC9FUdsWH4blavRWFmxdrIodbkoKNAjJudAI6CA9gNPxHtV2RcZNEepZVlk4yvBYkOkbk6HIVpIyHZA==",
        {
            "package/dist/echarts.esm.min.mjs": "echarts.esm.min.mjs",
            "package/LICENSE": "LICENSE.echarts",
            "package/NOTICE": "NOTICE.echarts",
            "package/licenses/LICENSE-d3": "LICENSE-d3.echarts",
        },
    ),
)


class VendorError(RuntimeError):
    """A tarball or a file does not match what the repo pins."""


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_sums(path: Path = SUMS) -> dict[str, str]:
    """Return file name -> sha256 from a SHA256SUMS file (`<hex>  <name>` lines)."""
    sums = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            digest, name = line.split(maxsplit=1)
            sums[name.strip()] = digest
    return sums


def check(vendor: Path = VENDOR) -> list[str]:
    """Return what is wrong with the vendored files (empty: every file matches its sum)."""
    sums = read_sums(vendor / "SHA256SUMS")
    wanted = {name for package in PACKAGES for name in package.files.values()}
    problems = [f"{name}: no sum recorded" for name in sorted(wanted - set(sums))]
    for name, digest in sorted(sums.items()):
        path = vendor / name
        if not path.is_file():
            problems.append(f"{name}: missing")
        elif sha256_of(path) != digest:
            problems.append(f"{name}: sha256 {sha256_of(path)} is not the recorded {digest}")
    return problems


def npm_pack(package: Package, workdir: Path) -> Path:
    """Fetch the package's tarball with `npm pack`; check it against the pinned integrity."""
    spec = f"{package.name}@{package.version}"
    answer = subprocess.run(
        ["npm", "pack", spec, "--json", "--pack-destination", str(workdir)],
        capture_output=True,
        text=True,
        check=False,
    )
    if answer.returncode != 0:
        raise VendorError(f"npm pack {spec} failed: {answer.stderr.strip()[-500:]}")
    (packed,) = json.loads(answer.stdout)
    tarball = workdir / packed["filename"]
    digest = base64.b64encode(hashlib.sha512(tarball.read_bytes()).digest()).decode()
    if f"sha512-{digest}" != package.integrity:
        raise VendorError(f"{spec}: tarball sha512-{digest} is not the pinned {package.integrity}")
    return tarball


def extract(package: Package, tarball: Path, target: Path) -> None:
    """Copy the package's files out of its tarball into target/ (named members only)."""
    with tarfile.open(tarball) as archive:
        for member, name in package.files.items():
            source = archive.extractfile(member)
            if source is None:
                raise VendorError(f"{package.name}: {member} is not a file in the tarball")
            with source, open(target / name, "wb") as out:
                shutil.copyfileobj(source, out)


def vendor(*, record: bool = False, out=print) -> int:  # type: ignore[no-untyped-def]
    """Fetch every pinned package, verify it, and copy its files into static/vendor/."""
    with tempfile.TemporaryDirectory() as tmp:
        staging = Path(tmp) / "vendor"
        staging.mkdir()
        for package in PACKAGES:
            extract(package, npm_pack(package, Path(tmp)), staging)
            out(f"{package.name}@{package.version}: {', '.join(package.files.values())}")
        fetched = {p.name: sha256_of(p) for p in sorted(staging.iterdir())}
        if not record:
            recorded = read_sums()
            wrong = [n for n, d in fetched.items() if recorded.get(n) != d]
            if wrong:
                raise VendorError(f"not the recorded sha256: {', '.join(wrong)} (--record?)")
        VENDOR.mkdir(parents=True, exist_ok=True)
        for path in staging.iterdir():
            shutil.copyfile(path, VENDOR / path.name)
        if record:
            header = "# sha256 of each vendored file: python -m tools.console_vendor --check\n"
            SUMS.write_text(header + "".join(f"{d}  {n}\n" for n, d in fetched.items()))
            out(f"recorded {len(fetched)} sums in {SUMS}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.console_vendor", description=__doc__)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="verify the vendored files only")
    mode.add_argument("--record", action="store_true", help="fetch and rewrite SHA256SUMS")
    args = parser.parse_args(argv)
    if args.check:
        problems = check()
        for problem in problems:
            print(problem, file=sys.stderr)
        print("vendored files match SHA256SUMS" if not problems else "mismatch")
        return 1 if problems else 0
    try:
        return vendor(record=args.record)
    except VendorError as exc:
        print(exc, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
