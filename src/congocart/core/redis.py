"""The shared Redis client, or None when REDIS_URL is unset (in-process fallbacks)."""

from __future__ import annotations

import redis.asyncio as aioredis


def create_redis(url: str | None) -> aioredis.Redis | None:
    if url is None:
        return None
    client: aioredis.Redis = aioredis.from_url(
        url, decode_responses=False, socket_timeout=1.0, socket_connect_timeout=1.0
    )
    return client
