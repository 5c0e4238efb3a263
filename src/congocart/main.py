"""The app factory: routers, middleware, error handlers and the lifespan."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response

from congocart.adapters.payment_gateway import open_payment_gateway
from congocart.adapters.sandbox_gateway import SandboxGateway
from congocart.carts import api as carts
from congocart.catalog import api as catalog
from congocart.checkout import api as checkout
from congocart.config import Settings, get_settings
from congocart.core import metrics
from congocart.core.cache import create_cache
from congocart.core.db import Database
from congocart.core.errors import ServiceUnavailable, document_problems, install_error_handlers
from congocart.core.logging import configure_logging
from congocart.core.middleware import RequestContextMiddleware
from congocart.core.ratelimit import RateLimitMiddleware, create_limiter
from congocart.core.redis import create_redis
from congocart.core.security import (
    Passwords,
    TokenKeys,
    decode_access_token,
    load_token_keys,
)
from congocart.identity import api as identity
from congocart.jobs import api as jobs_admin
from congocart.orders import api as orders
from congocart.payments import service as payments
from congocart.promotions import api as promotions
from congocart.webhooks import api as webhooks
from congocart.worker import Worker, load_task_modules

API_PREFIX = "/api/v1"
FORM_PATHS = frozenset({f"{API_PREFIX}/auth/token"})
# The worker inside `congocart serve` (embedded default) runs few jobs at a time:
# it shares the process and its connection pool with the API.
IN_PROCESS_WORKER_CONCURRENCY = 2

operations = APIRouter(tags=["operations"])


@operations.get("/healthz")
async def healthz() -> dict[str, str]:
    """200 while the process lives."""
    return {"status": "ok"}


@operations.get("/readyz")
async def readyz(request: Request) -> dict[str, str]:
    """200 when the database (and Redis, when configured) answer; 503 otherwise."""
    try:
        await request.app.state.db.ping()
    except Exception as exc:
        raise ServiceUnavailable(
            "The database is not answering.", headers={"Retry-After": "5"}
        ) from exc
    redis = getattr(request.app.state, "redis", None)
    if redis is not None:
        try:
            await redis.ping()
        except Exception as exc:
            raise ServiceUnavailable(
                "Redis is not answering.", headers={"Retry-After": "5"}
            ) from exc
    return {"status": "ready"}


@operations.get(
    "/metrics",
    response_class=Response,
    responses={200: {"description": "Prometheus text format.", "content": {"text/plain": {}}}},
)
async def prometheus_metrics() -> Response:
    """Request counts and latencies (and the process's own metrics) for Prometheus."""
    body, content_type = metrics.render()
    return Response(content=body, media_type=content_type)


def _feature_routers() -> list[APIRouter]:
    # The storefront first: a request is matched against the routes in this
    # order, and product pages are most of the traffic.
    routers: list[APIRouter] = [catalog.router, identity.router]
    routers.append(jobs_admin.router)
    routers.append(carts.router)
    routers.append(promotions.router)
    routers.append(checkout.router)
    routers.append(orders.router)
    routers.append(webhooks.router)
    return routers


def _start_in_process_worker(
    settings: Settings, db: Database
) -> tuple[Worker | None, asyncio.Task[None] | None]:
    """The embedded default's worker, when `settings.run_worker_in_process`.

    With `serve --workers N` every API process runs one. That is deliberate:
    jobs are claimed with SKIP LOCKED under leases, so N workers never run a
    job twice (the same property that lets `congocart worker` scale by count),
    and electing a single runner would need a leader lock with failover for
    nothing but N-1 idle LISTEN connections and polls every few seconds.
    """
    if not settings.run_worker_in_process:
        return None, None
    load_task_modules()
    worker = Worker(db, concurrency=IN_PROCESS_WORKER_CONCURRENCY, shutdown_grace=10.0)
    return worker, asyncio.create_task(worker.run(), name="in-process-worker")


def _token_subject(keys: TokenKeys) -> Callable[[str], str | None]:
    """The rate limiter's user key: the subject of a token that verifies, else None."""

    def subject_of(token: str) -> str | None:
        try:
            return str(decode_access_token(token, keys=keys).subject)
        except Exception:
            return None  # unverifiable: limited by IP like any anonymous call

    return subject_of


def _tune_garbage_collector() -> None:
    """Fewer, cheaper garbage collections in a serving process.

    What start-up loaded (modules, the app, its routes and models: some 100,000
    objects) is moved out of the collector's sight, so the older generations'
    collections no longer walk it, and the youngest generation is collected
    every 20,000 net allocations instead of every 700. Measured on the product
    pages: about 8 % less CPU a request and p99 at 16 clients from 53-61 ms to
    19-32 ms (the pauses were the tail). Reference cycles are still collected,
    in larger batches. Not for tests' apps (they bring their own database).
    """
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(20_000, middle, oldest)


def create_app(settings: Settings | None = None, *, database: Database | None = None) -> FastAPI:
    """Build the app. Tests pass their own `database`; otherwise DATABASE_URL is used."""
    settings = settings or get_settings()
    configure_logging(json=settings.log_json, level=settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = database is None
        db = database
        if db is None:
            if settings.database_url is None:
                raise RuntimeError("DATABASE_URL is not set; start with `congocart serve`")
            db = Database(
                settings.database_url,
                min_size=settings.db_pool_min,
                max_size=settings.db_pool_max,
            )
            await db.connect()
        app.state.db = db
        async with AsyncExitStack() as stack:
            if owned:
                assert settings.database_url is not None
                app.state.payments = await stack.enter_async_context(
                    open_payment_gateway(
                        settings.database_url, max_connections=settings.db_pool_max
                    )
                )
            elif getattr(app.state, "payments", None) is None:
                app.state.payments = SandboxGateway(db)
            # For the jobs of the in-process worker (voids of abandoned checkouts).
            payments.install_gateway(app.state.payments)
            worker, worker_task = _start_in_process_worker(settings, db)
            if owned:
                _tune_garbage_collector()
            try:
                yield
            finally:
                if worker is not None and worker_task is not None:
                    worker.stop()
                    await worker_task
                if app.state.redis is not None:
                    await app.state.redis.aclose()
                if owned:
                    await db.close()

    app = FastAPI(
        title="CongoCart",
        version="1.0.0",
        summary="E-commerce backend: catalog, carts, checkout and orders.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    # Raises (and the process does not start) when production has no signing key.
    app.state.token_keys = load_token_keys(settings)
    app.state.passwords = Passwords.from_settings(settings)
    app.state.redis = create_redis(settings.redis_url)
    app.state.limiter = create_limiter(app.state.redis)
    app.state.cache = create_cache(app.state.redis, in_process=settings.in_process_cache)
    if database is not None:
        app.state.db = database
        # Tests serve the app without a lifespan: the sandbox runs on their database.
        app.state.payments = SandboxGateway(database)
    install_error_handlers(app)
    document_problems(app)
    # Added first, so it runs inside RequestContextMiddleware: a 429 gets the
    # request id, the logs and the metrics like any other response.
    app.add_middleware(
        RateLimitMiddleware,
        enabled=settings.rate_limit_enabled,
        per_ip=settings.rate_limit_per_minute_ip,
        per_user=settings.rate_limit_per_minute_user,
        trusted_proxies=settings.trusted_proxies,
        subject_of=_token_subject(app.state.token_keys),
    )
    app.add_middleware(
        RequestContextMiddleware,
        max_body_bytes=settings.max_body_bytes,
        form_paths=FORM_PATHS,
    )
    app.include_router(operations)
    app.include_router(identity.well_known)
    for router in _feature_routers():
        app.include_router(router, prefix=API_PREFIX)
    return app
