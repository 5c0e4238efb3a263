"""The app factory: routers, middleware, error handlers and the lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response

from congocart.catalog import api as catalog
from congocart.config import Settings, get_settings
from congocart.core import metrics
from congocart.core.db import Database
from congocart.core.errors import ServiceUnavailable, install_error_handlers
from congocart.core.logging import configure_logging
from congocart.core.middleware import RequestContextMiddleware
from congocart.core.redis import create_redis
from congocart.core.security import Passwords, load_token_keys
from congocart.identity import api as identity

API_PREFIX = "/api/v1"
FORM_PATHS = frozenset({f"{API_PREFIX}/auth/token"})

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


@operations.get("/metrics", include_in_schema=False)
async def prometheus_metrics() -> Response:
    body, content_type = metrics.render()
    return Response(content=body, media_type=content_type)


def _feature_routers() -> list[APIRouter]:
    routers: list[APIRouter] = [identity.router, catalog.router]
    return routers


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
        app.state.redis = create_redis(settings.redis_url)
        try:
            yield
        finally:
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
    app.state.redis = None
    if database is not None:
        app.state.db = database
    install_error_handlers(app)
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
