"""Acceptance helpers: the shop is set up and driven through HTTP only.

Users come from the shared `make_user` fixture (an account and a token, as a
login would give); everything else (products, carts, coupons, orders) is made
through the public API, the way an outside client would.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from congocart.config import Settings
from congocart.core.db import Database
from congocart.core.security import Passwords, load_token_keys
from congocart.identity import service as identity
from tests.checkout.conftest import (  # noqa: F401  (fixtures used by these tests)
    committed_client,
    committed_gateway,
    gateway_db,
)
from tests.conftest import MakeUser, TestUser
from tests.webhooks.conftest import installed_sender, receiver, sender  # noqa: F401

API = "/api/v1"
USD = "USD"
ADDRESS = {
    "name": "Ada Lovelace",
    "line1": "12 Analytical Row",
    "city": "Springfield",
    "postal_code": "12345",
    "country": "US",
}
PROBLEM_FIELDS = {"type", "title", "status", "detail", "code", "request_id"}


def usd(amount: str) -> dict[str, str]:
    return {"amount": amount, "currency": USD}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def new_key() -> str:
    return f"acc-{uuid.uuid4()}"


def assert_problem(
    response: httpx.Response, status: int, code: str | None = None
) -> dict[str, Any]:
    """An RFC 9457 problem of this status (and code): every named field, `status`
    equal to the HTTP status, `request_id` equal to the X-Request-ID header, and a
    Bearer challenge on every 401."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body.keys() >= PROBLEM_FIELDS, body
    assert body["status"] == status
    assert isinstance(body["detail"], str)
    assert body["detail"]
    assert isinstance(body["title"], str)
    assert body["title"]
    assert isinstance(body["type"], str)
    assert body["type"]
    assert body["request_id"] == response.headers["x-request-id"]
    if code is not None:
        assert body["code"] == code, body
    if status == 401:
        assert response.headers["www-authenticate"].startswith("Bearer")
    return body


def assert_page(body: Any) -> list[Any]:
    """The contract's list shape; returns the items."""
    assert isinstance(body, dict)
    assert {"items", "next_cursor"} <= body.keys(), body
    assert isinstance(body["items"], list)
    assert body["next_cursor"] is None or isinstance(body["next_cursor"], str)
    items: list[Any] = body["items"]
    return items


@dataclass
class Roles:
    admin: TestUser
    staff: TestUser
    customer: TestUser


@pytest.fixture
async def roles(make_user: MakeUser) -> Roles:
    return Roles(
        admin=await make_user(roles=("customer", "admin")),
        staff=await make_user(roles=("customer", "staff")),
        customer=await make_user(),
    )


async def create_product(
    client: httpx.AsyncClient,
    admin: TestUser,
    *,
    prices: tuple[str, ...] = ("10.00",),
    stock: int = 10,
    category: str | None = None,
    name: str | None = None,
    description: str = "",
) -> dict[str, Any]:
    """A product with one variant per price (fresh SKUs and slug), made by an admin."""
    body: dict[str, Any] = {
        "name": name or unique("Product"),
        "slug": unique("p").lower(),
        "description": description,
        "variants": [
            {"sku": unique("SKU").upper(), "price": usd(price), "stock": stock} for price in prices
        ],
    }
    if category is not None:
        body["category"] = category
    response = await client.post(f"{API}/admin/products", json=body, headers=admin.headers)
    assert response.status_code == 201, response.text
    product: dict[str, Any] = response.json()
    return product


async def new_sku(
    client: httpx.AsyncClient, admin: TestUser, *, price: str = "10.00", stock: int = 10
) -> str:
    product = await create_product(client, admin, prices=(price,), stock=stock)
    sku: str = product["variants"][0]["sku"]
    return sku


async def available(client: httpx.AsyncClient, sku: str, product_id: str) -> int:
    response = await client.get(f"{API}/products/{product_id}")
    assert response.status_code == 200, response.text
    for variant in response.json()["variants"]:
        if variant["sku"] == sku:
            return int(variant["available"])
    raise AssertionError(f"{sku} not on product {product_id}")


@dataclass
class Cart:
    id: str
    headers: dict[str, str]

    @property
    def path(self) -> str:
        return f"{API}/carts/{self.id}"

    def with_key(self, key: str | None) -> dict[str, str]:
        headers = dict(self.headers)
        if key is not None:
            headers["Idempotency-Key"] = key
        return headers


