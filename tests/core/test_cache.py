"""The read-through cache on real Redis and in-process, and invalidation after commit."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from uuid import UUID

import httpx
import pytest
import redis.asyncio as aioredis
from fastapi import Request

from congocart.config import Settings
from congocart.core.cache import (
    Cache,
    CacheUnavailable,
    MemoryCache,
    NullCache,
    RedisCache,
    invalidate_after_commit,
)
from congocart.core.db import Database, Tx
from congocart.core.errors import Conflict
from congocart.main import create_app


class CountingLoader:
    """A loader that returns `value` and counts its calls."""

    def __init__(self, value: bytes) -> None:
        self.value = value
        self.calls = 0

    async def __call__(self) -> bytes:
        self.calls += 1
        return self.value


@pytest.fixture(params=["memory", "redis"])
def cache(request: pytest.FixtureRequest, redis_client: aioredis.Redis, key_prefix: str) -> Cache:
    if request.param == "redis":
        return RedisCache(redis_client, prefix=key_prefix)
    return MemoryCache()


async def test_a_miss_loads_and_a_hit_serves_without_loading(cache: Cache) -> None:
    load = CountingLoader(b'{"price":"19.99"}')
    first = await cache.get_or_load("catalog", "product:mug", load, ttl=60)
    second = await cache.get_or_load("catalog", "product:mug", load, ttl=60)
    assert first == second == b'{"price":"19.99"}'
    assert load.calls == 1


async def test_different_keys_and_namespaces_are_cached_apart(cache: Cache) -> None:
    assert await cache.get_or_load("catalog", "a", CountingLoader(b"1"), ttl=60) == b"1"
    assert await cache.get_or_load("catalog", "b", CountingLoader(b"2"), ttl=60) == b"2"
    assert await cache.get_or_load("other", "a", CountingLoader(b"3"), ttl=60) == b"3"
    assert await cache.get_or_load("catalog", "a", CountingLoader(b"x"), ttl=60) == b"1"


async def test_an_entry_expires_after_its_ttl(cache: Cache) -> None:
    await cache.get_or_load("catalog", "k", CountingLoader(b"old"), ttl=0.2)
    await asyncio.sleep(0.3)
    reload = CountingLoader(b"new")
    assert await cache.get_or_load("catalog", "k", reload, ttl=60) == b"new"
    assert reload.calls == 1


async def test_invalidating_a_namespace_drops_all_its_entries_and_no_other(cache: Cache) -> None:
    for key in ("a", "b"):
        await cache.get_or_load("catalog", key, CountingLoader(b"old"), ttl=60)
    await cache.get_or_load("carts", "a", CountingLoader(b"kept"), ttl=60)

    await cache.invalidate("catalog")

    reload = CountingLoader(b"new")
    assert await cache.get_or_load("catalog", "a", reload, ttl=60) == b"new"
    assert await cache.get_or_load("catalog", "b", reload, ttl=60) == b"new"
    assert reload.calls == 2
    assert await cache.get_or_load("carts", "a", CountingLoader(b"x"), ttl=60) == b"kept"
    # And the reloaded entries are cached again.
    assert await cache.get_or_load("catalog", "a", CountingLoader(b"x"), ttl=60) == b"new"


async def test_a_value_loaded_across_an_invalidation_is_never_served_after_it(
    cache: Cache,
) -> None:
    loading, release = asyncio.Event(), asyncio.Event()

    async def slow_old_read() -> bytes:
        loading.set()
        await release.wait()
        return b"read before the write"

    reader = asyncio.create_task(cache.get_or_load("catalog", "p", slow_old_read, ttl=60))
    await loading.wait()
    await cache.invalidate("catalog")  # the write commits and invalidates meanwhile
    release.set()
    assert await reader == b"read before the write"  # that reader may see its own read
    fresh = CountingLoader(b"after the write")
    assert await cache.get_or_load("catalog", "p", fresh, ttl=60) == b"after the write"
    assert fresh.calls == 1


async def test_json_values_come_back_the_same_on_a_hit_and_a_miss(cache: Cache) -> None:
    value = {"id": UUID(int=7), "price": Decimal("19.99"), "tags": ["a"], "stock": 3}
    calls = 0

    async def load() -> object:
        nonlocal calls
        calls += 1
        return value

    miss = await cache.get_or_load_json("catalog", "j", load, ttl=60)
    hit = await cache.get_or_load_json("catalog", "j", load, ttl=60)
    assert (
        miss
        == hit
        == {
            "id": "00000000-0000-0000-0000-000000000007",
            "price": "19.99",
            "tags": ["a"],
            "stock": 3,
        }
    )
    assert calls == 1


async def test_two_redis_caches_share_entries_and_see_each_others_invalidation(
    redis_url: str, redis_client: aioredis.Redis, key_prefix: str
) -> None:
    other_client: aioredis.Redis = aioredis.from_url(redis_url)
    try:
        first = RedisCache(redis_client, prefix=key_prefix)
        second = RedisCache(other_client, prefix=key_prefix)
        await first.get_or_load("catalog", "p", CountingLoader(b"v1"), ttl=60)
        unused = CountingLoader(b"never")
        assert await second.get_or_load("catalog", "p", unused, ttl=60) == b"v1"
        assert unused.calls == 0

        await second.invalidate("catalog")

        assert await first.get_or_load("catalog", "p", CountingLoader(b"v2"), ttl=60) == b"v2"
    finally:
        await other_client.aclose()


async def test_an_unreachable_redis_serves_from_the_loader_but_refuses_to_invalidate() -> None:
    down: aioredis.Redis = aioredis.from_url(
        "redis://127.0.0.1:1/0", socket_connect_timeout=0.5, socket_timeout=0.5
    )
    cache = RedisCache(down, prefix="cc-test:down:")
    try:
        load = CountingLoader(b"from the database")
        for _ in range(2):
            assert await cache.get_or_load("catalog", "p", load, ttl=60) == b"from the database"
        assert load.calls == 2
        with pytest.raises(CacheUnavailable):
            await cache.invalidate("catalog")
    finally:
        await down.aclose()


async def test_memory_cache_drops_the_least_recently_used_beyond_its_size() -> None:
    cache = MemoryCache(max_entries=2)
    await cache.get_or_load("n", "a", CountingLoader(b"a"), ttl=60)
    await cache.get_or_load("n", "b", CountingLoader(b"b"), ttl=60)
    await cache.get_or_load("n", "a", CountingLoader(b"x"), ttl=60)  # a is used again
    await cache.get_or_load("n", "c", CountingLoader(b"c"), ttl=60)  # b goes
    assert await cache.get_or_load("n", "a", CountingLoader(b"x"), ttl=60) == b"a"
    assert await cache.get_or_load("n", "b", CountingLoader(b"b2"), ttl=60) == b"b2"


async def test_the_null_cache_always_loads() -> None:
    cache, load = NullCache(), CountingLoader(b"v")
    for _ in range(3):
        await cache.get_or_load("catalog", "p", load, ttl=60)
    await cache.invalidate("catalog")
    assert load.calls == 3


def test_the_app_caches_in_process_without_redis_and_in_redis_with_it(
    settings: Settings,
) -> None:
    assert isinstance(create_app(settings).state.cache, MemoryCache)
    assert isinstance(
        create_app(settings.model_copy(update={"in_process_cache": False})).state.cache, NullCache
    )
    with_redis = settings.model_copy(update={"redis_url": "redis://127.0.0.1:6379/0"})
    assert isinstance(create_app(with_redis).state.cache, RedisCache)


# --- invalidation after the request's commit ------------------------------------------------


async def test_a_route_invalidates_after_its_commit_and_not_on_rollback(
    committed_db: Database, settings: Settings
) -> None:
    async with committed_db.acquire() as conn:
        await conn.execute("CREATE TABLE prices (sku text PRIMARY KEY, minor bigint NOT NULL)")
        await conn.execute("INSERT INTO prices VALUES ('MUG', 1999)")
    app = create_app(settings, database=committed_db)
    cache: Cache = app.state.cache
    seen_by_invalidation: list[int] = []

    async def read_price() -> bytes:
        async with committed_db.acquire() as other:
            return str(await other.fetchval("SELECT minor FROM prices")).encode()

    class Recording(MemoryCache):
        async def invalidate(self, namespace: str) -> None:
            # What a concurrent reader would load at the moment of invalidation.
            seen_by_invalidation.append(int(await read_price()))
            await super().invalidate(namespace)

    cache = app.state.cache = Recording()

    @app.put("/test/prices/{minor}")
    async def set_price(request: Request, tx: Tx, minor: int) -> dict[str, int]:
        await tx.execute("UPDATE prices SET minor = $1", minor)
        invalidate_after_commit(request, "catalog")
        if minor < 0:
            raise Conflict("negative")
        return {"minor": minor}

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert await cache.get_or_load("catalog", "MUG", read_price, ttl=60) == b"1999"
        assert (await client.put("/test/prices/2499")).status_code == 200
        # Invalidated once the new price was committed, before the response.
        assert seen_by_invalidation == [2499]
        assert await cache.get_or_load("catalog", "MUG", read_price, ttl=60) == b"2499"

        assert (await client.put("/test/prices/-1")).status_code == 409
        assert seen_by_invalidation == [2499]  # rolled back: nothing invalidated
        assert await cache.get_or_load("catalog", "MUG", read_price, ttl=60) == b"2499"
