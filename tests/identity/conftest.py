"""Helpers for identity's API tests."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx

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
