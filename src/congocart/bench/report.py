"""Bench results: the data kept, the Markdown table, the chart and the summary line."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from congocart.bench.invariants import Check
from congocart.bench.latency import LatencySummary
from congocart.bench.pgbench import PgbenchResult
from congocart.bench.profiling import Profile
from congocart.bench.statements import StatementCount

SUMMARY_CONCURRENCY = 32


@dataclass
class RunResult:
    """One scenario at one concurrency."""

    scenario: str
    concurrency: int
    unit: str  # what one operation is: req, carts, orders
    duration_s: float
    ops: int
    failed_ops: int
    requests: int
    errors: int  # requests answered anything but the expected status, or not at all
    server_errors: int  # of which 5xx
    latency_ms: LatencySummary | None  # per operation (a whole flow for checkout-flow)
    request_latency_ms: dict[str, LatencySummary | None] = field(default_factory=dict)
    statuses: dict[str, dict[str, int]] = field(default_factory=dict)
    sql_calls: int | None = None
    top_statements: list[StatementCount] = field(default_factory=list)
    cpu_api_s: float = 0.0
    cpu_postgres_s: float = 0.0
    cpu_loadgen_s: float = 0.0
    invariants: list[Check] | None = None
    notes: list[str] = field(default_factory=list)
    error_samples: list[str] = field(default_factory=list)
    profile: Profile | None = None

    @property
    def throughput(self) -> float:
        return self.ops / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def sql_per_op(self) -> float | None:
        if self.sql_calls is None or self.ops == 0:
            return None
        return self.sql_calls / self.ops

    @property
    def loadgen_us_per_request(self) -> float | None:
        return 1e6 * self.cpu_loadgen_s / self.requests if self.requests else None

    @property
    def invariants_ok(self) -> bool:
        return self.invariants is None or all(check.ok for check in self.invariants)


@dataclass
class Report:
    started_at: str
    machine: dict[str, object]
    options: dict[str, object]
    runs: list[RunResult] = field(default_factory=list)
    pgbench: list[PgbenchResult] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    finished_at: str = ""

    def run(self, scenario: str, concurrency: int) -> RunResult | None:
        for run in self.runs:
            if run.scenario == scenario and run.concurrency == concurrency:
                return run
        return None

    def pgbench_at(self, concurrency: int) -> PgbenchResult | None:
        for result in self.pgbench:
            if result.concurrency == concurrency:
                return result
        return None

    def checkout_ratio(self, concurrency: int) -> float | None:
        """Checkout (alone) throughput ÷ pgbench TPS at the same concurrency."""
        checkout = self.run("checkout", concurrency)
        limit = self.pgbench_at(concurrency)
        if checkout is None or limit is None or limit.tps <= 0:
            return None
        return checkout.throughput / limit.tps

    @property
    def ok(self) -> bool:
        return not self.failures and all(run.invariants_ok for run in self.runs)


def _number(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def summary_line(report: Report) -> str:
    """The last line printed, for scripts; every figure at 32 clients (n/a when not run).

    `sql_per_order` is the whole checkout flow's statements per completed
    order, from the flow run with the most clients.
    """
    c = SUMMARY_CONCURRENCY
    flow = report.run("checkout-flow", c)
    browse = report.run("browse", c)
    flows = sorted(
        (r for r in report.runs if r.scenario == "checkout-flow"), key=lambda r: r.concurrency
    )
    sql_per_order = flows[-1].sql_per_op if flows else None
    p99 = flow.latency_ms.p99 if flow is not None and flow.latency_ms is not None else None
    return (
        f"bench: flow_c{c}={_number(flow.throughput if flow else None)}"
        f" flow_p99_ms={_number(p99)}"
        f" checkout_vs_pgbench={_number(report.checkout_ratio(c), 3)}"
        f" browse_c{c}={_number(browse.throughput if browse else None)}"
        f" sql_per_order={_number(sql_per_order)}"
    )


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _one_line(sql: str, limit: int) -> str:
    """A statement's text on one line, whitespace squeezed, cut at `limit` characters."""
    text = " ".join(sql.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def markdown(report: Report) -> str:
    """The results as Markdown: the main table, pgbench, request kinds, invariants."""
    lines = [
        f"## CongoCart bench, {report.started_at}",
        "",
        ", ".join(f"{key}: {value}" for key, value in report.machine.items()),
        "",
        ", ".join(f"{key}: {value}" for key, value in report.options.items()),
        "",
        _row(
            [
                "scenario",
                "clients",
                "throughput",
                "p50 ms",
                "p95 ms",
                "p99 ms",
                "errors",
                "SQL/op",
                "CPU s API",
                "CPU s PG",
                "CPU s loadgen",
                "loadgen µs/req",
            ]
        ),
        _row(["---"] * 2 + ["---:"] * 10),
    ]
    for run in report.runs:
        latency = run.latency_ms
        errors = f"{run.errors}" + (f" ({run.server_errors} 5xx)" if run.server_errors else "")
        lines.append(
            _row(
                [
                    run.scenario,
                    str(run.concurrency),
                    f"{run.throughput:,.1f} {run.unit}/s",
                    _number(latency.p50 if latency else None),
                    _number(latency.p95 if latency else None),
                    _number(latency.p99 if latency else None),
                    errors,
                    _number(run.sql_per_op),
                    _number(run.cpu_api_s),
                    _number(run.cpu_postgres_s),
                    _number(run.cpu_loadgen_s),
                    _number(run.loadgen_us_per_request, 0),
                ]
            )
        )
    lines.append("")
    lines.append(
        "Latency is per operation: one request for browse, the whole cart or flow for "
        "cart and checkout-flow, the checkout request for checkout."
    )
    if report.pgbench:
        lines += [
            "",
            "### Against the database's own limit (pgbench, checkout-shaped transaction)",
            "",
            _row(
                [
                    "clients",
                    "pgbench TPS",
                    "pgbench latency ms",
                    "checkout orders/s",
                    "checkout ÷ pgbench",
                    "flow orders/s",
                    "CPU s PG",
                    "CPU s pgbench",
                ]
            ),
            _row(["---:"] * 8),
        ]
        for limit in report.pgbench:
            checkout = report.run("checkout", limit.concurrency)
            flow = report.run("checkout-flow", limit.concurrency)
            lines.append(
                _row(
                    [
                        str(limit.concurrency),
                        f"{limit.tps:,.1f}",
                        _number(limit.latency_avg_ms, 2),
                        _number(checkout.throughput if checkout else None),
                        _number(report.checkout_ratio(limit.concurrency), 3),
                        _number(flow.throughput if flow else None),
                        _number(limit.cpu_postgres_s),
                        _number(limit.cpu_pgbench_s),
                    ]
                )
            )
    kinds_lines = []
    for run in report.runs:
        for kind, summary in sorted(run.request_latency_ms.items()):
            statuses = run.statuses.get(kind, {})
            kinds_lines.append(
                _row(
                    [
                        run.scenario,
                        str(run.concurrency),
                        kind,
                        str(sum(statuses.values())),
                        _number(summary.p50 if summary else None),
                        _number(summary.p99 if summary else None),
                        ", ".join(f"{s}×{n}" for s, n in sorted(statuses.items())),
                    ]
                )
            )
    if kinds_lines:
        lines += [
            "",
            "### Requests by kind",
            "",
            _row(["scenario", "clients", "request", "count", "p50 ms", "p99 ms", "statuses"]),
            _row(["---", "---:", "---", "---:", "---:", "---:", "---"]),
            *kinds_lines,
        ]
    checked = [run for run in report.runs if run.invariants is not None]
    if checked:
        lines += ["", "### Invariants after checkout runs", ""]
        for run in checked:
            assert run.invariants is not None
            for check in run.invariants:
                mark = "ok" if check.ok else "BROKEN"
                lines.append(
                    f"- {run.scenario} c{run.concurrency}: {check.name}: {mark} ({check.detail})"
                )
    timed = [run for run in report.runs if run.top_statements and run.ops > 0]
    if timed:
        lines += ["", "### Where PostgreSQL's time goes (pg_stat_statements, per operation)"]
        for run in timed:
            lines += [
                "",
                f"{run.scenario} c{run.concurrency}:",
                "",
                _row(["statement", "calls/op", "exec µs/op", "µs/call"]),
                _row(["---", "---:", "---:", "---:"]),
            ]
            for stat in sorted(run.top_statements, key=lambda s: -s.exec_ms)[:10]:
                lines.append(
                    _row(
                        [
                            "`" + _one_line(stat.query, 90).replace("|", "/") + "`",
                            f"{stat.calls / run.ops:.2f}",
                            f"{stat.exec_ms * 1000 / run.ops:.0f}",
                            f"{stat.exec_ms * 1000 / stat.calls:.0f}",
                        ]
                    )
                )
    profiled = [run for run in report.runs if run.profile is not None]
    if profiled:
        lines += ["", "### Where the API workers spend CPU (py-spy, % of samples)"]
        for run in profiled:
            assert run.profile is not None
            lines += [
                "",
                f"{run.scenario} c{run.concurrency}, {run.profile.samples:,} samples:",
                "",
                _row(["function", "self %", "total %"]),
                _row(["---", "---:", "---:"]),
            ]
            shown = run.profile.by_self[:8] + [
                h for h in run.profile.ours[:8] if h not in run.profile.by_self[:8]
            ]
            lines += [
                _row([h.function.replace("|", "/"), f"{h.self_pct:.1f}", f"{h.total_pct:.1f}"])
                for h in shown
            ]
    notes = [(run, note) for run in report.runs for note in run.notes]
    if notes or report.failures:
        lines += ["", "### Notes", ""]
        lines += [f"- {run.scenario} c{run.concurrency}: {note}" for run, note in notes]
        lines += [f"- FAILED: {failure}" for failure in report.failures]
    return "\n".join(lines) + "\n"


def to_json(report: Report) -> bytes:
    def extra(value: object) -> object:
        raise TypeError(f"cannot serialise {type(value).__name__}")

    data = orjson.loads(orjson.dumps(report, default=extra))
    # Derived figures, so that readers of the JSON need not recompute them.
    for run_data, run in zip(data["runs"], report.runs, strict=True):
        run_data["throughput"] = run.throughput
        run_data["requests_per_s"] = run.requests_per_s
        run_data["sql_per_op"] = run.sql_per_op
        run_data["loadgen_us_per_request"] = run.loadgen_us_per_request
        run_data["invariants_ok"] = run.invariants_ok
    data["checkout_vs_pgbench"] = {
        str(limit.concurrency): report.checkout_ratio(limit.concurrency) for limit in report.pgbench
    }
    data["summary"] = summary_line(report)
    return orjson.dumps(data, option=orjson.OPT_INDENT_2)


def write_chart(report: Report, path: Path) -> None:
    """Throughput and p99 latency by concurrency, one line per scenario (+ pgbench)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    scenarios = list(dict.fromkeys(run.scenario for run in report.runs))
    for scenario in scenarios:
        runs = sorted(
            (run for run in report.runs if run.scenario == scenario), key=lambda r: r.concurrency
        )
        unit = runs[0].unit
        clients = [run.concurrency for run in runs]
        left.plot(clients, [r.throughput for r in runs], marker="o", label=f"{scenario} ({unit}/s)")
        p99 = [r.latency_ms.p99 if r.latency_ms else float("nan") for r in runs]
        right.plot(clients, p99, marker="o", label=scenario)
    if report.pgbench:
        limits = sorted(report.pgbench, key=lambda r: r.concurrency)
        left.plot(
            [r.concurrency for r in limits],
            [r.tps for r in limits],
            marker="s",
            linestyle="--",
            color="grey",
            label="pgbench checkout (TPS)",
        )
    for axis, title, label in (
        (left, "Throughput", "operations per second"),
        (right, "p99 latency per operation", "milliseconds"),
    ):
        axis.set_title(title)
        axis.set_xlabel("concurrent clients")
        axis.set_ylabel(label)
        axis.set_xscale("log", base=2)
        concurrencies = sorted({run.concurrency for run in report.runs})
        if concurrencies:
            axis.set_xticks(concurrencies, [str(c) for c in concurrencies])
        axis.set_ylim(bottom=0)
        axis.grid(True, alpha=0.3)
        axis.legend(fontsize="small")
    figure.suptitle(f"CongoCart bench {report.started_at}")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def write_all(report: Report, directory: Path, *, stamp: str) -> list[Path]:
    """`<stamp>.json`, `.md`, `.png` under `directory`, and copies named `latest.*`."""
    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    text = markdown(report)
    payload = to_json(report)
    for name in (stamp, "latest"):
        json_path = directory / f"{name}.json"
        json_path.write_bytes(payload)
        md_path = directory / f"{name}.md"
        md_path.write_text(text)
        written += [json_path, md_path]
    if report.runs:
        png_path = directory / f"{stamp}.png"
        write_chart(report, png_path)
        latest_png = directory / "latest.png"
        shutil.copyfile(png_path, latest_png)
        written += [png_path, latest_png]
    return written
