"""Every admin route refuses anonymous callers (401) and customers (403).

The routes come from the app's own OpenAPI schema, so a route added later is
covered without anyone remembering to list it here.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from fastapi import FastAPI

ADMIN_PREFIX = "/api/v1/admin/"


def admin_operations(app: FastAPI) -> list[tuple[str, str]]:
    schema: dict[str, Any] = app.openapi()
    operations = []
    for path, methods in schema["paths"].items():
        if not path.startswith(ADMIN_PREFIX):
            continue
        for method in methods:
            if method in {"get", "post", "put", "patch", "delete"}:
                operations.append((method.upper(), path))
    return sorted(operations)


def concrete(path: str) -> str:
    """Fill every path parameter with a well-formed id that exists nowhere."""
    out = []
    for part in path.split("/"):
        if part.startswith("{") and part.endswith("}"):
            out.append("SKU-1" if part == "{sku}" else str(uuid.uuid4()))
        else:
            out.append(part)
    return "/".join(out)


async def test_there_are_admin_routes_to_check(app: FastAPI) -> None:
    assert len(admin_operations(app)) >= 8


async def test_every_admin_route_refuses_anonymous_and_customers(
    app: FastAPI,
    client: httpx.AsyncClient,
    make_user: Callable[..., Awaitable[Any]],
) -> None:
    customer = await make_user(roles=("customer",))
    failures = []
    for method, path in admin_operations(app):
        url = concrete(path)
        body = {} if method in {"POST", "PUT", "PATCH"} else None
        anonymous = await client.request(method, url, json=body)
        as_customer = await client.request(method, url, json=body, headers=customer.headers)
        if anonymous.status_code != 401 or anonymous.json()["code"] != "not_authenticated":
            failures.append((method, path, "anonymous", anonymous.status_code))
        if as_customer.status_code != 403 or as_customer.json()["code"] != "forbidden":
            failures.append((method, path, "customer", as_customer.status_code))
    assert failures == []


async def test_staff_cannot_use_admin_only_user_and_catalog_routes(
    client: httpx.AsyncClient, make_user: Callable[..., Awaitable[Any]]
) -> None:
    staff = await make_user(roles=("staff",))
    checks = [
        ("PUT", f"/api/v1/admin/users/{uuid.uuid4()}/roles", {"roles": ["admin"]}),
        ("POST", "/api/v1/admin/products", {"name": "x", "variants": []}),
        ("DELETE", f"/api/v1/admin/products/{uuid.uuid4()}", None),
    ]
    for method, url, body in checks:
        response = await client.request(method, url, json=body, headers=staff.headers)
        assert response.status_code == 403, (method, url, response.text)
