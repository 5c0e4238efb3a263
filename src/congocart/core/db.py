"""The database: one asyncpg pool per process, and the request's transaction.

Only the request boundary (`transaction` below) and job wrappers begin and
commit transactions; services receive the connection and never commit.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeAlias

import asyncpg
import orjson
from fastapi import Depends, Request

from congocart.core.errors import CongoError

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    Connection: TypeAlias = asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]
else:
    Connection = asyncpg.Connection


async def _init_connection(conn: Connection) -> None:
    for json_type in ("json", "jsonb"):
        await conn.set_type_codec(
            json_type,
            encoder=lambda value: orjson.dumps(value).decode(),
            decoder=orjson.loads,
            schema="pg_catalog",
        )


async def _keep_session(conn: Connection) -> None:
    """A release that sends nothing: asyncpg still rolls back an open transaction."""
    return None


class Database:
    """A pool of connections to PostgreSQL (and an optional read replica).

    `keep_session=True` (the default) skips asyncpg's session reset on
    release (`RESET ALL`, `UNLISTEN *`, `CLOSE ALL`, advisory unlock: four
    statements on every request). The rule that makes it safe: no code leaves
    session state behind on a pooled connection — settings are `SET LOCAL`
    inside a transaction, and the worker's LISTEN connection removes its
    listener before it goes back. An open transaction is still rolled back.
    """

    def __init__(
        self, dsn: str, *, min_size: int = 2, max_size: int = 20, keep_session: bool = True
    ) -> None:
        self.dsn = dsn
        self._min_size = min_size
        self._max_size = max_size
        self._keep_session = keep_session
        self._pool: asyncpg.Pool[asyncpg.Record] | None = None

    async def connect(self) -> None:
        self._pool = await asyncpg.create_pool(
            self.dsn,
            min_size=self._min_size,
            max_size=self._max_size,
            init=_init_connection,
            reset=_keep_session if self._keep_session else None,
            # The transaction-pooling friendly default: no server-side statement
            # cache invalidation surprises after migrations.
            max_inactive_connection_lifetime=300,
        )

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    def acquire(self) -> AbstractAsyncContextManager[Connection]:
        """A pooled connection for an `async with` block (asyncpg's own context
        manager: no generator of ours around it on every request)."""
        if self._pool is None:
            raise RuntimeError("Database.connect() was not called")
        return self._pool.acquire()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        async with self.acquire() as conn, conn.transaction():
            yield conn

    async def ping(self) -> None:
        async with self.acquire() as conn:
            await conn.fetchval("SELECT 1", timeout=2)


async def connect_single(dsn: str) -> Connection:
    conn: Connection = await asyncpg.connect(dsn)
    await _init_connection(conn)
    return conn


def start_embedded_postgres(home: Path) -> str:
    """Start (or reuse) the PostgreSQL shipped in the `pgserver` wheel; return its DSN."""
    import pgserver

    data_dir = (home / "pgdata").resolve()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(str(data_dir), cleanup_mode=None)  # type: ignore[attr-defined]
    exists = server.psql("SELECT 1 FROM pg_database WHERE datname = 'congocart';")
    if "(1 row)" not in exists:
        server.psql("CREATE DATABASE congocart;")
    return f"postgresql://postgres@/congocart?host={data_dir}"


def get_database(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


async def connection(request: Request) -> AsyncIterator[Connection]:
    """A pooled connection without a transaction, for read-only routes."""
    async with get_database(request).acquire() as conn:
        yield conn


Conn = Annotated[Connection, Depends(connection, scope="function")]
AfterCommit = Callable[[], Awaitable[None]]


def after_commit(request: Request, callback: AfterCommit) -> None:
    """Run `callback` right after the request's transaction (`Tx`) commits.

    It runs before the response is sent; nothing runs if the transaction rolls
    back, and a callback that raises turns the response into an error. For work
    that must follow the commit, such as cache invalidation.
    """
    callbacks: list[AfterCommit] | None = getattr(request.state, "after_commit", None)
    if callbacks is None:
        callbacks = []
        request.state.after_commit = callbacks
    callbacks.append(callback)


async def _run_after_commit(request: Request) -> None:
    callbacks: list[AfterCommit] = getattr(request.state, "after_commit", [])
    request.state.after_commit = []
    for callback in callbacks:
        await callback()


async def transaction(request: Request, conn: Conn) -> AsyncIterator[Connection]:
    """One transaction per request: committed before the response is sent.

    Declared with `scope="function"` where used, so a failed commit becomes a
    5xx instead of a 2xx that was already on the wire. It runs on the request's
    `Conn`, so other dependencies of the same request (the caller's
    authentication) share one pooled connection instead of holding two.
    Any error rolls back, except a `CongoError` with `keeps_changes`.
    """
    tx = conn.transaction()
    await tx.start()
    try:
        yield conn
    except CongoError as exc:
        if exc.keeps_changes:
            await tx.commit()
            await _run_after_commit(request)
        else:
            await tx.rollback()
        raise
    except BaseException:
        await tx.rollback()
        raise
    else:
        await tx.commit()
        await _run_after_commit(request)


Tx = Annotated[Connection, Depends(transaction, scope="function")]


class Params:
    """The parameters of one statement composed from several features' parts.

    A statement on the hot path may join steps that belong to different
    features (lock the cart, take the stock, write the order) to save round
    trips. Each feature still writes the SQL of its own tables, as a part
    built by a function in its repository: the part adds its values here and
    writes the `$n` placeholder it gets back into its text. Only placeholders
    are formatted into SQL, never values, and the same steps give the same
    text, so asyncpg's prepared statement cache still applies.

        p = Params()
        sql = f"SELECT * FROM carts WHERE id = {p(cart_id)}"
        await conn.fetchrow(sql, *p.values)
    """

    __slots__ = ("values",)

    def __init__(self) -> None:
        self.values: list[object] = []

    def __call__(self, value: object) -> str:
        self.values.append(value)
        return f"${len(self.values)}"

    def array(self, values: list[Any], sql_type: str) -> str:
        """An array parameter read through a scalar subquery: `(SELECT $n::text[])`.

        PostgreSQL estimates `unnest($n)` from the array's actual length when it
        plans a statement for its values (a custom plan), but as 10 rows for any
        values (the generic plan). Those two cost differently, so it keeps
        choosing custom plans, and plans the statement anew on every execution:
        0.4 ms of PostgreSQL CPU for each of checkout's larger statements. Read
        through a subquery, the length is unknown to both plans, they cost the
        same, and the generic plan is kept and reused.
        """
        return f"(SELECT {self(values)}::{sql_type})"


def abort_unless(condition: str, reason: str) -> str:
    """SQL that aborts the whole statement unless `condition` holds.

    For a statement of data-modifying CTEs run without a transaction: select
    this, and when `condition` is false at the end every write of the
    statement is undone, and asyncpg raises the error `aborted` recognises.
    `reason` is a fixed word of the caller's (no quotes), never a value.
    """
    if not reason.replace("_", "").isalnum():
        raise ValueError("an abort reason is a fixed word")
    return f"congocart_abort_unless({condition}, '{reason}')"


def aborted(exc: BaseException) -> str | None:
    """The reason an `abort_unless` condition gave, when `exc` is that abort."""
    if isinstance(exc, asyncpg.RaiseError) and exc.hint == "congocart_abort":
        return str(exc.message)
    return None
