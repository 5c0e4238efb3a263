"""The database's own limit: pgbench running a checkout-shaped transaction."""

from __future__ import annotations

import re
import resource
import subprocess
from dataclasses import dataclass
from pathlib import Path

from congocart.bench.cluster import BenchCluster
from congocart.bench.processes import tree_cpu_seconds

DATABASE = "db_limit"


@dataclass(frozen=True, slots=True)
class PgbenchResult:
    concurrency: int
    threads: int
    duration_s: float
    transactions: int
    failed: int
    tps: float
    latency_avg_ms: float | None
    cpu_postgres_s: float
    cpu_pgbench_s: float


class PgbenchError(Exception):
    pass


def parse_output(text: str) -> tuple[float, int, int, float | None]:
    """tps, transactions processed, failed transactions, average latency (ms)."""
    tps = re.search(r"^tps = ([0-9.]+)", text, re.MULTILINE)
    processed = re.search(r"^number of transactions actually processed: (\d+)", text, re.MULTILINE)
    if tps is None or processed is None:
        raise PgbenchError(f"unexpected pgbench output:\n{text}")
    failed = re.search(r"^number of failed transactions: (\d+)", text, re.MULTILINE)
    latency = re.search(r"^latency average = ([0-9.]+) ms", text, re.MULTILINE)
    return (
        float(tps.group(1)),
        int(processed.group(1)),
        int(failed.group(1)) if failed else 0,
        float(latency.group(1)) if latency else None,
    )


def load_schema(cluster: BenchCluster, schema: Path) -> None:
    cluster.psql("postgres", command=f'CREATE DATABASE "{DATABASE}"')
    cluster.psql(DATABASE, file=schema)


def run(cluster: BenchCluster, script: Path, *, concurrency: int, duration: float) -> PgbenchResult:
    """`pgbench -c C -j 2 -T duration` (fewer threads than 2 only for one client)."""
    threads = min(2, concurrency)
    args = [
        cluster.binaries.path("pgbench"),
        "-n",
        "-c",
        str(concurrency),
        "-j",
        str(threads),
        "-T",
        str(max(1, round(duration))),
        "-f",
        str(script),
        "-h",
        cluster.host,
        "-p",
        str(cluster.port),
        "-U",
        "postgres",
        DATABASE,
    ]
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    postgres_before = tree_cpu_seconds(cluster.pid)
    result = subprocess.run(args, capture_output=True, text=True, check=False)
    postgres_after = tree_cpu_seconds(cluster.pid)
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise PgbenchError(f"pgbench failed ({result.returncode}):\n{result.stderr}")
    tps, processed, failed, latency = parse_output(result.stdout)
    return PgbenchResult(
        concurrency=concurrency,
        threads=threads,
        duration_s=float(max(1, round(duration))),
        transactions=processed,
        failed=failed,
        tps=tps,
        latency_avg_ms=latency,
        cpu_postgres_s=postgres_after - postgres_before,
        cpu_pgbench_s=(children_after.ru_utime + children_after.ru_stime)
        - (children_before.ru_utime + children_before.ru_stime),
    )
