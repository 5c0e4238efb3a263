"""Rate limits: the limiter on real Redis and in-process, and the app-wide middleware."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
import redis.asyncio as aioredis
from fastapi import FastAPI
from prometheus_client import REGISTRY

from congocart.config import Settings
from congocart.core.db import Database
from congocart.core.errors import RateLimited
from congocart.core.ratelimit import (
    MemoryRateLimiter,
    RateLimiter,
    RateLimiterUnavailable,
    RedisRateLimiter,
    client_ip,
    parse_networks,
)
from congocart.main import create_app
from tests.conftest import MakeUser

# --- the limiter, on both backends ------------------------------------------------------


@pytest.fixture(params=["memory", "redis"])
def limiter(
    request: pytest.FixtureRequest, redis_client: aioredis.Redis, key_prefix: str
) -> RateLimiter:
    if request.param == "redis":
        return RedisRateLimiter(redis_client, prefix=key_prefix)
    return MemoryRateLimiter()


async def test_hits_within_the_limit_are_allowed_and_count_down(limiter: RateLimiter) -> None:
    decisions = [await limiter.hit("ip:a", limit=3, window_seconds=60) for _ in range(3)]
    assert [d.allowed for d in decisions] == [True, True, True]
    assert [d.remaining for d in decisions] == [2, 1, 0]
    assert all(58 < d.reset_after <= 60 for d in decisions)
    assert decisions[0].headers() == {
        "RateLimit-Limit": "3",
        "RateLimit-Remaining": "2",
        "RateLimit-Reset": "60",
    }


async def test_a_new_window_never_reports_more_than_its_length() -> None:
    # 1023.5972 + 60 - 1023.5972 is 60.000000000000114 in floating point, which
    # the RateLimit-Reset header would round up to 61.
    now = 1023.5972
    assert (now + 60) - now > 60
    limiter = MemoryRateLimiter(clock=lambda: now)
    first = await limiter.hit("ip:f", limit=3, window_seconds=60)
    assert first.reset_after == 60
    assert first.headers()["RateLimit-Reset"] == "60"
    assert (await limiter.peek("ip:f", limit=3, window_seconds=60)).reset_after == 60


async def test_a_hit_over_the_limit_is_denied_with_retry_after(limiter: RateLimiter) -> None:
    for _ in range(2):
        await limiter.hit("ip:b", limit=2, window_seconds=30)
    denied = await limiter.hit("ip:b", limit=2, window_seconds=30)
    assert not denied.allowed
    assert denied.remaining == 0
    headers = denied.headers()
    assert headers["RateLimit-Remaining"] == "0"
    assert 1 <= int(headers["Retry-After"]) <= 30
    assert headers["Retry-After"] == headers["RateLimit-Reset"]
    with pytest.raises(RateLimited) as raised:
        denied.raise_if_denied()
    assert raised.value.headers["Retry-After"] == headers["Retry-After"]


async def test_keys_are_counted_apart(limiter: RateLimiter) -> None:
    await limiter.hit("ip:c", limit=1, window_seconds=60)
    assert not (await limiter.hit("ip:c", limit=1, window_seconds=60)).allowed
    assert (await limiter.hit("ip:d", limit=1, window_seconds=60)).allowed


async def test_the_window_resets_when_it_ends(limiter: RateLimiter) -> None:
    assert (await limiter.hit("ip:e", limit=1, window_seconds=0.3)).allowed
    assert not (await limiter.hit("ip:e", limit=1, window_seconds=0.3)).allowed
    await asyncio.sleep(0.4)
    again = await limiter.hit("ip:e", limit=1, window_seconds=0.3)
    assert again.allowed
    assert again.remaining == 0


async def test_peek_tells_what_the_next_hit_would_find_without_counting(
    limiter: RateLimiter,
) -> None:
    fresh = await limiter.peek("login:f", limit=2, window_seconds=60)
    assert (fresh.allowed, fresh.remaining) == (True, 2)
    await limiter.hit("login:f", limit=2, window_seconds=60)
    assert (await limiter.peek("login:f", limit=2, window_seconds=60)).remaining == 1
    await limiter.hit("login:f", limit=2, window_seconds=60)
    exhausted = await limiter.peek("login:f", limit=2, window_seconds=60)
    assert (exhausted.allowed, exhausted.remaining) == (False, 0)
    assert (await limiter.peek("login:f", limit=2, window_seconds=60)).remaining == 0


async def test_reset_clears_a_key(limiter: RateLimiter) -> None:
    for _ in range(3):
        await limiter.hit("login:g", limit=2, window_seconds=60)
    await limiter.reset("login:g")
    assert (await limiter.hit("login:g", limit=2, window_seconds=60)).remaining == 1


async def test_two_redis_limiters_count_one_shared_limit(
    redis_url: str, redis_client: aioredis.Redis, key_prefix: str
) -> None:
    other_client: aioredis.Redis = aioredis.from_url(redis_url)
    try:
        first = RedisRateLimiter(redis_client, prefix=key_prefix)
        second = RedisRateLimiter(other_client, prefix=key_prefix)
        results = await asyncio.gather(
            *(lim.hit("ip:h", limit=10, window_seconds=60) for lim in [first, second] * 8)
        )
    finally:
        await other_client.aclose()
    assert sum(d.allowed for d in results) == 10
    assert sorted(d.remaining for d in results if d.allowed) == list(range(10))


async def test_an_unreachable_redis_raises_unavailable_and_then_stops_trying() -> None:
    down: aioredis.Redis = aioredis.from_url(
        "redis://127.0.0.1:1/0", socket_connect_timeout=0.5, socket_timeout=0.5
    )
    limiter = RedisRateLimiter(down, prefix="cc-test:down:")
    try:
        with pytest.raises(RateLimiterUnavailable):
            await limiter.hit("ip:i", limit=1, window_seconds=60)
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(RateLimiterUnavailable):
            await limiter.peek("ip:i", limit=1, window_seconds=60)
        assert loop.time() - started < 0.05  # paused: no second connection attempt
    finally:
        await down.aclose()


def test_memory_limiter_keeps_its_key_count_bounded() -> None:
    now = [0.0]
    limiter = MemoryRateLimiter(max_keys=100, clock=lambda: now[0])

    async def hammer() -> None:
        for n in range(1000):
            await limiter.hit(f"ip:{n}", limit=5, window_seconds=60)

    asyncio.run(hammer())
    assert len(limiter._windows) <= 100


# --- which client a request comes from ------------------------------------------------------


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("203.0.113.9", "198.51.100.1", "203.0.113.9"),  # untrusted peer: header ignored
        ("10.0.0.5", None, "10.0.0.5"),  # trusted proxy, no header: the proxy itself
        ("10.0.0.5", "198.51.100.1", "198.51.100.1"),
        ("10.0.0.5", "6.6.6.6, 198.51.100.1", "198.51.100.1"),  # client-written hops ignored
        ("10.0.0.5", "198.51.100.1, 10.0.0.7", "198.51.100.1"),  # skips trusted hops
        ("10.0.0.5", "not-an-ip", "10.0.0.5"),
        ("10.0.0.5", "198.51.100.1, garbage, 10.0.0.7", "10.0.0.7"),
        ("::1", "2001:db8::1", "2001:db8::1"),
    ],
)
def test_forwarded_for_is_believed_only_from_trusted_proxies(
    peer: str, forwarded: str | None, expected: str
) -> None:
    trusted = parse_networks(["10.0.0.0/8", "::1"])
    assert client_ip(peer, forwarded, trusted) == expected


# --- the app-wide limit ---------------------------------------------------------------------


def random_ip() -> str:
    # A random client per test: keys never meet another test's or another run's in Redis.
    a, b, c = (random.getrandbits(16) for _ in range(3))
    return f"2001:db8:{a:x}:{b:x}::{c:x}"


def limited(settings: Settings, **overrides: object) -> Settings:
    return settings.model_copy(
        update={
            "rate_limit_enabled": True,
            "rate_limit_per_minute_ip": 3,
            "rate_limit_per_minute_user": 5,
            **overrides,
        }
    )


@asynccontextmanager
async def client_for(app: FastAPI, ip: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=(ip, 40000))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as c,
    ):
        yield c


@pytest.fixture
def ip() -> str:
    return random_ip()


async def test_over_the_limit_a_client_gets_429_problem_with_rate_limit_headers(
    settings: Settings, db: Database, ip: str
) -> None:
    app = create_app(limited(settings), database=db)
    async with client_for(app, ip) as client:
        allowed = [await client.get("/api/v1/categories") for _ in range(3)]
        denied = await client.get("/api/v1/categories")
    assert [r.headers["ratelimit-remaining"] for r in allowed] == ["2", "1", "0"]
    assert all(r.headers["ratelimit-limit"] == "3" for r in allowed)
    assert all(r.status_code != 429 for r in allowed)
    assert denied.status_code == 429
    assert denied.headers["content-type"] == "application/problem+json"
    body = denied.json()
    assert body["code"] == "rate_limited"
    assert body["status"] == 429
    assert body["request_id"] == denied.headers["x-request-id"]
    assert denied.headers["ratelimit-limit"] == "3"
    assert denied.headers["ratelimit-remaining"] == "0"
    assert 1 <= int(denied.headers["retry-after"]) <= 60
    assert int(denied.headers["ratelimit-reset"]) <= 60


async def test_probes_are_never_limited(settings: Settings, db: Database, ip: str) -> None:
    app = create_app(limited(settings, rate_limit_per_minute_ip=1), database=db)
    async with client_for(app, ip) as client:
        responses = [await client.get("/healthz") for _ in range(5)]
    assert [r.status_code for r in responses] == [200] * 5
    assert "ratelimit-limit" not in responses[0].headers


async def test_with_limits_disabled_nothing_is_limited_or_announced(
    settings: Settings, db: Database, ip: str
) -> None:
    app = create_app(
        limited(settings, rate_limit_enabled=False, rate_limit_per_minute_ip=1), database=db
    )
    async with client_for(app, ip) as client:
        responses = [await client.get("/api/v1/categories") for _ in range(5)]
    assert all(r.status_code != 429 for r in responses)
    assert "ratelimit-limit" not in responses[-1].headers


async def test_two_app_instances_sharing_redis_share_one_limit(
    settings: Settings, db: Database, redis_url: str, ip: str
) -> None:
    shared = limited(settings, redis_url=redis_url)
    first, second = create_app(shared, database=db), create_app(shared, database=db)
    async with client_for(first, ip) as one, client_for(second, ip) as two:
        statuses = [
            (await one.get("/api/v1/categories")).status_code,
            (await two.get("/api/v1/categories")).status_code,
            (await one.get("/api/v1/categories")).status_code,
            (await two.get("/api/v1/categories")).status_code,
            (await one.get("/api/v1/categories")).status_code,
        ]
    assert [s == 429 for s in statuses] == [False, False, False, True, True]


async def test_instances_without_redis_count_apart(
    settings: Settings, db: Database, ip: str
) -> None:
    first = create_app(limited(settings), database=db)
    second = create_app(limited(settings), database=db)
    async with client_for(first, ip) as one, client_for(second, ip) as two:
        for _ in range(3):
            await one.get("/api/v1/categories")
        assert (await one.get("/api/v1/categories")).status_code == 429
        assert (await two.get("/api/v1/categories")).status_code != 429


async def test_an_unreachable_redis_fails_open(settings: Settings, db: Database, ip: str) -> None:
    app = create_app(
        limited(settings, redis_url="redis://127.0.0.1:1/0", rate_limit_per_minute_ip=1),
        database=db,
    )
    async with client_for(app, ip) as client:
        responses = [await client.get("/api/v1/categories") for _ in range(3)]
    assert all(r.status_code == 200 for r in responses)
    assert "ratelimit-limit" not in responses[0].headers


async def test_authenticated_callers_are_limited_per_user_not_per_ip(
    settings: Settings, db: Database, make_user: MakeUser, ip: str
) -> None:
    alice, bob = await make_user(), await make_user()
    app = create_app(limited(settings), database=db)  # 3 per IP, 5 per user
    async with client_for(app, ip) as client:
        alice_statuses = [
            (await client.get("/api/v1/me", headers=alice.headers)).status_code for _ in range(6)
        ]
        bob_after_alice = await client.get("/api/v1/me", headers=bob.headers)
        anonymous = [(await client.get("/api/v1/categories")).status_code for _ in range(4)]
    assert alice_statuses == [200] * 5 + [429]
    assert bob_after_alice.status_code == 200
    assert bob_after_alice.headers["ratelimit-limit"] == "5"
    assert anonymous[:3] != [429] * 3
    assert anonymous[3] == 429


async def test_a_token_that_does_not_verify_is_limited_by_ip(
    settings: Settings, db: Database, ip: str
) -> None:
    app = create_app(limited(settings), database=db)
    forged = {"Authorization": "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."}
    async with client_for(app, ip) as client:
        responses = [await client.get("/api/v1/categories", headers=forged) for _ in range(4)]
    assert responses[0].headers["ratelimit-limit"] == "3"
    assert responses[3].status_code == 429


async def test_forwarded_for_from_a_trusted_proxy_limits_each_client_apart(
    settings: Settings, db: Database
) -> None:
    proxy = random_ip()
    app = create_app(limited(settings, trusted_proxies=[proxy]), database=db)
    first_client, second_client = random_ip(), random_ip()
    async with client_for(app, proxy) as client:
        for _ in range(3):
            await client.get("/api/v1/categories", headers={"X-Forwarded-For": first_client})
        first_denied = await client.get(
            "/api/v1/categories", headers={"X-Forwarded-For": first_client}
        )
        second = await client.get("/api/v1/categories", headers={"X-Forwarded-For": second_client})
    assert first_denied.status_code == 429
    assert second.status_code != 429


async def test_forwarded_for_from_an_untrusted_peer_is_ignored(
    settings: Settings, db: Database, ip: str
) -> None:
    app = create_app(limited(settings), database=db)
    async with client_for(app, ip) as client:
        responses = [
            await client.get("/api/v1/categories", headers={"X-Forwarded-For": random_ip()})
            for _ in range(4)
        ]
    assert responses[3].status_code == 429


async def test_a_rate_limited_request_is_counted_in_the_metrics_like_any_other(
    settings: Settings, db: Database, ip: str
) -> None:
    def answered_429() -> float:
        return sum(
            sample.value
            for metric in REGISTRY.collect()
            if metric.name == "congocart_http_requests"
            for sample in metric.samples
            if sample.name.endswith("_total") and sample.labels.get("status") == "429"
        )

    before = answered_429()
    app = create_app(limited(settings, rate_limit_per_minute_ip=1), database=db)
    async with client_for(app, ip) as client:
        await client.get("/api/v1/categories")
        denied = await client.get("/api/v1/categories")
    assert denied.status_code == 429
    assert answered_429() == before + 1


async def test_a_routes_own_narrower_limit_headers_win_over_the_app_wide_ones(
    settings: Settings, db: Database, ip: str
) -> None:
    app = create_app(limited(settings, rate_limit_per_minute_ip=50), database=db)

    @app.post("/test/login")
    async def login() -> None:
        decision = await MemoryRateLimiter().hit("login:x", limit=1, window_seconds=900, cost=2)
        decision.raise_if_denied()

    async with client_for(app, ip) as client:
        response = await client.post("/test/login")
    assert response.status_code == 429
    assert response.headers.get_list("ratelimit-limit") == ["1"]
    assert response.headers.get_list("ratelimit-remaining") == ["0"]
    assert int(response.headers["retry-after"]) > 60
