"""`make bench`: start a broker, Redis and a database, run every benchmark, print one table.

Each part is a module tools/bench_<name>.py exposing
`run(*, bootstrap, redis_url, database_url, smoke=False, repeats=3) -> list[row]`
(see tools/bench_raw.row). A missing module or a failing one becomes a row
saying so; nothing is hidden. The table also goes to bench-results/bench.json.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import socket
import statistics
import sys
import tempfile
import time
import timeit
import traceback
import uuid
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from tools.bench_raw import row
from tools.localstack import free_port, start_redis, start_tansu, stop

PARTS = ("raw", "ingest", "metrics", "moderation", "campaigns", "delivery", "e2e", "scale")
LOCAL_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"


def run_part(
    *,
    part: str,
    bootstrap: str,
    redis_url: str,
    database_url: str,
    smoke: bool,
    repeats: int,
) -> list[dict[str, Any]]:
    """Import and run one benchmark module; a missing or failing one gives a row saying so."""
    module_name = f"tools.bench_{part}"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        return [row(name=part, value=0.0, unit="", notes="not available (no module)")]
    started = time.monotonic()
    try:
        rows = module.run(
            bootstrap=bootstrap,
            redis_url=redis_url,
            database_url=database_url,
            smoke=smoke,
            repeats=repeats,
        )
    except Exception as exc:  # noqa: BLE001 - one failing part must not hide the others
        traceback.print_exc(file=sys.stderr)
        return [row(name=part, value=0.0, unit="", notes=f"failed: {type(exc).__name__}: {exc}")]
    seconds = time.monotonic() - started
    return [{**r, "part": part, "seconds": round(seconds, 1)} for r in rows]


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "met" if value else "NOT MET"
    if isinstance(value, float):
        if value == 0:
            return "0"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.3g}"
    return str(value)


def render(rows: Sequence[dict[str, Any]]) -> str:
    """Return the result rows as a Markdown table followed by their notes."""
    head = ["#", "benchmark", "value", "unit", "raw limit", "raw value", "ratio", "target", "met"]
    lines = [head]
    for i, r in enumerate(rows, 1):
        lines.append(
            [
                str(i),
                r["name"],
                _fmt(r["value"]),
                r["unit"] or "-",
                r["raw_name"] or "-",
                _fmt(r["raw_value"]),
                _fmt(r["ratio"]),
                r["target"] or "-",
                _fmt(r["met"]),
            ]
        )
    widths = [max(_width(line[c]) for line in lines) for c in range(len(head))]
    out = []
    for n, line in enumerate(lines):
        cells = [cell + " " * (widths[c] - _width(cell)) for c, cell in enumerate(line)]
        out.append("| " + " | ".join(cells) + " |")
        if n == 0:
            out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    out.append("")
    out += [f"{i}. {r['notes']}" for i, r in enumerate(rows, 1) if r.get("notes")]
    return "\n".join(out)


def _width(text: str) -> int:
    # CJK characters take two terminal columns.
    return sum(2 if ord(ch) >= 0x1100 and not 0x2190 <= ord(ch) <= 0x21FF else 1 for ch in text)


def _postgres_reachable(url: str) -> bool:
    import sqlalchemy

    try:
        engine = sqlalchemy.create_engine(url, connect_args={"connect_timeout": 2})
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text("SELECT 1"))
        engine.dispose()
        return True
    except Exception:  # noqa: BLE001 - no server: SQLite instead
        return False


@contextmanager
def _database(workdir: Path) -> Iterator[str]:
    """Yield a fresh PostgreSQL database when a local server answers, else a SQLite file."""
    admin_url = os.environ.get("BENCH_POSTGRES_URL", LOCAL_POSTGRES)
    if not _postgres_reachable(admin_url):
        yield f"sqlite:///{workdir / 'bench.db'}"
        return
    import sqlalchemy

    name = f"qunyun_bench_{uuid.uuid4().hex[:8]}"
    admin = sqlalchemy.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def servers(
    *, bootstrap: str | None, redis_url: str | None, database_url: str | None, workdir: Path
) -> Iterator[tuple[str, str, str]]:
    """Yield (bootstrap, redis_url, database_url), starting what was not given."""
    with ExitStack() as stack:
        if bootstrap is None:
            port = free_port()
            broker = start_tansu(port, workdir / "broker.log")
            stack.callback(stop, broker)
            bootstrap = f"127.0.0.1:{port}"
        if redis_url is None:
            port = free_port()
            redis_proc = start_redis(port, workdir / "redis.log")
            stack.callback(stop, redis_proc)
            redis_url = f"redis://127.0.0.1:{port}/0"
        if database_url is None:
            database_url = stack.enter_context(_database(workdir))
        yield bootstrap, redis_url, database_url


def build_parser() -> argparse.ArgumentParser:
    """Return the CLI parser."""
    parser = argparse.ArgumentParser(
        prog="python -m tools.bench",
        description="Run qunyun's benchmarks against their raw limits and print one table.",
    )
    parser.add_argument("--only", default=",".join(PARTS), help=f"comma list of {', '.join(PARTS)}")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (seconds, not minutes)")
    parser.add_argument("--repeats", type=int, default=3, help="measured runs per figure")
    parser.add_argument("--json", type=Path, default=Path("bench-results/bench.json"))
    parser.add_argument("--bootstrap", default=None, help="use this broker instead of a new one")
    parser.add_argument("--redis-url", default=None, help="use this Redis instead of a new one")
    parser.add_argument("--database-url", default=None, help="use this database")
    return parser


def python_step_ns(steps: int = 1_000_000, repeats: int = 5) -> float:
    """The median time of one step of a plain Python loop, in ns: how fast this machine runs
    Python at the moment, so absolute figures can be compared between runs and machines
    (shared and virtual machines vary by 2x from one day to the next)."""
    timer = timeit.Timer("for i in r: x += i", setup=f"r = range({steps}); x = 0")
    return round(statistics.median(timer.repeat(repeats, 1)) / steps * 1e9, 1)


def socket_hop_ns(hops: int = 20_000) -> float:
    """The time of one byte sent and received over a local socket pair, in ns: the system
    calls every hop between processes pays. Work that trickles (a call, a commit, a wake-up
    per record) follows it more than the Python loop."""
    left, right = socket.socketpair()
    with left, right:
        started = time.perf_counter()
        for _ in range(hops):
            left.send(b"x")
            right.recv(1)
        return round((time.perf_counter() - started) / hops * 1e9, 1)


def machine_speed() -> dict[str, float]:
    """This machine's speed now: a Python loop step and a local socket hop, in ns."""
    return {"python_step_ns": python_step_ns(), "socket_hop_ns": socket_hop_ns()}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the chosen benchmarks; exit 1 when a part is missing or failed (misses are reported)."""
    args = build_parser().parse_args(argv)
    parts = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        print(f"unknown parts: {', '.join(unknown)} (choose from {', '.join(PARTS)})")
        return 2
    started = datetime.now(UTC)
    speed_before = machine_speed()
    rows: list[dict[str, Any]] = []
    with (
        tempfile.TemporaryDirectory(prefix="qunyun-bench-") as tmp,
        servers(
            bootstrap=args.bootstrap,
            redis_url=args.redis_url,
            database_url=args.database_url,
            workdir=Path(tmp),
        ) as (bootstrap, redis_url, database_url),
    ):
        for part in parts:
            print(f"bench: {part}…", file=sys.stderr, flush=True)
            rows += run_part(
                part=part,
                bootstrap=bootstrap,
                redis_url=redis_url,
                database_url=database_url,
                smoke=args.smoke,
                repeats=args.repeats,
            )
    table = render(rows)
    print(table)
    speed_after = machine_speed()
    speed = {name: [speed_before[name], speed_after[name]] for name in speed_after}
    steps, hops = speed["python_step_ns"], speed["socket_hop_ns"]
    print(
        f"\nmachine: {os.cpu_count()} CPUs; before and after the run, one step of a Python loop "
        f"took {steps[0]} / {steps[1]} ns and one local socket hop {hops[0]} / {hops[1]} ns "
        "(compare absolute figures only at a like speed)"
    )
    report = {
        "started_at": started.isoformat(),
        "seconds": round((datetime.now(UTC) - started).total_seconds(), 1),
        "smoke": args.smoke,
        "repeats": args.repeats,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            **speed,
        },
        "rows": rows,
        "table": table,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    print(f"\nwritten to {args.json}")
    broken = [r for r in rows if str(r.get("notes", "")).startswith(("not available", "failed"))]
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
