"""Every benchmark runs once in smoke size so none can rot; timings are never asserted."""

from __future__ import annotations

import importlib

import orjson
import pytest

from tools import bench, bench_delivery, bench_e2e
from tools.bench_raw import bare_app, post_concurrently, serve_bare

ROW_KEYS = {"name", "value", "unit", "raw_name", "raw_value", "ratio", "target", "met", "notes"}


def assert_measured(rows: list[dict]) -> None:
    assert rows
    for r in rows:
        assert r.keys() >= ROW_KEYS, r
        assert not str(r["notes"]).startswith(("not available", "failed")), r
        assert r["value"] > 0, r
        if r["raw_value"] is not None:
            assert r["raw_value"] > 0, r
        if r["ratio"] is not None:
            assert r["ratio"] > 0, r
        assert r["met"] in (None, True, False)


@pytest.mark.parametrize("part", [p for p in bench.PARTS if p not in ("raw", "delivery", "e2e")])
def test_each_service_benchmark_runs_in_smoke_size(part, kafka_bootstrap, redis_url, database_url):
    module = importlib.import_module(f"tools.bench_{part}")
    rows = module.run(
        bootstrap=kafka_bootstrap, redis_url=redis_url, database_url=database_url, smoke=True
    )
    assert_measured(rows)


def test_delivery_throughput_row_against_the_double(kafka_bootstrap, redis_url, database_url):
    rows = bench_delivery.run(
        bootstrap=kafka_bootstrap, redis_url=redis_url, database_url=database_url, smoke=True
    )
    assert_measured(rows)
    [throughput, trickle, claims] = rows
    assert throughput["unit"] == "records/s" and throughput["met"] is None
    assert trickle["unit"] == "ms" and trickle["met"] is None and trickle["value"] > 0
    assert claims["unit"] == "ms" and claims["met"] is None
    assert claims["raw_value"] > 0 and claims["value"] > 0
    # Every delete of the warm-up, the run and the trickle, by delivery and by the bare
    # client, reached it.
    assert "320 deleteMessage calls at the double" in throughput["notes"]


def test_e2e_rows_webhook_to_action_and_to_delete_message(kafka_bootstrap, redis_url, database_url):
    rows = bench_e2e.run(
        bootstrap=kafka_bootstrap, redis_url=redis_url, database_url=database_url, smoke=True
    )
    assert_measured(rows)
    by_name = {r["name"]: r for r in rows}
    p50 = by_name["e2e webhook→deleteMessage at the double @100/s p50"]["value"]
    p99 = by_name["e2e webhook→deleteMessage at the double @100/s p99"]["value"]
    p999 = by_name["e2e webhook→deleteMessage at the double @100/s p99.9"]["value"]
    assert p50 <= p99 <= p999 < bench_e2e.TIMEOUT_S * 1000  # every delete arrived
    notes = by_name["e2e webhook→deleteMessage at the double @100/s p99"]["notes"]
    for stage in ("send→202", *(name for name, _, _ in bench_e2e.STAGES)):
        assert f"{stage} " in notes  # the stage breakdown, each with its p50/p99
    assert "CPU ms per webhook: delivery" in notes
    assert by_name["e2e webhook→action p99 @100/s"]["value"] > 0


def test_orchestrator_prints_the_table_and_writes_json(
    tmp_path, capsys, kafka_bootstrap, redis_url, database_url
):
    out = tmp_path / "bench.json"
    args = ["--smoke", "--only", "raw", "--json", str(out), "--bootstrap", kafka_bootstrap]
    args += ["--redis-url", redis_url, "--database-url", database_url]
    assert bench.main(args) == 0
    report = orjson.loads(out.read_bytes())
    assert report["smoke"] is True and report["machine"]["cpus"] >= 1
    assert all(
        0 < ns < 1e6 for key in ("python_step_ns", "socket_hop_ns") for ns in report["machine"][key]
    )
    assert_measured(report["rows"])
    printed = capsys.readouterr().out
    assert "raw kafka-python produce (acks=all)" in printed and "| # | benchmark" in printed
    assert "one step of a Python loop" in printed and "one local socket hop" in printed


def test_missing_or_unknown_parts_are_reported_not_hidden(kafka_bootstrap, redis_url, database_url):
    rows = bench.run_part(
        part="no_such_part",
        bootstrap=kafka_bootstrap,
        redis_url=redis_url,
        database_url=database_url,
        smoke=True,
        repeats=1,
    )
    assert [r["notes"] for r in rows] == ["not available (no module)"]
    assert bench.main(["--only", "nope"]) == 2


def test_table_shows_misses_and_ratios():
    rows = [
        bench.row(name="a", value=10.0, unit="x/s", raw_name="raw", raw_value=40.0, ratio=0.25,
                  target=">= 0.5", met=False, notes="why"),
        bench.row(name="读书 b", value=1.0, unit="ms", target="< 5 ms", met=True),
    ]  # fmt: skip
    table = bench.render(rows)
    assert "NOT MET" in table and "| met " in table and "0.25" in table and "1. why" in table
    first, second = table.splitlines()[2:4]
    assert bench._width(first) == bench._width(second)


def test_load_generator_refuses_to_count_errors_as_throughput():
    assert bare_app.title
    with serve_bare() as served:
        url = f"http://127.0.0.1:{served.port}/v1/webhooks/raw"
        rate, p50, p99 = post_concurrently(
            url=url, bodies=[b'{"a": 1}'] * 20, headers_for=lambda b: {}, concurrency=4
        )
        assert rate > 0 and 0 < p50 <= p99
        with pytest.raises(RuntimeError, match="non-2xx"):
            post_concurrently(
                url=url, bodies=[b"not json"] * 3, headers_for=lambda b: {}, concurrency=2
            )