async def new_cart(
    client: httpx.AsyncClient,
    *,
    user: TestUser | None = None,
    lines: dict[str, int] | None = None,
    coupon: str | None = None,
) -> Cart:
    """A guest cart (reached by its token) or a user's cart, with lines and a coupon."""
    headers = {} if user is None else dict(user.headers)
    response = await client.post(f"{API}/carts", json={}, headers=headers)
    assert response.status_code == 201, response.text
    body = response.json()
    if user is None:
        headers = {"X-Cart-Token": body["cart_token"]}
    cart = Cart(id=body["id"], headers=headers)
    for sku, quantity in (lines or {}).items():
        added = await client.post(
            f"{cart.path}/items", json={"sku": sku, "quantity": quantity}, headers=headers
        )
        assert added.status_code == 201, added.text
    if coupon is not None:
        applied = await client.put(f"{cart.path}/coupon", json={"code": coupon}, headers=headers)
        assert applied.status_code == 200, applied.text
    return cart


def checkout_body(
    card: str = "tok_visa", *, email: str | None = "buyer@example.com", **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {"shipping_address": dict(ADDRESS), "payment": {"token": card}, **extra}
    if email is not None:
        body["email"] = email
    return body


async def check_out(
    client: httpx.AsyncClient,
    cart: Cart,
    *,
    card: str = "tok_visa",
    key: str | None = None,
    **extra: Any,
) -> httpx.Response:
    return await client.post(
        f"{cart.path}/checkout",
        json=checkout_body(card, **extra),
        headers=cart.with_key(key or new_key()),
    )


async def place_order(
    client: httpx.AsyncClient,
    admin: TestUser,
    *,
    user: TestUser | None = None,
    price: str = "10.00",
    quantity: int = 2,
    stock: int = 10,
    email: str | None = "buyer@example.com",
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A paid order of one fresh SKU, checked out through HTTP; (order, product)."""
    product = await create_product(client, admin, prices=(price,), stock=stock)
    sku = product["variants"][0]["sku"]
    cart = await new_cart(client, user=user, lines={sku: quantity})
    response = await check_out(client, cart, email=email)
    assert response.status_code == 201, response.text
    order: dict[str, Any] = response.json()
    return order, product


async def create_coupon(
    client: httpx.AsyncClient, admin: TestUser, **fields: Any
) -> dict[str, Any]:
    fields.setdefault("code", unique("SAVE").upper().replace("-", ""))
    response = await client.post(f"{API}/admin/coupons", json=fields, headers=admin.headers)
    assert response.status_code == 201, response.text
    coupon: dict[str, Any] = response.json()
    return coupon


# ---------------------------------------------------------------- committed databases


async def admin_headers(database: Database, settings: Settings) -> dict[str, str]:
    """An admin's bearer header on a committed database (the account made as make_user does)."""
    async with database.transaction() as tx:
        user = await identity.register_user(
            tx,
            email=f"admin-{uuid.uuid4().hex[:10]}@example.com",
            password="correct horse battery staple",
            passwords=Passwords.from_settings(settings),
            roles=frozenset({"customer", "admin"}),
        )
        token = await identity.issue_access_token_for(
            tx, user_id=user.id, keys=load_token_keys(settings)
        )
    return {"Authorization": f"Bearer {token}"}


async def committed_product(
    client: httpx.AsyncClient, headers: dict[str, str], *, stock: int
) -> str:
    """A one-variant product at 10.00 made through the API; its SKU."""
    sku = f"ACC-{uuid.uuid4().hex[:10]}".upper()
    response = await client.post(
        f"{API}/admin/products",
        json={
            "name": f"P {sku}",
            "variants": [{"sku": sku, "price": usd("10.00"), "stock": stock}],
        },
        headers=headers,
    )
    assert response.status_code == 201, response.text
    return sku


async def guest_cart_with(client: httpx.AsyncClient, sku: str) -> Cart:
    """A guest cart holding one unit of `sku`."""
    created = (await client.post(f"{API}/carts", json={})).json()
    cart = Cart(id=created["id"], headers={"X-Cart-Token": created["cart_token"]})
    added = await client.post(
        f"{cart.path}/items", json={"sku": sku, "quantity": 1}, headers=cart.headers
    )
    assert added.status_code == 201
    return cart
