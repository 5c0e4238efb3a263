"""Rate limits: counters in Redis shared by every API process, or in-process without it.

Algorithm: a fixed window per key. The first hit on a key starts a window of
`window_seconds`; every hit in it counts, denied ones too (so hammering does
not help), and the key expires when the window ends. In Redis one Lua script
does INCRBY and, on the window's first hit, PEXPIRE, then returns the count and
the time left: atomic, one round trip, and the window's clock is Redis's, so
processes with skewed clocks agree. The known cost of fixed windows: a client
can spend up to twice the limit around a window's end. For the generous
per-IP/per-user limits and the login-failure limit that is an acceptable
bound, in exchange for exact `RateLimit-Reset`/`Retry-After` values and one
key per client.

Without `REDIS_URL` the same windows are counted in this process's memory:
right for one process (the embedded default); with several API processes each
counts on its own, so the effective limit is multiplied by their number.

Failure policy. If Redis is configured but does not answer, `hit`/`peek`
raise `RateLimiterUnavailable` (after one failure the limiter stops trying for
a few seconds, so an outage does not add a timeout to every request). The
app-wide per-IP/per-user limit then fails OPEN, logged once per outage: it
protects capacity, not secrets, and turning a cache-tier outage into a
storefront outage would do more harm than the unthrottled traffic. Callers
guarding secrets (per-account login failures) should decide for themselves,
typically failing closed with 503.

For per-account login limits (the identity feature):

    limiter: RateLimiter = request.app.state.limiter   # or the `Limiter` dependency
    key = f"login:{email.lower()}"
    decision = await limiter.peek(key, limit=..., window_seconds=...)
    decision.raise_if_denied()            # 429 rate_limited with Retry-After, RateLimit-*
    ... on a failed password: await limiter.hit(key, limit=..., window_seconds=...)
    ... on success: await limiter.reset(key)
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network
from typing import Annotated, Any

import redis.asyncio as aioredis
import structlog
from fastapi import Depends, Request
from redis.exceptions import RedisError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from congocart.core.errors import RateLimited, ServiceUnavailable, problem_response

log = structlog.get_logger(__name__)

EXEMPT_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


class RateLimiterUnavailable(ServiceUnavailable):
    default_detail = "Rate limiting is unavailable; try again shortly."


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of a hit (or a peek) on a key."""

    allowed: bool
    limit: int
    remaining: int
    reset_after: float  # seconds until the window ends

    def headers(self) -> dict[str, str]:
        reset = str(max(0, math.ceil(self.reset_after)))
        headers = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": reset,
        }
        if not self.allowed:
            headers["Retry-After"] = str(max(1, math.ceil(self.reset_after)))
        return headers

    def raise_if_denied(self) -> None:
        if not self.allowed:
            raise RateLimited(headers=self.headers())


def _decision(*, count: int, limit: int, reset_after: float, peek: bool) -> Decision:
    # A hit is allowed if it is within the limit; a peek asks whether one more would be.
    allowed = count < limit if peek else count <= limit
    return Decision(
        allowed=allowed, limit=limit, remaining=max(0, limit - count), reset_after=reset_after
    )


class RateLimiter:
    """Fixed-window counters. `hit` counts one (or `cost`) against `key`."""

    async def hit(self, key: str, *, limit: int, window_seconds: float, cost: int = 1) -> Decision:
        raise NotImplementedError

    async def peek(self, key: str, *, limit: int, window_seconds: float) -> Decision:
        """What the next hit would find, without counting one."""
        raise NotImplementedError

    async def reset(self, key: str) -> None:
        raise NotImplementedError


class MemoryRateLimiter(RateLimiter):
    """Counters in this process (no awaits inside, so each call is atomic on the loop)."""

    def __init__(self, *, max_keys: int = 100_000, clock: Callable[[], float] = time.monotonic):
        self._windows: dict[str, tuple[int, float]] = {}
        self._max_keys = max_keys
        self._clock = clock

    async def hit(self, key: str, *, limit: int, window_seconds: float, cost: int = 1) -> Decision:
        now = self._clock()
        count, ends_at = self._current(key, now)
        if count == 0:
            ends_at = now + window_seconds
            self._make_room(now)
        count += cost
        self._windows[key] = (count, ends_at)
        # (now + w) - now can round to a hair over w: never report more than the window.
        reset_after = min(ends_at - now, window_seconds)
        return _decision(count=count, limit=limit, reset_after=reset_after, peek=False)

    async def peek(self, key: str, *, limit: int, window_seconds: float) -> Decision:
        now = self._clock()
        count, ends_at = self._current(key, now)
        reset_after = min(ends_at - now, window_seconds) if count else window_seconds
        return _decision(count=count, limit=limit, reset_after=reset_after, peek=True)

    async def reset(self, key: str) -> None:
        self._windows.pop(key, None)

    def _current(self, key: str, now: float) -> tuple[int, float]:
        window = self._windows.get(key)
        if window is None or window[1] <= now:
            return 0, now
        return window

    def _make_room(self, now: float) -> None:
        if len(self._windows) < self._max_keys:
            return
        self._windows = {k: w for k, w in self._windows.items() if w[1] > now}
        while len(self._windows) >= self._max_keys:  # all live: drop the oldest windows
            del self._windows[next(iter(self._windows))]


_HIT_SCRIPT = """
local count = redis.call('INCRBY', KEYS[1], ARGV[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    ttl = tonumber(ARGV[2])
end
return {count, ttl}
"""


