"""The storefront's page cache never serves a price or stock older than an
acknowledged write: two apps (two API processes, each with its own cache) on
one committed database, writes through one, reads through the other."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from congocart.catalog import service
from congocart.catalog.domain import NewProduct, NewVariant, PageTemplate, ProductChanges
from congocart.config import Settings
from congocart.core.db import Connection, Database
from congocart.core.money import Money
from congocart.core.security import Passwords, load_token_keys
from congocart.identity import service as identity
from congocart.main import create_app
from tests.catalog.conftest import logged_statements, unique
from tests.checkout.conftest import checkout_body, new_cart, new_key

PRODUCTS = "/api/v1/products"


@dataclass
class Process:
    """One API process: its app (and so its own page cache) and a client."""

    app: FastAPI
    client: httpx.AsyncClient

    async def page(self, **params: Any) -> dict[str, Any]:
        response = await self.client.get(PRODUCTS, params=params)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def product(self, id_or_slug: object) -> dict[str, Any]:
        response = await self.client.get(f"{PRODUCTS}/{id_or_slug}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def cached_pages(self) -> int:
        return len(self.app.state.product_pages)


@pytest.fixture
async def processes(settings: Settings, committed_db: Database) -> AsyncIterator[list[Process]]:
    made = []
    clients = []
    for _ in range(2):
        app = create_app(settings, database=committed_db)
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
            base_url="http://testserver",
        )
        clients.append(client)
        made.append(Process(app=app, client=client))
    yield made
    for client in clients:
        await client.aclose()


async def admin_headers(db: Database, settings: Settings) -> dict[str, str]:
    async with db.transaction() as tx:
        user = await identity.register_user(
            tx,
            email=f"admin-{uuid.uuid4().hex[:12]}@example.com",
            password="correct horse battery staple",
            passwords=Passwords.from_settings(settings),
            roles=frozenset({"admin"}),
        )
        token = await identity.issue_access_token_for(
            tx, user_id=user.id, keys=load_token_keys(settings)
        )
    return {"Authorization": f"Bearer {token}"}


async def new_product(
    db: Database, *, category: str, prices: tuple[str, ...] = ("10.00",), stock: int = 10
) -> tuple[uuid.UUID, list[str]]:
    async with db.transaction() as tx:
        product = await service.create_product(
            tx,
            product=NewProduct(
                name=unique("Cached"),
                category=category,
                variants=[
                    NewVariant(sku=unique("PC").upper(), price=Money.of(p, "USD"), stock=stock)
                    for p in prices
                ],
            ),
            currency="USD",
            actor_id=None,
        )
    return product.id, [v.sku for v in product.variants]


def variants_of(page: dict[str, Any]) -> dict[str, tuple[str, int]]:
    """SKU -> (price amount, available) over the page's products."""
    return {
        v["sku"]: (v["price"]["amount"], v["available"])
        for product in page["items"]
        for v in product["variants"]
    }


