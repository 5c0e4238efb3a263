"""The scenarios speak the API contract: checked against a small fake of it."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from congocart.bench.client import Client
from congocart.bench.latency import Tally
from congocart.bench.loadgen import Exhausted, Session, run_closed_loop
from congocart.bench.scenarios import (
    Browse,
    Carts,
    Checkout,
    CheckoutFlow,
    PreparedCart,
    build_cart,
    sample_catalog,
)
from tests.bench.test_client import read_request


@dataclass
class FakeShop:
    """Just enough of /api/v1 for the bench: products, carts, items, checkout."""

    products: list[dict[str, Any]] = field(default_factory=list)
    carts: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str, dict[str, str], Any]] = field(default_factory=list)
    idempotency_keys: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        for n in range(45):
            self.products.append(
                {
                    "id": str(uuid.UUID(int=n + 1)),
                    "slug": f"widget-{n}",
                    "name": f"Sturdy Widget {n}",
                    "category": "tools",
                    "variants": [
                        {
                            "sku": f"W{n}-{v}",
                            "name": "x",
                            "price": {"amount": f"{n + 1}.50", "currency": "USD"},
                            "available": 0 if v == 2 else 500,
                        }
                        for v in range(3)
                    ],
                }
            )

    def page(self, query: dict[str, list[str]]) -> dict[str, Any]:
        limit = int(query.get("limit", ["20"])[0])
        start = int(query.get("cursor", ["0"])[0])
        items = self.products[start : start + limit]
        more = start + limit < len(self.products)
        return {"items": items, "next_cursor": str(start + limit) if more else None}

    def answer(
        self, method: str, target: str, headers: dict[str, str], body: Any
    ) -> tuple[int, Any]:
        url = urlsplit(target)
        parts = url.path.removeprefix("/api/v1/").split("/")
        self.requests.append((method, target, headers, body))
        if method == "GET" and parts == ["categories"]:
            return 200, {"items": [{"slug": "tools", "name": "Tools"}], "next_cursor": None}
        if method == "GET" and parts == ["products"]:
            return 200, self.page(parse_qs(url.query))
        if method == "GET" and parts[0] == "products":
            found = [p for p in self.products if parts[1] in (p["id"], p["slug"])]
            return (200, found[0]) if found else (404, {"code": "not_found"})
        if method == "POST" and parts == ["carts"]:
            cart_id = str(uuid.uuid4())
            self.carts[cart_id] = {"token": uuid.uuid4().hex, "items": {}, "open": True}
            return 201, {"id": cart_id, "cart_token": self.carts[cart_id]["token"]}
        cart = self.carts.get(parts[1]) if parts[0] == "carts" and len(parts) > 2 else None
        if cart is None or headers.get("x-cart-token") != cart["token"]:
            return 404, {"code": "not_found"}
        if method == "POST" and parts[2] == "items":
            cart["items"][body["sku"]] = cart["items"].get(body["sku"], 0) + body["quantity"]
            return 201, {"id": parts[1]}
        if method == "POST" and parts[2] == "checkout":
            if "idempotency-key" not in headers:
                return 400, {"code": "idempotency_key_missing"}
            self.idempotency_keys.append(headers["idempotency-key"])
            if not cart["open"] or body["payment"]["token"] != "tok_visa":
                return 409, {"code": "cart_closed"}
            cart["open"] = False
            items = [{"sku": s, "quantity": q} for s, q in cart["items"].items()]
            return 201, {"id": str(uuid.uuid4()), "items": items}
        return 404, {"code": "not_found"}


@pytest.fixture
async def shop() -> AsyncIterator[tuple[FakeShop, int]]:
    fake = FakeShop()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request_line, headers, raw = await read_request(reader)
                method, target, _ = request_line.split(" ")
                status, payload = fake.answer(method, target, headers, json.loads(raw or b"null"))
                body = json.dumps(payload).encode()
                writer.write(
                    f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    yield fake, server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


async def test_catalog_sample_walks_every_page_and_keeps_skus_in_stock(
    shop: tuple[FakeShop, int],
) -> None:
    _fake, port = shop
    client = Client("127.0.0.1", port)
    try:
        catalog = await sample_catalog(client)
    finally:
        client.close()
    assert len(catalog.slugs) == 45
    assert len(catalog.skus) == 90
    assert all(not sku.endswith("-2") for sku in catalog.skus)
    assert catalog.categories == ["tools"]
    assert catalog.cursors == ["20", "40"]
    assert "widget" in catalog.words


async def test_browse_requests_are_all_answered_200_by_a_contract_server(
    shop: tuple[FakeShop, int],
) -> None:
    fake, port = shop
    client = Client("127.0.0.1", port)
    catalog = await sample_catalog(client)
    session = Session(client, seed=1)
    browse = Browse(catalog)
    try:
        for _ in range(200):
            await browse(session)
    finally:
        session.close()
    kinds = session.tally.requests
    assert session.tally.errors == 0
    assert set(kinds) == {kind for kind, _ in Browse.MIX}
    targets = [target for method, target, _, _ in fake.requests[-200:]]
    assert any("min_price=" in t and "max_price=" in t for t in targets)
    assert any("?q=" in t for t in targets)


async def test_a_cart_holds_one_to_three_distinct_skus_added_with_its_token(
    shop: tuple[FakeShop, int],
) -> None:
    fake, port = shop
    client = Client("127.0.0.1", port)
    catalog = await sample_catalog(client)
    session = Session(client, seed=2)
    try:
        carts = [await build_cart(session, catalog) for _ in range(30)]
    finally:
        session.close()
    for cart in carts:
        assert 1 <= len(cart.lines) <= 3
        assert all(1 <= q <= 3 for q in cart.lines.values())
        assert fake.carts[cart.id]["items"] == cart.lines
    assert {len(cart.lines) for cart in carts} == {1, 2, 3}


async def test_checkout_flow_pays_with_tok_visa_under_a_fresh_idempotency_key(
    shop: tuple[FakeShop, int],
) -> None:
    fake, port = shop
    client = Client("127.0.0.1", port)
    catalog = await sample_catalog(client)
    session = Session(client, seed=3)
    flow = CheckoutFlow(catalog)
    try:
        for _ in range(10):
            await flow(session)
    finally:
        session.close()
    assert session.tally.errors == 0
    assert len(flow.placed) == 10
    assert all(order.order_lines == order.cart_lines for order in flow.placed)
    assert len(set(fake.idempotency_keys)) == 10
    checkout = next(r for r in fake.requests if r[1].endswith("/checkout"))
    assert checkout[3]["shipping_address"]["country"] == "US"
    assert checkout[3]["email"]


async def test_checkout_alone_uses_prepared_carts_then_stops(
    shop: tuple[FakeShop, int],
) -> None:
    fake, port = shop
    client = Client("127.0.0.1", port)
    catalog = await sample_catalog(client)
    pool: deque[PreparedCart] = deque()
    session = Session(client, seed=4)
    builder = Carts(catalog, keep=pool)
    for _ in range(5):
        await builder(session)
    checkout = Checkout(pool)
    try:
        for _ in range(5):
            await checkout(session)
        with pytest.raises(Exhausted):
            await checkout(session)
    finally:
        session.close()
    assert len(checkout.placed) == 5
    assert not any(cart["open"] for cart in fake.carts.values())


async def test_closed_loop_runs_until_the_deadline_and_counts_failures(
    shop: tuple[FakeShop, int],
) -> None:
    _, port = shop
    sessions = [Session(Client("127.0.0.1", port), seed=i) for i in range(4)]
    calls = 0

    async def operation(session: Session) -> None:
        nonlocal calls
        calls += 1
        expect = 404 if calls % 5 else 200  # every fifth call "fails"
        await session.call("probe", "GET", "/api/v1/products/none", expect=expect)

    tally = Tally()
    started = time.perf_counter()
    try:
        elapsed = await run_closed_loop(sessions, operation, duration=0.3, tally=tally)
    finally:
        for session in sessions:
            session.close()
    assert 0.3 <= elapsed < time.perf_counter() - started + 0.01
    assert tally.ops + tally.failed_ops == calls
    assert tally.failed_ops == calls // 5
    assert tally.requests["probe"].statuses == {"404": calls}
    assert len(tally.op_latencies) == tally.ops
