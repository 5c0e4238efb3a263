"""Test fixtures on real PostgreSQL.

The server is the one at DATABASE_URL when set (CI), otherwise the embedded
`pgserver` one. Each run migrates a fresh template database once; the main
test database is a copy of it, and every test runs inside a transaction that
is rolled back. Tests that need committed data seen by several connections
(concurrency) take `committed_db`, their own fresh copy of the template.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest

from congocart.config import Settings
from congocart.core import migrations
from congocart.core.db import Connection, Database, connect_single, start_embedded_postgres
from congocart.main import create_app

ROOT = Path(__file__).resolve().parents[1]
RUN_ID = uuid.uuid4().hex[:8]


def with_database(dsn: str, name: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _server_dsn() -> str:
    dsn = os.environ.get("DATABASE_URL")
    if dsn:
        return dsn
    if os.environ.get("CI") == "true":
        pytest.fail("CI=true: DATABASE_URL must point at the PostgreSQL server")
    return start_embedded_postgres(ROOT / ".congocart" / "test")


async def admin_execute(dsn: str, *statements: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


class DatabaseCopies:
    """Fresh databases copied from the migrated template, dropped at the end."""

    def __init__(self, server_dsn: str, template: str) -> None:
        self.server_dsn = server_dsn
        self.template = template
        self.created: list[str] = []

    async def create(self) -> str:
        name = f"cc_test_{RUN_ID}_{len(self.created)}"
        await admin_execute(self.server_dsn, f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        self.created.append(name)
        return with_database(self.server_dsn, name)

    async def drop_all(self) -> None:
        names = [*self.created, self.template]
        await admin_execute(
            self.server_dsn, *(f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)' for n in names)
        )


@pytest.fixture(scope="session")
def server_dsn() -> str:
    return _server_dsn()


@pytest.fixture(scope="session")
def template_dsn(server_dsn: str) -> str:
    name = f"cc_template_{RUN_ID}"
    asyncio.run(admin_execute(server_dsn, f'CREATE DATABASE "{name}"'))
    dsn = with_database(server_dsn, name)
    migrations.upgrade(dsn)
    return dsn


@pytest.fixture(scope="session")
async def copies(server_dsn: str, template_dsn: str) -> AsyncIterator[DatabaseCopies]:
    name = urlsplit(template_dsn).path.lstrip("/")
    copies = DatabaseCopies(server_dsn, name)
    yield copies
    await copies.drop_all()


@pytest.fixture(scope="session")
async def test_dsn(copies: DatabaseCopies) -> str:
    return await copies.create()


@pytest.fixture(scope="session")
async def session_conn(test_dsn: str) -> AsyncIterator[Connection]:
    conn = await connect_single(test_dsn)
    yield conn
    await conn.close()


@pytest.fixture
async def conn(session_conn: Connection) -> AsyncIterator[Connection]:
    """A connection inside a transaction rolled back after the test."""
    tx = session_conn.transaction()
    await tx.start()
    try:
        yield session_conn
    finally:
        await tx.rollback()


class SingleConnectionDatabase(Database):
    """Every acquire yields the test's connection; transactions nest as savepoints."""

    def __init__(self, conn: Connection) -> None:
        super().__init__("unused")
        self._conn = conn

    async def connect(self) -> None:
        return None

    async def close(self) -> None:
        return None

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[Connection]:
        yield self._conn


@pytest.fixture
def settings() -> Settings:
    return Settings(
        env="test",
        database_url="postgresql://unused",
        rate_limit_enabled=False,
        log_json=True,
        log_level="WARNING",
    )


@pytest.fixture
def db(conn: Connection) -> Database:
    return SingleConnectionDatabase(conn)


@pytest.fixture
def app(settings: Settings, db: Database):  # type: ignore[no-untyped-def]
    return create_app(settings, database=db)


@pytest.fixture
async def client(app) -> AsyncIterator[httpx.AsyncClient]:  # type: ignore[no-untyped-def]
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture
async def committed_db(copies: DatabaseCopies) -> AsyncIterator[Database]:
    """A freshly migrated database of the test's own, with a real pool."""
    dsn = await copies.create()
    database = Database(dsn, min_size=2, max_size=30)
    await database.connect()
    yield database
    await database.close()