async def test_a_cached_page_never_shows_a_price_or_stock_older_than_an_acknowledged_write(
    processes: list[Process], committed_db: Database, settings: Settings
) -> None:
    a, b = processes
    admin = await admin_headers(committed_db, settings)
    category = unique("cache").lower()
    product_id, [sku, other] = await new_product(
        committed_db, category=category, prices=("10.00", "20.00")
    )
    for process in (a, b):
        for _ in range(2):  # the second read is served from the cache
            assert variants_of(await process.page(category=category)) == {
                sku: ("10.00", 10),
                other: ("20.00", 10),
            }
            assert variants_of({"items": [await process.product(product_id)]}) == {
                sku: ("10.00", 10),
                other: ("20.00", 10),
            }
        assert process.cached_pages() == 1  # the list page (product pages are read whole)

    # An admin's price change through one process shows at once in the other's pages.
    repriced = await a.client.patch(
        f"/api/v1/admin/variants/{sku}",
        json={"price": {"amount": "12.34", "currency": "USD"}},
        headers=admin,
    )
    assert repriced.status_code == 200, repriced.text
    for process in (b, a):
        assert variants_of(await process.page(category=category))[sku] == ("12.34", 10)
        assert variants_of({"items": [await process.product(product_id)]})[sku] == ("12.34", 10)

    # A stock adjustment through the other one.
    adjusted = await b.client.post(
        f"/api/v1/admin/inventory/{other}/adjustments",
        json={"delta": -3, "reason": "count"},
        headers=admin,
    )
    assert adjusted.status_code == 200, adjusted.text
    for process in (a, b):
        assert variants_of(await process.page(category=category))[other] == ("20.00", 7)
        assert variants_of({"items": [await process.product(product_id)]})[other] == ("20.00", 7)

    # A checkout: its reservation, then the sale, move `available`.
    async with committed_db.transaction() as tx:
        cart = await new_cart(tx, lines={sku: 2})
    bought = await a.client.post(
        cart.checkout_path, json=checkout_body(), headers=cart.checkout_headers(new_key())
    )
    assert bought.status_code == 201, bought.text
    for process in (b, a):
        assert variants_of(await process.page(category=category))[sku] == ("12.34", 8)
        assert variants_of({"items": [await process.product(product_id)]})[sku] == ("12.34", 8)

    # A new product, a renamed one and an archived one.
    added_id, [added] = await new_product(committed_db, category=category, prices=("1.00",))
    assert added in variants_of(await b.page(category=category))
    async with committed_db.transaction() as tx:
        await service.update_product(
            tx,
            product_id=added_id,
            changes=ProductChanges(fields=frozenset({"name"}), name="Renamed"),
        )
    assert (await a.page(category=category))["items"][0]["name"] == "Renamed"
    archived = await b.client.delete(f"/api/v1/admin/products/{product_id}", headers=admin)
    assert archived.status_code == 204
    for process in (a, b):
        assert set(variants_of(await process.page(category=category))) == {added}
        gone = await process.client.get(f"{PRODUCTS}/{product_id}")
        assert gone.status_code == 404


async def test_readers_racing_writers_never_see_a_write_older_than_one_acknowledged(
    processes: list[Process], committed_db: Database, settings: Settings
) -> None:
    writer, reader = processes
    admin = await admin_headers(committed_db, settings)
    category = unique("race").lower()
    _, [sku] = await new_product(committed_db, category=category, prices=("1.00",), stock=1000)
    # What the writer has had acknowledged so far: prices only go up, stock only down.
    acknowledged = {"price": Decimal("1.00"), "available": 1000}
    done = asyncio.Event()
    stale: list[str] = []
    reads = 0

    async def write() -> None:
        for step in range(1, 31):
            price = Decimal("1.00") + Decimal(step) / 100
            response = await writer.client.patch(
                f"/api/v1/admin/variants/{sku}",
                json={"price": {"amount": str(price), "currency": "USD"}},
                headers=admin,
            )
            assert response.status_code == 200, response.text
            acknowledged["price"] = price
            response = await writer.client.post(
                f"/api/v1/admin/inventory/{sku}/adjustments",
                json={"delta": -1, "reason": "race"},
                headers=admin,
            )
            assert response.status_code == 200, response.text
            acknowledged["available"] = 1000 - step
        done.set()

    async def read() -> None:
        nonlocal reads
        while not done.is_set():
            floor_price, ceiling_stock = acknowledged["price"], acknowledged["available"]
            amount, available = variants_of(await reader.page(category=category))[sku]
            reads += 1
            if Decimal(amount) < floor_price or available > ceiling_stock:
                stale.append(f"{amount}/{available} after {floor_price}/{ceiling_stock}")

    await asyncio.gather(write(), read(), read(), read())
    assert stale == []
    assert reads > 30
    assert variants_of(await reader.page(category=category))[sku] == ("1.30", 970)


