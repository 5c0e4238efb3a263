"""A sandbox gateway over a committed database of its own (it is an outside system)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from congocart.adapters.sandbox_gateway import SandboxGateway
from congocart.core.db import Database
from tests.conftest import DatabaseCopies


@pytest.fixture(scope="session")
async def sandbox_dsn(copies: DatabaseCopies) -> str:
    return await copies.create()


@pytest.fixture(scope="session")
async def sandbox_database(sandbox_dsn: str) -> AsyncIterator[Database]:
    database = Database(sandbox_dsn, min_size=1, max_size=20)
    await database.connect()
    yield database
    await database.close()


@pytest.fixture
def gateway(sandbox_database: Database) -> SandboxGateway:
    return SandboxGateway(sandbox_database)
