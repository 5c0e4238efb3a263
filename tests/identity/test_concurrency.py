"""Refresh-token rotation under real concurrency: committed data, a real pool."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx

from congocart.core.db import Database
from tests.identity.conftest import login, register


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


async def test_concurrent_registrations_of_one_email_create_exactly_one_account(
    committed_client: httpx.AsyncClient, committed_db: Database
) -> None:
    responses = await asyncio.gather(
        *(
            committed_client.post(
                "/api/v1/auth/register",
                json={"email": f"{'SAME' if i % 2 else 'same'}@example.com", "password": "p" * 12},
            )
            for i in range(8)
        )
    )
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 1, 409: 7}, statuses
    async with committed_db.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM users") == 1
