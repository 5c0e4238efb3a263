"""A read-through cache of JSON bytes: Redis when configured, else in this process.

Entries live in namespaces (e.g. "catalog"). Each namespace has a generation
number that is part of every entry's key, so `invalidate(namespace)` drops
every entry of the namespace at once with a single atomic INCR: readers move
to keys that do not exist yet, and the orphaned entries age out by their TTL.

    body = await cache.get_or_load("catalog", f"product:{slug}", render, ttl=60)

`render` returns the bytes to cache (orjson: `cache.dumps(value)`); the cached
bytes can go straight into a `Response`. `get_or_load_json` does the same with
decoded values.

Freshness rule for writers: invalidate AFTER the database commit and BEFORE
the response is sent. Invalidating inside the transaction leaves a gap: a
reader that misses between the INCR and the COMMIT reloads the old row and
caches it under the new generation. Routes do it with
`invalidate_after_commit(request, "catalog")` (the request's `Tx` runs it
right after committing). A reader that read the generation before the bump
and stores its (possibly old) value afterwards stores it under the old
generation, where nobody reads any more; that is why the store uses the
generation read before loading, never a fresh one.

If Redis fails, reads degrade to the loader (logged once per outage), but
`invalidate` raises `CacheUnavailable` (503): a write must not be acknowledged
while stale entries could still be served once Redis answers again.

Several API processes without Redis cannot share invalidations, so
`congocart serve --workers N` (N > 1) without REDIS_URL turns the cache off
(`NullCache`) rather than serve stale data.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Annotated, Any

import orjson
import redis.asyncio as aioredis
import structlog
from fastapi import Depends, Request
from redis.exceptions import RedisError

from congocart.core.db import after_commit
from congocart.core.errors import ServiceUnavailable

log = structlog.get_logger(__name__)

Loader = Callable[[], Awaitable[bytes]]


class CacheUnavailable(ServiceUnavailable):
    default_detail = "The cache could not be updated; the change is saved, retry to confirm."


def _default(value: object) -> object:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def dumps(value: Any) -> bytes:
    """JSON bytes; Decimal as a string (never a float), UUID and datetime as orjson does."""
    return orjson.dumps(value, default=_default)


class Cache:
    """The cache interface; `get_or_load` is what callers use."""

    async def lookup(self, namespace: str, key: str) -> tuple[int, bytes | None]:
        """The namespace's current generation and the entry under it, if any."""
        raise NotImplementedError

    async def store(
        self, namespace: str, generation: int, key: str, value: bytes, *, ttl: float
    ) -> None:
        raise NotImplementedError

    async def invalidate(self, namespace: str) -> None:
        """Drop every entry of `namespace`, atomically; returns once it is done."""
        raise NotImplementedError

    async def get_or_load(self, namespace: str, key: str, load: Loader, *, ttl: float) -> bytes:
        generation, cached = await self.lookup(namespace, key)
        if cached is not None:
            return cached
        value = await load()
        await self.store(namespace, generation, key, value, ttl=ttl)
        return value

    async def get_or_load_json(
        self, namespace: str, key: str, load: Callable[[], Awaitable[Any]], *, ttl: float
    ) -> Any:
        """Like `get_or_load` for JSON values; a hit and a miss return the same types."""

        async def load_bytes() -> bytes:
            return dumps(await load())

        return orjson.loads(await self.get_or_load(namespace, key, load_bytes, ttl=ttl))


