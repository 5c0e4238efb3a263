"""api-contract.md, "Operations", and the published schema against the contract's tables."""

from __future__ import annotations

import httpx
import pytest

from congocart.config import Settings
from congocart.core.db import Database
from congocart.main import create_app
from tests.acceptance.conftest import assert_problem

# Every row of the contract's tables, exactly as written there.
CONTRACT_ROUTES = [
    ("post", "/api/v1/auth/register"),
    ("post", "/api/v1/auth/login"),
    ("post", "/api/v1/auth/token"),
    ("post", "/api/v1/auth/refresh"),
    ("post", "/api/v1/auth/logout"),
    ("get", "/api/v1/me"),
    ("put", "/api/v1/admin/users/{id}/roles"),
    ("get", "/api/v1/products"),
    ("get", "/api/v1/products/{id_or_slug}"),
    ("get", "/api/v1/categories"),
    ("post", "/api/v1/admin/products"),
    ("patch", "/api/v1/admin/products/{id}"),
    ("post", "/api/v1/admin/products/{id}/variants"),
    ("patch", "/api/v1/admin/variants/{sku}"),
    ("delete", "/api/v1/admin/products/{id}"),
    ("post", "/api/v1/admin/inventory/{sku}/adjustments"),
    ("post", "/api/v1/carts"),
    ("get", "/api/v1/carts/{cart_id}"),
    ("post", "/api/v1/carts/{cart_id}/items"),
    ("patch", "/api/v1/carts/{cart_id}/items/{item_id}"),
    ("delete", "/api/v1/carts/{cart_id}/items/{item_id}"),
    ("put", "/api/v1/carts/{cart_id}/coupon"),
    ("delete", "/api/v1/carts/{cart_id}/coupon"),
    ("post", "/api/v1/carts/{cart_id}/merge"),
    ("post", "/api/v1/carts/{cart_id}/checkout"),
    ("post", "/api/v1/admin/coupons"),
    ("get", "/api/v1/admin/coupons"),
    ("get", "/api/v1/shipping-methods"),
    ("get", "/api/v1/orders"),
    ("get", "/api/v1/orders/{order_id}"),
    ("get", "/api/v1/orders/{order_id}/events"),
    ("post", "/api/v1/orders/{order_id}/cancel"),
    ("get", "/api/v1/admin/orders"),
    ("post", "/api/v1/admin/orders/{order_id}/fulfill"),
    ("post", "/api/v1/admin/orders/{order_id}/ship"),
    ("post", "/api/v1/admin/orders/{order_id}/deliver"),
    ("post", "/api/v1/admin/orders/{order_id}/refunds"),
    ("post", "/api/v1/admin/webhooks"),
    ("get", "/api/v1/admin/webhooks/{id}/deliveries"),
    ("get", "/.well-known/jwks.json"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
]


async def test_openapi_json_lists_every_contract_path_with_its_method(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/openapi.json")

    assert response.status_code == 200
    paths = response.json()["paths"]
    missing = [
        (method, path) for method, path in CONTRACT_ROUTES if method not in paths.get(path, {})
    ]
    assert missing == []


async def test_the_schema_documents_every_path_parameter_of_each_contract_route(
    client: httpx.AsyncClient,
) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]

    for method, path in CONTRACT_ROUTES:
        operation = paths[path][method]
        declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
        expected = {part[1:-1] for part in path.split("/") if part.startswith("{")}
        assert declared == expected, (method, path)


async def test_jwks_publishes_the_public_keys(client: httpx.AsyncClient) -> None:
    response = await client.get("/.well-known/jwks.json")

    assert response.status_code == 200
    keys = response.json()["keys"]
    assert keys
    for key in keys:
        assert {"kty", "kid", "alg"} <= key.keys()
        assert "d" not in key  # never the private part


async def test_healthz_is_200_while_the_process_lives(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")

    assert response.status_code == 200


async def test_readyz_is_200_when_the_database_answers(client: httpx.AsyncClient) -> None:
    assert (await client.get("/readyz")).status_code == 200


async def test_readyz_is_503_with_retry_after_when_the_database_is_down(settings: Settings) -> None:
    down = Database("postgresql://postgres@127.0.0.1:1/none", min_size=1, max_size=1)
    app = create_app(settings, database=down)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get("/readyz")

    assert_problem(response, 503)
    assert response.headers["retry-after"]


async def test_a_request_while_the_database_is_down_is_503_with_retry_after(
    settings: Settings,
) -> None:
    down = Database("postgresql://postgres@127.0.0.1:1/none", min_size=0, max_size=1)
    await down.connect()
    app = create_app(settings, database=down)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            responses = [
                await client.get("/api/v1/products"),
                await client.get("/api/v1/categories"),
                await client.post("/api/v1/carts", json={}),
            ]
    finally:
        await down.close()

    for response in responses:
        assert_problem(response, 503, "service_unavailable")
        assert int(response.headers["retry-after"]) >= 1


async def test_metrics_are_prometheus_text(client: httpx.AsyncClient) -> None:
    await client.get("/healthz")

    response = await client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "# TYPE" in response.text
    assert "# HELP" in response.text


@pytest.mark.parametrize(
    ("path", "content_type"), [("/docs", "text/html"), ("/openapi.json", "application/json")]
)
async def test_docs_and_the_schema_are_served(
    client: httpx.AsyncClient, path: str, content_type: str
) -> None:
    response = await client.get(path)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith(content_type)
