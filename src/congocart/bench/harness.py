"""`congocart bench`: set everything up, run the scenarios, check, report, clean up.

1. A throw-away PostgreSQL cluster (see `cluster.py`), the app's database
   migrated and seeded with `congocart migrate` and `congocart seed`, the
   pgbench database loaded from `../shared/bench/db-limit-schema.sql`.
2. `congocart serve --workers N` on a free port, rate limits off.
3. Each scenario at each concurrency: warm-up, then a timed closed-loop run,
   with pg_stat_statements and CPU sampled either side and, for checkout
   runs, the store's invariants checked afterwards.
4. pgbench's checkout transaction at each concurrency, right after the
   checkout run at that concurrency (`pgbench_follows`).
5. JSON, Markdown and PNG under `bench/results/`, the table printed, and the
   summary line last. Servers stop and the cluster is deleted whatever
   happens (Ctrl-C and SIGTERM included).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import platform
import signal
import subprocess
import sys
import traceback
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

import uvloop

from congocart.bench import invariants, pgbench, report, statements
from congocart.bench.client import Client
from congocart.bench.cluster import BenchCluster, ClusterError, find_binaries, free_port
from congocart.bench.latency import Tally, summarize
from congocart.bench.loadgen import (
    Operation,
    OperationFailed,
    Session,
    open_sessions,
    run_closed_loop,
)
from congocart.bench.processes import ApiServer, own_cpu_seconds, tree_cpu_seconds
from congocart.bench.profiling import Profiler, api_workers
from congocart.bench.report import Report, RunResult
from congocart.bench.scenarios import (
    SCENARIOS,
    UNITS,
    Browse,
    Carts,
    CatalogSample,
    Checkout,
    CheckoutFlow,
    PlacedOrder,
    PreparedCart,
    SetupError,
    sample_catalog,
)
from congocart.catalog import service as catalog_service
from congocart.core.db import Connection, connect_single

ROOT = Path(__file__).resolve().parents[3]
APP_DATABASE = "congocart"
STOCK_TOP_UP = 100_000
HOST = "127.0.0.1"


@dataclass(frozen=True)
class Options:
    duration: float = 20.0
    warmup: float = 5.0
    concurrency: tuple[int, ...] = (1, 8, 32)
    scenarios: tuple[str, ...] = SCENARIOS
    workers: int = 2
    products: int = 10_000
    variants: int = 3
    output: Path = ROOT / "bench" / "results"
    shared_dir: Path = ROOT.parent / "shared" / "bench"
    run_pgbench: bool = True
    shared_buffers: str = "512MB"
    max_carts: int = 200_000
    profile: bool = False

    @property
    def pgbench_script(self) -> Path:
        return self.shared_dir / "db-limit-checkout.sql"

    @property
    def pgbench_schema(self) -> Path:
        return self.shared_dir / "db-limit-schema.sql"

    @property
    def wants_pgbench(self) -> bool:
        return self.run_pgbench and bool({"checkout", "checkout-flow"} & set(self.scenarios))


def say(message: str) -> None:
    print(message, flush=True)


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C, so every `finally` (servers, temp cluster) runs."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run_cli(args: list[str], *, env: dict[str, str], log: Path) -> None:
    with log.open("ab") as out:
        out.write(f"\n$ congocart {' '.join(args)}\n".encode())
        out.flush()
        result = subprocess.run(
            [sys.executable, "-m", "congocart.cli", *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    if result.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-25:])
        raise SetupError(f"`congocart {' '.join(args)}` failed ({result.returncode}):\n{tail}")


def _prepare_database(options: Options, cluster: BenchCluster, log: Path) -> None:
    cluster.psql("postgres", command=f'CREATE DATABASE "{APP_DATABASE}"')
    cluster.psql("postgres", command=f'CREATE ROLE "{statements.OBSERVER}" LOGIN SUPERUSER')
    if cluster.binaries.has_pg_stat_statements:
        cluster.psql(APP_DATABASE, command="CREATE EXTENSION pg_stat_statements")
    env = dict(os.environ, DATABASE_URL=cluster.dsn(APP_DATABASE))
    say("bench: migrating")
    _run_cli(["migrate"], env=env, log=log)
    say(f"bench: seeding {options.products:,} products")
    _run_cli(
        ["seed", "--products", str(options.products), "--variants", str(options.variants)],
        env=env,
        log=log,
    )
    asyncio.run(_top_up_stock(cluster.dsn(APP_DATABASE)))
    cluster.psql(APP_DATABASE, command="VACUUM ANALYZE")
    if options.wants_pgbench:
        say("bench: loading the pgbench schema")
        pgbench.load_schema(cluster, options.pgbench_schema)


async def _top_up_stock(dsn: str) -> None:
    """Ample stock: the demo catalog's 50-200 units a SKU would run out in a long run.

    Through the catalog's own restock use case, so the ledger stays whole.
    """
    conn = await connect_single(dsn)
    try:
        skus = await conn.fetch("SELECT sku FROM variants WHERE archived_at IS NULL")
        async with conn.transaction():
            await catalog_service.restock(
                conn,
                lines={row["sku"]: STOCK_TOP_UP for row in skus},
                reason="bench: ample stock",
                actor_id=None,
            )
    finally:
        await conn.close()


def run(options: Options) -> int:
    """Run the whole bench.

    Exit status: 0 when everything ran and every checkout run kept the
    invariants; 1 when an invariant broke or a step failed; 2 when the bench
    could not start (no PostgreSQL binaries, no pgbench files); 130 on Ctrl-C.
    """
    for path in (options.pgbench_script, options.pgbench_schema) if options.wants_pgbench else ():
        if not path.exists():
            say(f"bench: {path} not found (pass --shared-dir, or --no-pgbench)")
            return 2
    try:
        binaries = find_binaries()
    except ClusterError as exc:
        say(f"bench: {exc}")
        return 2
    started = datetime.now(UTC)
    bench_report = Report(
        started_at=started.strftime("%Y-%m-%d %H:%M UTC"),
        machine={
            "cpus": os.cpu_count(),
            "platform": platform.platform(terse=True),
            "python": platform.python_version(),
            "postgres": binaries.version,
        },
        options={
            "duration_s": options.duration,
            "warmup_s": options.warmup,
            "concurrency": list(options.concurrency),
            "scenarios": list(options.scenarios),
            "api_workers": options.workers,
            "products": options.products,
            "variants": options.variants,
            "shared_buffers": options.shared_buffers,
            "profile": options.profile,
        },
    )
    exit_code = 0
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    profile_dir = options.output / f"{stamp}-profiles" if options.profile else None
    with _sigterm_as_interrupt():
        try:
            with ExitStack() as stack:
                say(f"bench: starting PostgreSQL ({binaries.version}, {binaries.bin_dir})")
                cluster = stack.enter_context(
                    BenchCluster(binaries, shared_buffers=options.shared_buffers, host=HOST)
                )
                assert cluster.root is not None
                setup_log = cluster.root / "setup.log"
                _prepare_database(options, cluster, setup_log)
                server = ApiServer(
                    database_url=cluster.dsn(APP_DATABASE),
                    port=free_port(HOST),
                    workers=options.workers,
                    log_path=cluster.root / "api.log",
                    home=cluster.root / "home",
                    host=HOST,
                )
                stack.callback(server.stop)
                say(f"bench: starting the API ({options.workers} workers, port {server.port})")
                server.start()
                runner = stack.enter_context(asyncio.Runner(loop_factory=uvloop.new_event_loop))
                runner.run(_measure(options, cluster, server, bench_report, profile_dir))
                if server.process is not None and server.process.poll() is not None:
                    bench_report.failures.append(f"the API died:\n{server.log_tail()}")
        except KeyboardInterrupt:
            bench_report.failures.append("interrupted")
            exit_code = 130
        except (ClusterError, SetupError, pgbench.PgbenchError, RuntimeError, OSError) as exc:
            bench_report.failures.append(f"{type(exc).__name__}: {exc}")
        except Exception as exc:
            # A bug in the bench itself: still clean up and report what was measured.
            traceback.print_exc()
            bench_report.failures.append(f"{type(exc).__name__}: {exc}")
    bench_report.finished_at = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    if bench_report.runs or bench_report.pgbench:
        for path in report.write_all(bench_report, options.output, stamp=stamp):
            if not path.name.startswith("latest"):
                say(f"bench: wrote {path}")
    say("")
    say(report.markdown(bench_report))
    for failure in bench_report.failures:
        say(f"bench: FAILED: {failure.splitlines()[0]}")
    broken = [run for run in bench_report.runs if not run.invariants_ok]
    for run in broken:
        say(f"bench: INVARIANT BROKEN in {run.scenario} c{run.concurrency}")
    if exit_code == 0 and not bench_report.ok:
        exit_code = 1
    say(report.summary_line(bench_report))
    return exit_code


@dataclass
class _Probe:
    """CPU and SQL counters read just before and after a timed run."""

    api: float = 0.0
    postgres: float = 0.0
    loadgen: float = 0.0
    sql: dict[statements.StatementKey, statements.StatementCount] = field(default_factory=dict)


async def _probe(
    server: ApiServer, cluster: BenchCluster, observer: Connection, *, sql: bool
) -> _Probe:
    return _Probe(
        api=tree_cpu_seconds(server.pid),
        postgres=tree_cpu_seconds(cluster.pid),
        loadgen=own_cpu_seconds(),
        sql=await statements.snapshot(observer, database=APP_DATABASE) if sql else {},
    )


async def _measure(
    options: Options,
    cluster: BenchCluster,
    server: ApiServer,
    bench_report: Report,
    profile_dir: Path | None,
) -> None:
    await server.wait_ready()
    observer = await connect_single(cluster.dsn(APP_DATABASE, user=statements.OBSERVER))
    try:
        setup_client = Client(HOST, server.port)
        try:
            catalog = await sample_catalog(setup_client)
        finally:
            setup_client.close()
        say(
            f"bench: catalog sample: {len(catalog.slugs):,} products, "
            f"{len(catalog.skus):,} SKUs in stock, {len(catalog.categories)} categories"
        )
        for seed, scenario in enumerate(options.scenarios):
            for concurrency in options.concurrency:
                try:
                    result = await _measure_one(
                        options,
                        cluster,
                        server,
                        observer,
                        catalog,
                        scenario=scenario,
                        concurrency=concurrency,
                        seed=seed * 100 + concurrency,
                        profile_dir=profile_dir,
                    )
                except SetupError as exc:
                    failure = f"{scenario} c{concurrency} could not run: {exc}"
                    bench_report.failures.append(failure)
                    say(f"bench:   {failure}")
                    continue
                bench_report.runs.append(result)
                say(_progress_line(result))
                if options.wants_pgbench and scenario == pgbench_follows(options.scenarios):
                    await _measure_pgbench(options, cluster, bench_report, concurrency)
    finally:
        await observer.close()


def pgbench_follows(scenarios: Sequence[str]) -> str | None:
    """The scenario whose run pgbench follows at each concurrency: checkout
    (the ratio's numerator), else checkout-flow. Measured right after it, both
    sides of the ratio see the same machine: this one is shared, and a
    minute apart its speed can differ by more than the ratio's margin."""
    for scenario in ("checkout", "checkout-flow"):
        if scenario in scenarios:
            return scenario
    return None


async def _measure_pgbench(
    options: Options, cluster: BenchCluster, bench_report: Report, concurrency: int
) -> None:
    say(f"bench: pgbench c{concurrency}")
    if options.warmup > 0:
        await asyncio.to_thread(
            pgbench.run,
            cluster,
            options.pgbench_script,
            concurrency=concurrency,
            duration=options.warmup,
        )
    limit = await asyncio.to_thread(
        pgbench.run,
        cluster,
        options.pgbench_script,
        concurrency=concurrency,
        duration=options.duration,
    )
    bench_report.pgbench.append(limit)
    ratio = bench_report.checkout_ratio(concurrency)
    say(
        f"bench:   pgbench c{concurrency}: {limit.tps:,.1f} TPS"
        + (f", checkout ÷ pgbench = {ratio:.3f}" if ratio is not None else "")
    )


def _progress_line(run: RunResult) -> str:
    latency = run.latency_ms
    p99 = f"{latency.p99:.1f}" if latency else "n/a"
    sql = f"{run.sql_per_op:.1f}" if run.sql_per_op is not None else "n/a"
    line = (
        f"bench:   {run.scenario} c{run.concurrency}: {run.throughput:,.1f} {run.unit}/s, "
        f"p99 {p99} ms, {run.errors} errors, {sql} SQL/op"
    )
    if not run.invariants_ok:
        line += ", INVARIANT BROKEN"
    return line


async def _prepare_carts(
    catalog: CatalogSample, *, port: int, count: int, concurrency: int, tally: Tally
) -> deque[PreparedCart]:
    """`count` carts with 1-3 lines each, built through the API before the timed run."""
    pool: deque[PreparedCart] = deque()
    builder = Carts(catalog, keep=pool)
    started = 0
    error_budget = max(10, count // 100)

    async def prepare(session: Session) -> None:
        nonlocal started
        session.tally = tally
        try:
            while started < count and tally.errors <= error_budget:
                started += 1
                with contextlib.suppress(OperationFailed):
                    await builder(session)
        finally:
            session.close()

    sessions = [Session(Client(HOST, port), seed=7_000 + i) for i in range(concurrency)]
    async with asyncio.TaskGroup() as group:
        for session in sessions:
            group.create_task(prepare(session))
    if tally.errors > error_budget:
        samples = "\n".join(tally.error_samples[:3])
        raise SetupError(f"{tally.errors} errors while preparing carts, e.g.:\n{samples}")
    return pool


async def _checkout_pool(
    options: Options,
    catalog: CatalogSample,
    sessions: list[Session],
    *,
    port: int,
    concurrency: int,
) -> tuple[deque[PreparedCart], int]:
    """Carts for the checkout run, and the errors preparing them.

    The timed run must not run out of carts (it would end with fewer
    clients than it claims), so the pool is sized from checkout's own rate:
    a warm-up on the whole flow (it exercises checkout too) gives a first
    estimate, a warm-up on checkout alone, on a first batch of carts, the
    rate, and the pool is topped up for the run with a margin.
    """
    warm = Tally()
    if options.warmup > 0:
        await run_closed_loop(sessions, CheckoutFlow(catalog), duration=options.warmup, tally=warm)
    flow_checkouts = warm.requests.get("checkout")
    latencies = flow_checkouts.latencies if flow_checkouts else []
    rate = concurrency / (sum(latencies) / len(latencies)) if latencies else float(concurrency)
    prep_tally = Tally()

    async def top_up(pool: deque[PreparedCart], seconds: float) -> None:
        wanted = min(math.ceil(rate * seconds * 1.5) + 2 * concurrency, options.max_carts)
        if wanted > len(pool):
            say(f"bench:   checkout c{concurrency}: preparing {wanted - len(pool):,} carts")
            pool.extend(
                await _prepare_carts(
                    catalog,
                    port=port,
                    count=wanted - len(pool),
                    concurrency=max(concurrency, 16),
                    tally=prep_tally,
                )
            )

    pool: deque[PreparedCart] = deque()
    if options.warmup > 0:
        await top_up(pool, options.warmup)
        warm_checkout = Checkout(pool)
        elapsed = await run_closed_loop(
            sessions, warm_checkout, duration=options.warmup, tally=Tally()
        )
        rate = max(rate, len(warm_checkout.placed) / elapsed)
    await top_up(pool, options.duration)
    return pool, prep_tally.errors


async def _measure_one(
    options: Options,
    cluster: BenchCluster,
    server: ApiServer,
    observer: Connection,
    catalog: CatalogSample,
    *,
    scenario: str,
    concurrency: int,
    seed: int,
    profile_dir: Path | None,
) -> RunResult:
    sessions = await open_sessions(HOST, server.port, concurrency, seed=seed)
    notes: list[str] = []
    try:
        operation: Operation
        placed: list[PlacedOrder] | None = None
        if scenario == "browse":
            operation = Browse(catalog)
        elif scenario == "cart":
            operation = Carts(catalog)
        elif scenario == "checkout-flow":
            flow = CheckoutFlow(catalog)
            operation, placed = flow, flow.placed
        elif scenario == "checkout":
            pool, prep_errors = await _checkout_pool(
                options, catalog, sessions, port=server.port, concurrency=concurrency
            )
            if prep_errors:
                notes.append(f"{prep_errors} errors while preparing carts")
            checkout = Checkout(pool)
            operation, placed = checkout, checkout.placed
        else:
            raise ValueError(f"unknown scenario {scenario!r}")

        if options.warmup > 0 and scenario != "checkout":
            await run_closed_loop(sessions, operation, duration=options.warmup, tally=Tally())
            if placed is not None:
                placed.clear()

        with_sql = cluster.binaries.has_pg_stat_statements
        state_before = await invariants.read_state(observer) if placed is not None else None
        before = await _probe(server, cluster, observer, sql=with_sql)
        profiler = Profiler(profile_dir) if profile_dir is not None else None
        if profiler is not None:
            await profiler.start(
                api_workers(server.pid, options.workers),
                name=f"{scenario}-c{concurrency}",
                duration=options.duration,
            )
        tally = Tally()
        elapsed = await run_closed_loop(sessions, operation, duration=options.duration, tally=tally)
        after = await _probe(server, cluster, observer, sql=with_sql)
        profile = await profiler.finish() if profiler is not None else None
    finally:
        for session in sessions:
            session.close()

    delta = statements.difference(before.sql, after.sql) if with_sql else None
    checks = None
    if placed is not None and state_before is not None:
        _, checks = await invariants.verify(observer, state_before, placed)
    if tally.error_samples:
        notes.append(f"first error: {tally.error_samples[0]}")
    if scenario == "checkout" and elapsed < options.duration * 0.99:
        notes.append(f"the prepared carts ran out after {elapsed:.1f} s")
    return RunResult(
        scenario=scenario,
        concurrency=concurrency,
        unit=UNITS[scenario],
        duration_s=elapsed,
        ops=tally.ops,
        failed_ops=tally.failed_ops,
        requests=tally.request_count,
        errors=tally.errors,
        server_errors=tally.server_errors,
        latency_ms=summarize(tally.op_latencies),
        request_latency_ms={kind: summarize(t.latencies) for kind, t in tally.requests.items()},
        statuses={kind: dict(t.statuses) for kind, t in tally.requests.items()},
        sql_calls=delta.total_calls if delta is not None else None,
        top_statements=delta.top if delta is not None else [],
        cpu_api_s=after.api - before.api,
        cpu_postgres_s=after.postgres - before.postgres,
        cpu_loadgen_s=after.loadgen - before.loadgen,
        invariants=checks,
        notes=notes,
        error_samples=tally.error_samples,
        profile=profile,
    )