class MemoryCache(Cache):
    """Entries in this process, least recently used dropped beyond `max_entries`."""

    def __init__(
        self, *, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._generations: dict[str, int] = {}
        self._entries: OrderedDict[tuple[str, int, str], tuple[bytes, float]] = OrderedDict()
        self._max_entries = max_entries
        self._clock = clock

    async def lookup(self, namespace: str, key: str) -> tuple[int, bytes | None]:
        generation = self._generations.get(namespace, 0)
        entry_key = (namespace, generation, key)
        entry = self._entries.get(entry_key)
        if entry is None:
            return generation, None
        value, expires_at = entry
        if expires_at <= self._clock():
            del self._entries[entry_key]
            return generation, None
        self._entries.move_to_end(entry_key)
        return generation, value

    async def store(
        self, namespace: str, generation: int, key: str, value: bytes, *, ttl: float
    ) -> None:
        if generation != self._generations.get(namespace, 0):
            return  # invalidated while loading: the value may predate the write
        self._entries[(namespace, generation, key)] = (value, self._clock() + ttl)
        self._entries.move_to_end((namespace, generation, key))
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    async def invalidate(self, namespace: str) -> None:
        generation = self._generations.get(namespace, 0)
        self._generations[namespace] = generation + 1
        for entry_key in [k for k in self._entries if k[0] == namespace]:
            del self._entries[entry_key]


class NullCache(Cache):
    """Caches nothing: every read loads."""

    async def lookup(self, namespace: str, key: str) -> tuple[int, bytes | None]:
        return 0, None

    async def store(
        self, namespace: str, generation: int, key: str, value: bytes, *, ttl: float
    ) -> None:
        return None

    async def invalidate(self, namespace: str) -> None:
        return None


# One round trip: read the generation, then the entry under it. The key is built
# inside the script; the `{namespace}` hash tag keeps both keys in one cluster slot.
_LOOKUP_SCRIPT = """
local generation = redis.call('GET', KEYS[1]) or '0'
return {generation, redis.call('GET', ARGV[1] .. generation .. ':' .. ARGV[2])}
"""


class RedisCache(Cache):
    """Entries in Redis, shared by every process using the same Redis and prefix."""

    def __init__(
        self, redis: aioredis.Redis, *, prefix: str = "cc:cache:", pause_after_failure: float = 5.0
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._lookup_script = redis.register_script(_LOOKUP_SCRIPT)
        self._pause_after_failure = pause_after_failure
        self._down_until = 0.0

    def _generation_key(self, namespace: str) -> str:
        return f"{self._prefix}{{{namespace}}}:gen"

    def _entry_prefix(self, namespace: str) -> str:
        return f"{self._prefix}{{{namespace}}}:"

    async def lookup(self, namespace: str, key: str) -> tuple[int, bytes | None]:
        if time.monotonic() < self._down_until:
            return -1, None
        try:
            generation, value = await self._lookup_script(
                keys=[self._generation_key(namespace)],
                args=[self._entry_prefix(namespace), key],
            )
        except (RedisError, OSError) as exc:
            self._failed(exc)
            return -1, None  # -1: do not store what gets loaded
        return int(generation), value

    async def store(
        self, namespace: str, generation: int, key: str, value: bytes, *, ttl: float
    ) -> None:
        if generation < 0 or time.monotonic() < self._down_until:
            return
        entry_key = f"{self._entry_prefix(namespace)}{generation}:{key}"
        try:
            await self._redis.set(entry_key, value, px=max(1, int(ttl * 1000)))
        except (RedisError, OSError) as exc:
            self._failed(exc)

    async def invalidate(self, namespace: str) -> None:
        # Tried even while reads are paused: this is the call freshness depends on.
        try:
            await self._redis.incr(self._generation_key(namespace))
        except (RedisError, OSError) as exc:
            self._failed(exc)
            raise CacheUnavailable from exc

    def _failed(self, exc: BaseException) -> None:
        if time.monotonic() >= self._down_until:
            log.warning("cache_unavailable", error=repr(exc))
        self._down_until = time.monotonic() + self._pause_after_failure


def create_cache(redis: aioredis.Redis | None, *, in_process: bool = True) -> Cache:
    if redis is not None:
        return RedisCache(redis)
    return MemoryCache() if in_process else NullCache()


def get_cache(request: Request) -> Cache:
    cache: Cache = request.app.state.cache
    return cache


CacheDep = Annotated[Cache, Depends(get_cache)]


def invalidate_after_commit(request: Request, namespace: str) -> None:
    """Invalidate `namespace` once the request's transaction has committed."""
    cache = get_cache(request)

    async def invalidate() -> None:
        await cache.invalidate(namespace)

    after_commit(request, invalidate)