class RedisRateLimiter(RateLimiter):
    """Counters in Redis, shared by every process that uses the same Redis and prefix."""

    def __init__(
        self, redis: aioredis.Redis, *, prefix: str = "cc:rl:", pause_after_failure: float = 5.0
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._hit_script = redis.register_script(_HIT_SCRIPT)
        self._pause_after_failure = pause_after_failure
        self._down_until = 0.0

    async def hit(self, key: str, *, limit: int, window_seconds: float, cost: int = 1) -> Decision:
        window_ms = max(1, int(window_seconds * 1000))
        result = await self._call(
            self._hit_script(keys=[self._prefix + key], args=[cost, window_ms])
        )
        count, ttl_ms = int(result[0]), int(result[1])
        return _decision(count=count, limit=limit, reset_after=ttl_ms / 1000, peek=False)

    async def peek(self, key: str, *, limit: int, window_seconds: float) -> Decision:
        async def read() -> list[Any]:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.get(self._prefix + key)
                pipe.pttl(self._prefix + key)
                result: list[Any] = await pipe.execute()
                return result

        raw, ttl_ms = await self._call(read())
        count = int(raw) if raw is not None else 0
        reset_after = ttl_ms / 1000 if count and ttl_ms > 0 else window_seconds
        return _decision(count=count, limit=limit, reset_after=reset_after, peek=True)

    async def reset(self, key: str) -> None:
        await self._call(self._redis.delete(self._prefix + key))

    async def _call(self, awaitable: Any) -> Any:
        if time.monotonic() < self._down_until:
            awaitable.close()  # never awaited: don't leave a dangling coroutine
            raise RateLimiterUnavailable
        try:
            return await awaitable
        except (RedisError, OSError) as exc:
            if time.monotonic() >= self._down_until:
                log.warning("rate_limiter_unavailable", error=repr(exc))
            self._down_until = time.monotonic() + self._pause_after_failure
            raise RateLimiterUnavailable from exc


def create_limiter(redis: aioredis.Redis | None) -> RateLimiter:
    return RedisRateLimiter(redis) if redis is not None else MemoryRateLimiter()


def get_limiter(request: Request) -> RateLimiter:
    limiter: RateLimiter = request.app.state.limiter
    return limiter


Limiter = Annotated[RateLimiter, Depends(get_limiter)]


Network = IPv4Network | IPv6Network


def parse_networks(entries: Iterable[str]) -> list[Network]:
    """Proxy addresses or CIDR ranges (`10.0.0.0/8`, `127.0.0.1`)."""
    return [ip_network(entry, strict=False) for entry in entries]


def client_ip(peer: str | None, forwarded_for: str | None, trusted: list[Network]) -> str:
    """The client's address: the peer, unless the peer is a trusted proxy.

    Then X-Forwarded-For is read from the right (each proxy appends the address it
    saw), skipping trusted proxies; the first untrusted address is the client. Hops
    to its left were written by the client itself and are never believed.
    """
    if peer is None:
        return "unknown"
    if not _is_trusted(peer, trusted) or not forwarded_for:
        return peer
    client = peer
    for hop in reversed([h.strip() for h in forwarded_for.split(",")]):
        try:
            address = ip_address(hop)
        except ValueError:
            break  # garbage: keep the last address a trusted proxy vouched for
        client = str(address)
        if not _is_trusted(client, trusted):
            break
    return client


def _is_trusted(address: str, trusted: list[Network]) -> bool:
    try:
        ip = ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


class RateLimitMiddleware:
    """The app-wide limit: per user for a verified bearer token, else per client IP.

    Every limited response carries RateLimit-Limit/-Remaining/-Reset; over the
    limit the answer is 429 `rate_limited` with Retry-After. The limiter is read
    from `app.state.limiter`. `subject_of(token)` returns the verified token's
    subject, or None when the token does not verify (then the IP key is used).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        enabled: bool,
        per_ip: int,
        per_user: int,
        trusted_proxies: Iterable[str] = (),
        subject_of: Callable[[str], str | None] | None = None,
        window_seconds: float = 60.0,
    ) -> None:
        self.app = app
        self.enabled = enabled
        self.per_ip = per_ip
        self.per_user = per_user
        self.trusted = parse_networks(trusted_proxies)
        self.subject_of = subject_of
        self.window_seconds = window_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.enabled or scope["type"] != "http" or scope["path"] in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        key, limit = self._key_and_limit(scope)
        limiter: RateLimiter = scope["app"].state.limiter
        try:
            decision = await limiter.hit(key, limit=limit, window_seconds=self.window_seconds)
        except RateLimiterUnavailable:
            # Fail open (see the module docstring); the limiter logs the outage once.
            await self.app(scope, receive, send)
            return
        headers = decision.headers()
        if not decision.allowed:
            response = problem_response(
                Request(scope),
                status=RateLimited.status_code,
                code=RateLimited.code,
                detail=RateLimited.default_detail,
                headers=headers,
            )
            await response(scope, receive, send)
            return
        raw = [
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in headers.items()
        ]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                existing = list(message.get("headers", []))
                # A route that applied a narrower limit of its own (login failures)
                # answers with that limit's headers; they are the ones that count.
                own = {name.lower() for name, _ in existing}
                message["headers"] = existing + [(n, v) for n, v in raw if n not in own]
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _key_and_limit(self, scope: Scope) -> tuple[str, int]:
        headers: dict[bytes, bytes] = {}
        forwarded: list[str] = []
        for name, value in scope["headers"]:
            if name == b"x-forwarded-for":
                forwarded.append(value.decode("latin-1"))
            else:
                headers[name] = value
        if self.subject_of is not None:
            token = bearer_token(headers.get(b"authorization", b"").decode("latin-1"))
            subject = self.subject_of(token) if token else None
            if subject:
                return f"user:{subject}", self.per_user
        peer = scope["client"][0] if scope.get("client") else None
        ip = client_ip(peer, ",".join(forwarded) or None, self.trusted)
        return f"ip:{ip}", self.per_ip
