"""Helpers for the infrastructure tests: real Redis, and waiting on async conditions."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import redis
import redis.asyncio as aioredis


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The Redis at REDIS_URL (default 127.0.0.1:6379). Unreachable fails, never skips."""
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis is not reachable at {url} ({exc}); start redis-server or set REDIS_URL")
    finally:
        client.close()
    return url


@pytest.fixture
def key_prefix() -> str:
    """A Redis key prefix of this test's own, so parallel runs never share keys."""
    return f"cc-test:{uuid.uuid4().hex}:"


@pytest.fixture
async def redis_client(redis_url: str, key_prefix: str) -> AsyncIterator[aioredis.Redis]:
    client: aioredis.Redis = aioredis.from_url(redis_url)
    yield client
    keys = [key async for key in client.scan_iter(match=f"{key_prefix}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


async def eventually(
    check: Callable[[], Awaitable[bool]], *, within: float = 10.0, interval: float = 0.02
) -> None:
    """Wait until `check()` is true; fail the test after `within` seconds."""
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {within} s")
        await asyncio.sleep(interval)
