"""Per-account login limiting: N failed logins per account per window, then 429."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import redis.asyncio as aioredis
from fastapi import FastAPI

from congocart.config import Settings
from congocart.core.db import Database
from congocart.core.ratelimit import MemoryRateLimiter, RedisRateLimiter
from congocart.main import create_app
from tests.identity.conftest import PASSWORD, assert_problem, login, register

MAX_FAILURES = 3
WINDOW = 900


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def limited_app(settings: Settings, db: Database, clock: Clock) -> FastAPI:
    limited = settings.model_copy(
        update={
            "rate_limit_enabled": True,
            "rate_limit_login_failures": MAX_FAILURES,
            "rate_limit_login_window_seconds": WINDOW,
        }
    )
    app = create_app(limited, database=db)
    app.state.limiter = MemoryRateLimiter(clock=clock)
    return app


@pytest.fixture
async def limited(limited_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=limited_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def _fail(client: httpx.AsyncClient, email: str) -> httpx.Response:
    return await client.post("/api/v1/auth/login", json={"email": email, "password": "wrong!!!!"})


async def test_too_many_failed_logins_lock_the_account_with_429_and_rate_limit_headers(
    limited: httpx.AsyncClient,
) -> None:
    await register(limited, "lock@example.com")
    for _ in range(MAX_FAILURES):
        assert_problem(await _fail(limited, "lock@example.com"), 401, "invalid_credentials")

    # Locked: even the right password is refused until the window ends.
    response = await limited.post(
        "/api/v1/auth/login", json={"email": "LOCK@example.com", "password": PASSWORD}
    )
    assert_problem(response, 429, "rate_limited")
    assert int(response.headers["retry-after"]) > 0
    assert int(response.headers["retry-after"]) <= WINDOW
    # The account limit's own headers come first (the app-wide per-IP middleware
    # may append its own after them).
    assert response.headers.get_list("ratelimit-limit")[0] == str(MAX_FAILURES)
    assert response.headers.get_list("ratelimit-remaining")[0] == "0"
    assert 0 < int(response.headers.get_list("ratelimit-reset")[0]) <= WINDOW
    form = await limited.post(
        "/api/v1/auth/token", data={"username": "lock@example.com", "password": PASSWORD}
    )
    assert_problem(form, 429, "rate_limited")


async def test_the_lock_ends_with_the_window(limited: httpx.AsyncClient, clock: Clock) -> None:
    await register(limited, "later@example.com")
    for _ in range(MAX_FAILURES + 2):
        await _fail(limited, "later@example.com")
    clock.now += WINDOW + 1
    await login(limited, "later@example.com")


async def test_the_lock_is_per_account(limited: httpx.AsyncClient) -> None:
    await register(limited, "target@example.com")
    await register(limited, "bystander@example.com")
    for _ in range(MAX_FAILURES + 1):
        await _fail(limited, "target@example.com")
    await login(limited, "bystander@example.com")


async def test_unknown_emails_are_limited_like_known_ones(limited: httpx.AsyncClient) -> None:
    for _ in range(MAX_FAILURES):
        assert_problem(await _fail(limited, "ghost@example.com"), 401, "invalid_credentials")
    assert_problem(await _fail(limited, "ghost@example.com"), 429, "rate_limited")


async def test_a_successful_login_clears_the_failures(limited: httpx.AsyncClient) -> None:
    await register(limited, "oops@example.com")
    for _ in range(MAX_FAILURES - 1):
        await _fail(limited, "oops@example.com")
    await login(limited, "oops@example.com")
    for _ in range(MAX_FAILURES - 1):
        assert_problem(await _fail(limited, "oops@example.com"), 401, "invalid_credentials")
    await login(limited, "oops@example.com")


async def test_logins_fail_closed_with_503_when_the_limiter_store_is_down(
    limited_app: FastAPI, limited: httpx.AsyncClient
) -> None:
    await register(limited, "closed@example.com")
    unreachable = aioredis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    limited_app.state.limiter = RedisRateLimiter(unreachable)
    try:
        response = await limited.post(
            "/api/v1/auth/login", json={"email": "closed@example.com", "password": PASSWORD}
        )
    finally:
        await unreachable.aclose()
    assert_problem(response, 503, "service_unavailable")
    assert response.headers["retry-after"]
    assert "access_token" not in response.text


async def test_with_rate_limits_disabled_logins_are_not_limited(
    client: httpx.AsyncClient,
) -> None:
    await register(client, "loadtest@example.com")
    for _ in range(12):
        assert_problem(await _fail(client, "loadtest@example.com"), 401, "invalid_credentials")
    await login(client, "loadtest@example.com")
