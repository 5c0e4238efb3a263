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
    ("post", "/api/v1/auth/register", 201),
    ("post", "/api/v1/auth/login", 200),
    ("post", "/api/v1/auth/token", 200),
    ("post", "/api/v1/auth/refresh", 200),
    ("post", "/api/v1/auth/logout", 204),
    ("get", "/api/v1/me", 200),
    ("put", "/api/v1/admin/users/{id}/roles", 200),
    ("get", "/api/v1/products", 200),
    ("get", "/api/v1/products/{id_or_slug}", 200),
    ("get", "/api/v1/categories", 200),
    ("post", "/api/v1/admin/products", 201),
    ("patch", "/api/v1/admin/products/{id}", 200),
    ("post", "/api/v1/admin/products/{id}/variants", 201),
    ("patch", "/api/v1/admin/variants/{sku}", 200),
    ("delete", "/api/v1/admin/products/{id}", 204),
    ("post", "/api/v1/admin/inventory/{sku}/adjustments", 200),
    ("post", "/api/v1/carts", 201),
    ("get", "/api/v1/carts/{cart_id}", 200),
    ("post", "/api/v1/carts/{cart_id}/items", 201),
    ("patch", "/api/v1/carts/{cart_id}/items/{item_id}", 200),
    ("delete", "/api/v1/carts/{cart_id}/items/{item_id}", 200),
    ("put", "/api/v1/carts/{cart_id}/coupon", 200),
    ("delete", "/api/v1/carts/{cart_id}/coupon", 200),
    ("post", "/api/v1/carts/{cart_id}/merge", 200),
    ("post", "/api/v1/carts/{cart_id}/checkout", 201),
    ("post", "/api/v1/admin/coupons", 201),
    ("get", "/api/v1/admin/coupons", 200),
    ("get", "/api/v1/shipping-methods", 200),
    ("get", "/api/v1/orders", 200),
    ("get", "/api/v1/orders/{order_id}", 200),
    ("get", "/api/v1/orders/{order_id}/events", 200),
    ("post", "/api/v1/orders/{order_id}/cancel", 200),
    ("get", "/api/v1/admin/orders", 200),
    ("post", "/api/v1/admin/orders/{order_id}/fulfill", 200),
    ("post", "/api/v1/admin/orders/{order_id}/ship", 200),
    ("post", "/api/v1/admin/orders/{order_id}/deliver", 200),
    ("post", "/api/v1/admin/orders/{order_id}/refunds", 201),
    ("post", "/api/v1/admin/webhooks", 201),
    ("get", "/api/v1/admin/webhooks/{id}/deliveries", 200),
    ("get", "/.well-known/jwks.json", 200),
    ("get", "/healthz", 200),
    ("get", "/readyz", 200),
    ("get", "/metrics", 200),
]


async def test_openapi_json_lists_every_contract_path_with_its_method(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/openapi.json")

    assert response.status_code == 200
    paths = response.json()["paths"]
    missing = [
        (method, path) for method, path, _ in CONTRACT_ROUTES if method not in paths.get(path, {})
    ]
    assert missing == []
    for method, path, status in CONTRACT_ROUTES:
        assert str(status) in paths[path][method]["responses"], (method, path, status)


async def test_the_schema_documents_every_path_parameter_of_each_contract_route(
    client: httpx.AsyncClient,
) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]

    for method, path, _ in CONTRACT_ROUTES:
        operation = paths[path][method]
        declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
        expected = {part[1:-1] for part in path.split("/") if part.startswith("{")}
        assert declared == expected, (method, path)


# The fields the contract names for each answer, as the schema must declare them.
NAMED_FIELDS = {
    ("post", "/api/v1/auth/register"): {"id", "email", "full_name", "roles"},
    ("post", "/api/v1/auth/login"): {"access_token", "refresh_token", "token_type", "expires_in"},
    ("get", "/api/v1/products/{id_or_slug}"): {
        "id",
        "slug",
        "name",
        "description",
        "category",
        "variants",
        "created_at",
        "updated_at",
    },
    ("get", "/api/v1/categories"): {"items", "next_cursor"},
    ("post", "/api/v1/admin/inventory/{sku}/adjustments"): {
        "sku",
        "on_hand",
        "reserved",
        "available",
    },
    ("get", "/api/v1/carts/{cart_id}"): {
        "id",
        "currency",
        "items",
        "coupon",
        "subtotal",
        "discount",
        "shipping",
        "tax",
        "total",
        "version",
        "updated_at",
    },
    ("post", "/api/v1/carts"): {"id", "cart_token"},
    ("get", "/api/v1/shipping-methods"): {"items", "next_cursor"},
    ("get", "/api/v1/orders/{order_id}"): {
        "id",
        "number",
        "status",
        "email",
        "items",
        "subtotal",
        "discount",
        "shipping",
        "tax",
        "total",
        "shipping_address",
        "payment",
        "created_at",
        "updated_at",
    },
    ("get", "/api/v1/orders"): {"items", "next_cursor"},
    ("get", "/api/v1/orders/{order_id}/events"): {"items", "next_cursor"},
    ("post", "/api/v1/admin/webhooks"): {"id", "url", "events", "secret"},
    ("get", "/api/v1/admin/webhooks/{id}/deliveries"): {"items", "next_cursor"},
}


def _resolve(schema: dict[str, object], spec: dict[str, object]) -> dict[str, object]:
    ref = schema.get("$ref")
    if isinstance(ref, str):
        name = ref.rsplit("/", 1)[-1]
        return _resolve(spec["components"]["schemas"][name], spec)  # type: ignore[index]
    return schema


async def test_the_schema_declares_the_fields_the_contract_names(
    client: httpx.AsyncClient,
) -> None:
    spec = (await client.get("/openapi.json")).json()

    for (method, path), fields in NAMED_FIELDS.items():
        responses = spec["paths"][path][method]["responses"]
        ok = next(r for status, r in responses.items() if status.startswith("2"))
        schema = _resolve(ok["content"]["application/json"]["schema"], spec)
        assert fields <= set(schema["properties"]), (method, path)  # type: ignore[arg-type]


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
