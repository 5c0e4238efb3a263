"""`congocart create-admin`, run as a real process against a committed database."""

from __future__ import annotations

import asyncio
import os
import sys

import httpx

from congocart.core.db import Database
from tests.identity.conftest import PASSWORD, assert_problem, bearer, login, register

ADMIN_PASSWORD = "the admin's passphrase"


async def _create_admin(dsn: str, *args: str) -> tuple[int, str, str]:
    env = {
        **os.environ,
        "DATABASE_URL": dsn,
        "CONGOCART_PASSWORD_HASH_MEMORY_KIB": "8",
        "CONGOCART_PASSWORD_HASH_TIME_COST": "1",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "congocart.cli",
        "create-admin",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_create_admin_creates_an_admin_who_can_log_in(
    committed_db: Database, committed_client: httpx.AsyncClient
) -> None:
    code, out, err = await _create_admin(
        committed_db.dsn, "--email", "Boss@Example.com", "--password", ADMIN_PASSWORD
    )
    assert code == 0, err
    assert "boss@example.com" in out

    pair = await login(committed_client, "boss@example.com", ADMIN_PASSWORD)
    me = await committed_client.get("/api/v1/me", headers=bearer(pair["access_token"]))
    assert "admin" in me.json()["roles"]


async def test_create_admin_promotes_an_existing_account_and_sets_its_password(
    committed_db: Database, committed_client: httpx.AsyncClient
) -> None:
    await register(committed_client, "promoted@example.com")
    before = await login(committed_client, "promoted@example.com")

    code, _, err = await _create_admin(
        committed_db.dsn, "--email", "PROMOTED@example.com", "--password", ADMIN_PASSWORD
    )
    assert code == 0, err

    stale = await committed_client.get("/api/v1/me", headers=bearer(before["access_token"]))
    assert_problem(stale, 401, "invalid_token")
    old_password = await committed_client.post(
        "/api/v1/auth/login", json={"email": "promoted@example.com", "password": PASSWORD}
    )
    assert_problem(old_password, 401, "invalid_credentials")
    pair = await login(committed_client, "promoted@example.com", ADMIN_PASSWORD)
    me = await committed_client.get("/api/v1/me", headers=bearer(pair["access_token"]))
    assert me.json()["roles"] == ["customer", "admin"]
    async with committed_db.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM users") == 1


async def test_create_admin_refuses_a_password_outside_the_policy(
    committed_db: Database,
) -> None:
    code, _, err = await _create_admin(
        committed_db.dsn, "--email", "weak@example.com", "--password", "short"
    )
    assert code == 2
    assert "password" in err
    async with committed_db.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM users") == 0
