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
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from congocart.config import Settings
from congocart.core import migrations
from congocart.core.db import Connection, Database, connect_single, start_embedded_postgres
from congocart.core.security import Passwords, load_token_keys, private_key_pem
from congocart.identity import service as identity
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


# One signing key for the whole run, so tokens made by fixtures verify in the app.
TEST_JWT_PRIVATE_KEY = private_key_pem(Ed25519PrivateKey.generate())


@pytest.fixture
def settings() -> Settings:
    return Settings(
        env="test",
        database_url="postgresql://unused",
        # In-process cache and limits: tests of one run never meet another
        # run's Redis keys. Tests of the Redis backends configure it themselves.
        redis_url=None,
        rate_limit_enabled=False,
        log_json=True,
        log_level="WARNING",
        jwt_private_key=TEST_JWT_PRIVATE_KEY,
        # The smallest Argon2id cost: hashing stays real but takes microseconds.
        password_hash_memory_kib=8,
        password_hash_time_cost=1,
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


@dataclass(frozen=True)
class TestUser:
    """A user created in the test's transaction, with a valid access token."""

    __test__ = False  # not a test class, whatever its name

    id: uuid.UUID
    email: str
    password: str
    roles: frozenset[str]
    headers: dict[str, str] = field(repr=False)


MakeUser = Callable[..., Awaitable[TestUser]]


@pytest.fixture
def make_user(conn: Connection, settings: Settings) -> MakeUser:
    """`await make_user(roles=("admin",))`: a user on the test's connection, with
    `headers = {"Authorization": "Bearer <access token>"}` accepted by `client`."""
    keys = load_token_keys(settings)
    passwords = Passwords.from_settings(settings)

    async def make(
        roles: Iterable[str] = ("customer",),
        email: str | None = None,
        password: str = "correct horse battery staple",  # noqa: S107
    ) -> TestUser:
        user = await identity.register_user(
            conn,
            email=email or f"user-{uuid.uuid4().hex[:12]}@example.com",
            password=password,
            passwords=passwords,
            roles=frozenset(roles),
        )
        token = await identity.issue_access_token_for(conn, user_id=user.id, keys=keys)
        return TestUser(
            id=user.id,
            email=user.email,
            password=password,
            roles=user.roles,
            headers={"Authorization": f"Bearer {token}"},
        )

    return make