async def test_a_fresh_cached_page_costs_one_statement_and_a_stale_one_two(
    client: httpx.AsyncClient, conn: Connection, app: FastAPI
) -> None:
    category = unique("statements")
    async with conn.transaction():
        product = await service.create_product(
            conn,
            product=NewProduct(
                name=unique("Counted"),
                category=category,
                variants=[
                    NewVariant(sku=unique("ST").upper(), price=Money.of("2.00", "USD"), stock=4)
                ],
            ),
            currency="USD",
            actor_id=None,
        )

    async def statements_of_a_read() -> int:
        async with logged_statements(conn) as statements:
            response = await client.get(PRODUCTS, params={"category": category})
        assert response.status_code == 200
        return len(statements)

    assert await statements_of_a_read() == 1  # the page, cached
    assert await statements_of_a_read() == 1  # the revision and live stock: still fresh
    await service.update_variant(
        conn, sku=product.variants[0].sku, currency="USD", price=Money.of("3.00", "USD")
    )
    assert await statements_of_a_read() == 2  # stale: the page again
    assert await statements_of_a_read() == 1
    assert len(app.state.product_pages) == 1


async def test_concurrent_catalog_writes_on_one_product_never_deadlock(
    committed_db: Database,
) -> None:
    """Every catalog write locks the product row before its variants and the catalog
    revision (which the triggers bump) last, so none waits on another in a cycle."""
    product_id, [sku] = await new_product(committed_db, category=unique("locks").lower())

    async def write(n: int) -> None:
        async with committed_db.transaction() as tx:
            if n % 3 == 0:
                await service.update_product(
                    tx,
                    product_id=product_id,
                    changes=ProductChanges(fields=frozenset({"name"}), name=f"Name {n}"),
                )
            elif n % 3 == 1:
                await service.update_variant(
                    tx, sku=sku, currency="USD", price=Money.of(f"{n}.00", "USD")
                )
            else:
                await service.add_variant(
                    tx,
                    product_id=product_id,
                    variant=NewVariant(
                        sku=unique("LK").upper(), price=Money.of("5.00", "USD"), stock=1
                    ),
                    currency="USD",
                    actor_id=None,
                )

    await asyncio.gather(*(write(n) for n in range(30)))
    async with committed_db.acquire() as conn:
        assert (
            await conn.fetchval("SELECT count(*) FROM variants WHERE product_id = $1", product_id)
            == 11
        )


def test_the_page_cache_drops_the_least_recently_used_pages_beyond_its_byte_budget() -> None:
    pages = service.ProductPages(max_bytes=100)

    def page(size: int) -> PageTemplate:
        return PageTemplate.of(b"x" * size, revision=1, skus=[])

    pages.put("a", page(40))
    pages.put("b", page(40))
    assert pages.get("a") is not None  # now the most recently used
    pages.put("c", page(40))  # 120 bytes: the least recently used goes
    assert pages.get("b") is None
    assert pages.get("a") is not None
    assert pages.get("c") is not None
    assert pages.bytes_held == 80
    pages.put("a", page(10))  # replaced, not counted twice
    assert pages.bytes_held == 50
    pages.put("huge", page(101))  # larger than the whole budget: never kept
    assert pages.get("huge") is None
    assert pages.bytes_held == 50
    assert len(pages) == 2


async def test_an_empty_result_is_cached_too_and_a_new_match_shows_at_once(
    client: httpx.AsyncClient, conn: Connection, app: FastAPI
) -> None:
    word = f"zq{uuid.uuid4().hex[:8]}"

    async def search() -> tuple[list[str], int]:
        async with logged_statements(conn) as statements:
            response = await client.get(PRODUCTS, params={"q": word})
        assert response.status_code == 200
        return [p["name"] for p in response.json()["items"]], len(statements)

    assert await search() == ([], 1)
    assert await search() == ([], 1)  # no scan of the catalog again: the revision only
    assert len(app.state.product_pages) == 1
    await service.create_product(
        conn,
        product=NewProduct(
            name=f"Found {word}",
            variants=[NewVariant(sku=unique("EM").upper(), price=Money.of("1.00", "USD"), stock=1)],
        ),
        currency="USD",
        actor_id=None,
    )
    assert await search() == ([f"Found {word}"], 2)
