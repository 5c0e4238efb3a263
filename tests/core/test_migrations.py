"""Migrations are the only way the schema is made: up from empty, and back down."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg

from congocart.core import migrations
from tests.conftest import admin_execute, with_database


async def _tables(dsn: str) -> set[str]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    finally:
        await conn.close()
    return {r["tablename"] for r in rows}


async def test_upgrade_from_empty_and_downgrade_back(server_dsn: str) -> None:
    name = f"cc_migrations_{uuid.uuid4().hex[:8]}"
    await admin_execute(server_dsn, f'CREATE DATABASE "{name}"')
    dsn = with_database(server_dsn, name)
    try:
        await asyncio.to_thread(migrations.upgrade, dsn)
        upgraded = await _tables(dsn)
        assert {"jobs", "idempotency_keys"} <= upgraded

        await asyncio.to_thread(migrations.downgrade, dsn)
        assert await _tables(dsn) == {"alembic_version"}

        await asyncio.to_thread(migrations.upgrade, dsn)
        assert await _tables(dsn) == upgraded
    finally:
        await admin_execute(server_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
