"""First run without configuration: demo catalog and a printed admin password."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest

from congocart import cli
from congocart.config import Settings
from congocart.core.db import Database
from congocart.main import create_app


async def test_embedded_bootstrap_seeds_the_demo_catalog_and_prints_a_working_admin_password(
    committed_db: Database, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    await asyncio.to_thread(cli._bootstrap_embedded, committed_db.dsn, settings)
    printed = capsys.readouterr().out
    match = re.search(r"Created admin (\S+) with password (\S+) ", printed)
    assert match is not None, printed
    email, password = match.groups()

    await asyncio.to_thread(cli._bootstrap_embedded, committed_db.dsn, settings)
    assert "Created admin" not in capsys.readouterr().out, "the password is shown only once"

    app = create_app(settings, database=committed_db)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        products = (await client.get("/api/v1/products", params={"limit": 100})).json()
        assert len(products["items"]) == 24
        login = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
        assert login.status_code == 200
        me = await client.get(
            "/api/v1/me", headers={"Authorization": f"Bearer {login.json()['access_token']}"}
        )
        assert "admin" in me.json()["roles"]
