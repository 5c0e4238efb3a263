from __future__ import annotations

import httpx
import pytest

from congocart.config import Settings
from congocart.core.db import Database
from congocart.main import create_app


async def test_healthz_answers_while_the_process_lives(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.headers["x-request-id"]


async def test_readyz_is_ready_when_the_database_answers(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200


async def test_readyz_is_503_problem_when_the_database_is_unreachable(settings: Settings) -> None:
    unreachable = Database("postgresql://postgres@127.0.0.1:1/none", min_size=1, max_size=1)
    app = create_app(settings, database=unreachable)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "service_unavailable"
    assert body["request_id"] == response.headers["x-request-id"]
    assert "asyncpg" not in response.text


async def test_metrics_count_requests_by_route_and_status(client: httpx.AsyncClient) -> None:
    await client.get("/healthz")
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert 'congocart_http_requests_total{method="GET",route="/healthz",status="200"}' in (
        response.text
    )
    assert "congocart_http_request_duration_seconds_bucket" in response.text


@pytest.mark.parametrize("path", ["/docs", "/openapi.json"])
async def test_docs_and_schema_are_served(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 200


async def test_metrics_label_api_routes_by_their_full_template(client: httpx.AsyncClient) -> None:
    await client.get("/api/v1/products/no-such-product")
    await client.get("/api/v1/nowhere")
    text = (await client.get("/metrics")).text
    assert 'route="/api/v1/products/{id_or_slug}",status="404"' in text
    assert 'route="unmatched",status="404"' in text
