"""The `congocart bench` command line (the harness is imported only when it runs)."""

from __future__ import annotations

from pathlib import Path

import typer

from congocart.bench.scenarios import SCENARIOS

ROOT = Path(__file__).resolve().parents[3]


def parse_concurrency(text: str) -> tuple[int, ...]:
    """'1,8,32' -> (1, 8, 32): positive, distinct, in the order given."""
    try:
        values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError as exc:
        raise typer.BadParameter("comma-separated whole numbers, e.g. 1,8,32") from exc
    if not values or any(v < 1 for v in values) or len(set(values)) != len(values):
        raise typer.BadParameter("comma-separated distinct numbers of clients, each ≥ 1")
    return values


def parse_scenarios(text: str) -> tuple[str, ...]:
    """'browse,checkout' -> ('browse', 'checkout'); 'all' means every scenario."""
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    if names == ("all",):
        return SCENARIOS
    unknown = [name for name in names if name not in SCENARIOS]
    if not names or unknown or len(set(names)) != len(names):
        raise typer.BadParameter(f"distinct names among {', '.join(SCENARIOS)} (or all)")
    return names


def bench(
    duration: float = typer.Option(20.0, min=1, help="Seconds of each timed run."),
    warmup: float = typer.Option(5.0, min=0, help="Seconds of warm-up before each run."),
    concurrency: str = typer.Option("1,8,32", help="Concurrent clients, comma-separated."),
    scenarios: str = typer.Option(
        ",".join(SCENARIOS), help=f"Comma-separated among {', '.join(SCENARIOS)}."
    ),
    workers: int = typer.Option(2, min=1, help="API worker processes."),
    products: int = typer.Option(10_000, min=10, help="Products seeded."),
    variants: int = typer.Option(3, min=1, max=3, help="Variants (SKUs) of each product."),
    output: Path = typer.Option(ROOT / "bench" / "results", help="Where results are written."),
    shared_dir: Path = typer.Option(
        ROOT.parent / "shared" / "bench", help="Holds db-limit-schema.sql, db-limit-checkout.sql."
    ),
    pgbench: bool = typer.Option(True, "--pgbench/--no-pgbench", help="Measure the DB limit."),
    shared_buffers: str = typer.Option("512MB", help="PostgreSQL shared_buffers of the bench."),
    profile: bool = typer.Option(
        False, "--profile", help="py-spy the API workers during each run; hotspots in the report."
    ),
) -> None:
    """Load benchmark on a throw-away PostgreSQL: browse, cart, checkout-flow, checkout.

    Prints a table and, last, one line: `bench: flow_c32=... flow_p99_ms=...
    checkout_vs_pgbench=... browse_c32=... sql_per_order=...`. Exits 1 when
    a checkout run broke an invariant.
    """
    from congocart.bench.harness import Options, run

    options = Options(
        duration=duration,
        warmup=warmup,
        concurrency=parse_concurrency(concurrency),
        scenarios=parse_scenarios(scenarios),
        workers=workers,
        products=products,
        variants=variants,
        output=output,
        shared_dir=shared_dir,
        run_pgbench=pgbench,
        shared_buffers=shared_buffers,
        profile=profile,
    )
    raise typer.Exit(run(options))
