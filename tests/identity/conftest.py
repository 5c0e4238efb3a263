"""Helpers for identity's API tests."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from congocart.config import Settings
from congocart.core.db import Database
from congocart.main import create_app

PASSWORD = "correct horse battery staple"


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """A problem+json error of this status and code; every 401 carries a Bearer challenge."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["detail"]
    assert body["request_id"] == response.headers["x-request-id"]
    if status == 401:
        challenge = response.headers["www-authenticate"]
        assert challenge.startswith("Bearer")
        if code in ("invalid_token", "token_expired", "refresh_token_reused"):
            assert 'error="invalid_token"' in challenge
    return body


async def register(
    client: httpx.AsyncClient, email: str, password: str = PASSWORD, **extra: Any
) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/auth/register", json={"email": email, "password": password, **extra}
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> dict[str, Any]:
    response = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def bearer(access_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access_token}"}


def unverified_claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return claims


@pytest.fixture
async def committed_client(
    settings: Settings, committed_db: Database
) -> AsyncIterator[httpx.AsyncClient]:
    """A client on an app over `committed_db`: every request commits, on its own connection."""
    app = create_app(settings, database=committed_db)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client
