"""Refresh-token rotation under real concurrency: committed data, a real pool."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import httpx
import pytest

from congocart.config import Settings
from congocart.core.db import Database
from congocart.main import create_app
from tests.identity.conftest import login, register


@pytest.fixture
async def committed_client(
    settings: Settings, committed_db: Database
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, database=committed_db)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def test_concurrent_refreshes_of_one_token_let_exactly_one_succeed(
    committed_client: httpx.AsyncClient, committed_db: Database
) -> None:
    await register(committed_client, "race@example.com")
    pair = await login(committed_client, "race@example.com")

    responses = await asyncio.gather(
        *(
            committed_client.post(
                "/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}
            )
            for _ in range(12)
        )
    )

    statuses = Counter(r.status_code for r in responses)
    assert statuses[200] == 1, statuses
    assert statuses[401] == 11, statuses
    assert {r.json()["code"] for r in responses if r.status_code == 401} == {"refresh_token_reused"}
    async with committed_db.acquire() as conn:
        # One rotation happened: the login's token plus exactly one successor.
        assert await conn.fetchval("SELECT count(*) FROM refresh_tokens") == 2
        # The losers saw a spent token presented again, so the family is revoked.
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM refresh_token_families WHERE revoked_at IS NOT NULL"
            )
            == 1
        )
