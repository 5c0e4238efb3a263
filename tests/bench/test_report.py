"""Report formatting: the summary line, the Markdown table, JSON and the chart."""

from __future__ import annotations

import json
from pathlib import Path

from congocart.bench.invariants import Check
from congocart.bench.latency import LatencySummary
from congocart.bench.pgbench import PgbenchResult
from congocart.bench.report import Report, RunResult, markdown, summary_line, to_json, write_all


def latency(p99: float) -> LatencySummary:
    return LatencySummary(count=100, mean=p99 / 3, p50=p99 / 4, p95=p99 / 2, p99=p99, max=p99 * 2)


def make_run(
    scenario: str,
    concurrency: int,
    *,
    ops: int,
    duration: float = 10.0,
    p99: float = 40.0,
    sql: int | None = None,
    checks: list[Check] | None = None,
) -> RunResult:
    return RunResult(
        scenario=scenario,
        concurrency=concurrency,
        unit="orders" if "checkout" in scenario else "req",
        duration_s=duration,
        ops=ops,
        failed_ops=0,
        requests=ops * 3,
        errors=2,
        server_errors=1,
        latency_ms=latency(p99),
        request_latency_ms={"checkout": latency(p99 / 2)},
        statuses={"checkout": {"201": ops, "409": 2}},
        sql_calls=sql,
        cpu_api_s=5.0,
        cpu_postgres_s=3.0,
        cpu_loadgen_s=0.6,
        invariants=checks,
    )


def limit(concurrency: int, tps: float) -> PgbenchResult:
    return PgbenchResult(
        concurrency=concurrency,
        threads=2,
        duration_s=10,
        transactions=int(tps * 10),
        failed=0,
        tps=tps,
        latency_avg_ms=1.5,
        cpu_postgres_s=9.0,
        cpu_pgbench_s=1.0,
    )


def full_report() -> Report:
    report = Report(started_at="2026-01-01 00:00 UTC", machine={"cpus": 2}, options={"x": 1})
    ok = [Check("orders created = successful responses", True, "fine")]
    report.runs = [
        make_run("browse", 8, ops=20_000),
        make_run("browse", 32, ops=25_000),
        make_run("checkout-flow", 8, ops=1_500, sql=1_500 * 22, checks=ok),
        make_run("checkout-flow", 32, ops=2_500, p99=180.0, sql=2_500 * 19, checks=ok),
        make_run("checkout", 32, ops=4_000, checks=ok),
    ]
    report.pgbench = [limit(8, 1_000.0), limit(32, 1_600.0)]
    return report


def test_summary_line_has_the_fixed_format_with_figures_at_32_clients() -> None:
    assert summary_line(full_report()) == (
        "bench: flow_c32=250.0 flow_p99_ms=180.0 checkout_vs_pgbench=0.250 "
        "browse_c32=2500.0 sql_per_order=19.0"
    )


def test_summary_line_says_n_a_for_what_was_not_measured() -> None:
    report = Report(started_at="now", machine={}, options={})
    report.runs = [make_run("browse", 8, ops=100)]
    assert summary_line(report) == (
        "bench: flow_c32=n/a flow_p99_ms=n/a checkout_vs_pgbench=n/a browse_c32=n/a "
        "sql_per_order=n/a"
    )


def test_sql_per_order_comes_from_the_flow_run_with_the_most_clients() -> None:
    report = Report(started_at="now", machine={}, options={})
    report.runs = [make_run("checkout-flow", 8, ops=100, sql=1_700)]
    assert summary_line(report).endswith("sql_per_order=17.0")


def test_markdown_table_has_a_row_per_run_and_the_pgbench_ratio() -> None:
    text = markdown(full_report())
    assert "| browse | 32 | 2,500.0 req/s | 10.0 | 20.0 | 40.0 | 2 (1 5xx) | n/a |" in text
    assert "| checkout-flow | 32 | 250.0 orders/s |" in text
    assert "| 32 | 1,600.0 | 1.50 | 400.0 | 0.250 | 250.0 | 9.0 | 1.0 |" in text
    assert "| 8 | 1,000.0 | 1.50 | n/a | n/a | 150.0 |" in text
    assert "checkout c32: orders created = successful responses: ok (fine)" in text


def test_markdown_flags_a_broken_invariant() -> None:
    report = full_report()
    report.runs[-1].invariants = [Check("stock down by exactly the ordered quantities", False, "x")]
    assert "stock down by exactly the ordered quantities: BROKEN (x)" in markdown(report)
    assert not report.ok


def test_json_carries_raw_and_derived_figures() -> None:
    data = json.loads(to_json(full_report()))
    flow = data["runs"][3]
    assert flow["scenario"] == "checkout-flow"
    assert flow["throughput"] == 250.0
    assert flow["sql_per_op"] == 19.0
    assert flow["latency_ms"]["p99"] == 180.0
    assert flow["invariants"][0]["ok"] is True
    assert data["checkout_vs_pgbench"] == {"8": None, "32": 0.25}
    assert data["summary"].startswith("bench: flow_c32=250.0")


def test_write_all_writes_json_markdown_and_a_png_chart(tmp_path: Path) -> None:
    written = write_all(full_report(), tmp_path / "results", stamp="20260101T000000Z")
    names = sorted(path.name for path in written)
    assert names == [
        "20260101T000000Z.json",
        "20260101T000000Z.md",
        "20260101T000000Z.png",
        "latest.json",
        "latest.md",
        "latest.png",
    ]
    png = (tmp_path / "results" / "latest.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(png) > 10_000
