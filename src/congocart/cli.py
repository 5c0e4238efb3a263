"""The `congocart` command: serve, worker, migrate, seed, create-admin, bench."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator

import typer
import uvicorn

from congocart.bench.command import bench as bench_command
from congocart.catalog import service as catalog
from congocart.config import Settings, get_settings
from congocart.core import metrics, migrations
from congocart.core.db import connect_single, start_embedded_postgres
from congocart.core.errors import ValidationFailed
from congocart.core.security import Passwords
from congocart.identity import service as identity
from congocart.identity.domain import User
from congocart.worker import run_worker

app = typer.Typer(help="CongoCart: an e-commerce backend.", no_args_is_help=True)


def _database_url(settings: Settings) -> str:
    """The configured DATABASE_URL, or the embedded server's (started on demand)."""
    if settings.database_url:
        return settings.database_url
    dsn = start_embedded_postgres(settings.home)
    # Child processes (uvicorn workers) read the same settings from the environment.
    os.environ["DATABASE_URL"] = dsn
    get_settings.cache_clear()
    return dsn


@app.command()
def migrate() -> None:
    """Apply database migrations."""
    dsn = _database_url(get_settings())
    migrations.upgrade(dsn)
    typer.echo("migrations applied")


EMBEDDED_ADMIN_EMAIL = "admin@example.com"


def _bootstrap_embedded(dsn: str, settings: Settings) -> None:
    """First run without configuration: a demo catalog, and an admin whose
    password is printed once (it is stored only as an Argon2id hash)."""

    async def run() -> str | None:
        conn = await connect_single(dsn)
        try:
            async with conn.transaction():
                await catalog.seed_demo_catalog(conn, products=24, currency=settings.currency)
                if await identity.admin_exists(conn):
                    return None
                password = secrets.token_urlsafe(12)
                await identity.create_admin(
                    conn,
                    email=EMBEDDED_ADMIN_EMAIL,
                    password=password,
                    passwords=Passwords.from_settings(settings),
                )
                return password
        finally:
            await conn.close()

    password = asyncio.run(run())
    if password is not None:
        typer.echo(
            f"Created admin {EMBEDDED_ADMIN_EMAIL} with password {password} "
            "(shown once; change it with `congocart create-admin`)."
        )


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", envvar="HOST"),
    port: int = typer.Option(8000, envvar="PORT"),
    workers: int = typer.Option(1, min=1, help="API processes."),
) -> None:
    """Run the API. With no DATABASE_URL: embedded PostgreSQL, migrated and seeded."""
    settings = get_settings()
    embedded = settings.database_url is None
    dsn = _database_url(settings)
    if embedded:
        migrations.upgrade(dsn)
        _bootstrap_embedded(dsn, get_settings())
        # One command gives the whole system: a worker runs inside the server.
        os.environ.setdefault("CONGOCART_RUN_WORKER_IN_PROCESS", "true")
    if workers > 1 and not settings.redis_url:
        # Per-process caches cannot see each other's invalidations: go without.
        os.environ["CONGOCART_IN_PROCESS_CACHE"] = "false"
    get_settings.cache_clear()
    with _shared_metrics(workers):
        uvicorn.run(
            "congocart.main:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            loop="uvloop",
            http="httptools",
            access_log=False,
            proxy_headers=False,
        )


@contextlib.contextmanager
def _shared_metrics(workers: int) -> Iterator[None]:
    """With several processes, a fresh directory where each counts its metrics
    (core.metrics adds them up), removed at the end; an operator's own
    PROMETHEUS_MULTIPROC_DIR is used as it is."""
    if workers == 1 or os.environ.get(metrics.MULTIPROCESS_DIR):
        yield
        return
    directory = tempfile.mkdtemp(prefix="congocart-metrics-")
    os.environ[metrics.MULTIPROCESS_DIR] = directory
    try:
        yield
    finally:
        del os.environ[metrics.MULTIPROCESS_DIR]
        shutil.rmtree(directory, ignore_errors=True)


@app.command()
def worker(
    concurrency: int = typer.Option(
        4, "--concurrency", min=1, max=256, help="Jobs run at the same time."
    ),
) -> None:
    """Run a background worker process; SIGTERM or SIGINT stops it cleanly."""
    settings = get_settings()
    embedded = settings.database_url is None
    dsn = _database_url(settings)
    if embedded:
        migrations.upgrade(dsn)
    asyncio.run(run_worker(get_settings(), dsn=dsn, concurrency=concurrency))


@app.command()
def seed(
    products: int = typer.Option(
        24, "--products", min=0, max=1_000_000, help="How many demo products to have."
    ),
    variants: int | None = typer.Option(
        None, "--variants", min=1, max=3, help="Variants per product (default: 1 to 3 by turns)."
    ),
) -> None:
    """Load a demo catalog (idempotent: products already there are kept)."""
    settings = get_settings()
    dsn = _database_url(settings)
    migrations.upgrade(dsn)

    async def run() -> catalog.SeedResult:
        conn = await connect_single(dsn)
        try:
            async with conn.transaction():
                return await catalog.seed_demo_catalog(
                    conn, products=products, currency=settings.currency, variants=variants
                )
        finally:
            await conn.close()

    result = asyncio.run(run())
    typer.echo(
        f"demo catalog of {products} products: added {result.products} products "
        f"and {result.variants} variants"
    )


@app.command("create-admin")
def create_admin(
    email: str = typer.Option(..., "--email", help="The admin's email address."),
    password: str = typer.Option(
        ...,
        "--password",
        prompt=True,
        hide_input=True,
        confirmation_prompt=True,
        help="The password to log in with (8 to 128 characters); prompted when omitted.",
    ),
) -> None:
    """Create an admin account, or promote an existing one and set its password."""
    settings = get_settings()
    dsn = _database_url(settings)

    async def run() -> User:
        conn = await connect_single(dsn)
        try:
            async with conn.transaction():
                return await identity.create_admin(
                    conn,
                    email=email,
                    password=password,
                    passwords=Passwords.from_settings(settings),
                )
        finally:
            await conn.close()

    try:
        user = asyncio.run(run())
    except ValidationFailed as exc:
        for error in exc.errors or ():
            typer.echo(f"{error['field']}: {error['message']}", err=True)
        raise typer.Exit(code=2) from exc
    typer.echo(f"admin {user.email} ({', '.join(user.sorted_roles)}) can log in now")


app.command("bench")(bench_command)


if __name__ == "__main__":
    app()
