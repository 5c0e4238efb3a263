"""What the virtual clients do, written against the public API contract only."""

from __future__ import annotations

import re
import uuid
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlencode

from congocart.bench.client import Client
from congocart.bench.loadgen import Exhausted, Session

API = "/api/v1"
SCENARIOS = ("browse", "cart", "checkout-flow", "checkout")
UNITS = {"browse": "req", "cart": "carts", "checkout-flow": "orders", "checkout": "orders"}

SHIPPING_ADDRESS = {
    "name": "Bench Shopper",
    "line1": "1 Load Test Way",
    "city": "Springfield",
    "postal_code": "62701",
    "country": "US",
}


class SetupError(Exception):
    """The API did not answer as the contract says while the bench prepared its data."""


@dataclass
class CatalogSample:
    """What browsing and carts pick from, read through the API before any timing."""

    slugs: list[str] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    skus: list[str] = field(default_factory=list)  # in stock
    categories: list[str] = field(default_factory=list)
    cursors: list[str] = field(default_factory=list)  # next-page cursors at the default limit
    words: list[str] = field(default_factory=list)
    prices: list[Decimal] = field(default_factory=list)


async def _get_json(client: Client, target: str) -> Any:
    response = await client.request("GET", target)
    if response.status != 200:
        raise SetupError(f"GET {target} -> {response.status} {response.body[:300]!r}")
    return response.json()


async def sample_catalog(client: Client, *, max_pages: int = 200) -> CatalogSample:
    """Walk the product list (100 a page) and a few default-sized pages for cursors."""
    sample = CatalogSample()
    categories = await _get_json(client, f"{API}/categories")
    sample.categories = [item["slug"] for item in categories["items"]]
    words: set[str] = set()
    cursor: str | None = None
    for _ in range(max_pages):
        query = {"limit": "100"} | ({"cursor": cursor} if cursor else {})
        page = await _get_json(client, f"{API}/products?{urlencode(query)}")
        for product in page["items"]:
            sample.slugs.append(product["slug"])
            sample.ids.append(product["id"])
            words.update(w.lower() for w in re.findall(r"[A-Za-z]{4,}", product["name"]))
            for variant in product["variants"]:
                sample.prices.append(Decimal(variant["price"]["amount"]))
                if variant["available"] >= 20:
                    sample.skus.append(variant["sku"])
        cursor = page["next_cursor"]
        if not cursor:
            break
    cursor = None
    for _ in range(50):
        target = f"{API}/products" + (f"?cursor={quote(cursor)}" if cursor else "")
        page = await _get_json(client, target)
        cursor = page["next_cursor"]
        if not cursor:
            break
        sample.cursors.append(cursor)
    sample.words = sorted(words)
    if not sample.slugs:
        raise SetupError("the catalog is empty: was it seeded?")
    if len(sample.skus) < 3:
        raise SetupError("fewer than 3 variants with 20 or more in stock")
    return sample


class Browse:
    """Product list pages (first, next, filtered by category, price or words) and details."""

    # (kind, weight): the storefront's mix, detail pages the most common.
    MIX = (
        ("list_first_page", 30),
        ("list_next_page", 10),
        ("list_by_category", 10),
        ("list_by_price", 5),
        ("search", 5),
        ("product_detail", 40),
    )

    def __init__(self, catalog: CatalogSample) -> None:
        self.catalog = catalog
        self._kinds = [kind for kind, _ in self.MIX]
        self._weights = [weight for _, weight in self.MIX]

    def target(self, session: Session, kind: str) -> str:
        rng, catalog = session.rng, self.catalog
        if kind == "list_next_page" and catalog.cursors:
            return f"{API}/products?cursor={quote(rng.choice(catalog.cursors))}"
        if kind == "list_by_category" and catalog.categories:
            return f"{API}/products?category={quote(rng.choice(catalog.categories))}"
        if kind == "list_by_price" and catalog.prices:
            low, high = sorted(rng.sample(catalog.prices, 2))
            return f"{API}/products?min_price={low}&max_price={high}"
        if kind == "search" and catalog.words:
            return f"{API}/products?q={quote(rng.choice(catalog.words))}"
        if kind == "product_detail":
            key = rng.choice(catalog.slugs if rng.random() < 0.5 else catalog.ids)
            return f"{API}/products/{quote(key)}"
        return f"{API}/products"

    async def __call__(self, session: Session) -> None:
        kind = session.rng.choices(self._kinds, self._weights)[0]
        await session.call(kind, "GET", self.target(session, kind), expect=200)


@dataclass(frozen=True)
class PreparedCart:
    id: str
    token: str
    lines: dict[str, int]  # sku -> quantity, what the client put in


@dataclass(frozen=True)
class PlacedOrder:
    id: str
    cart_lines: dict[str, int]
    order_lines: dict[str, int]  # sku -> quantity, as the 201 response lists them


async def build_cart(session: Session, catalog: CatalogSample) -> PreparedCart:
    """POST a guest cart, then add 1-3 distinct SKUs, 1-3 of each."""
    created = await session.call("create_cart", "POST", f"{API}/carts", json={}, expect=201)
    body = created.json()
    cart_id, token = body["id"], body["cart_token"]
    headers = (("X-Cart-Token", token),)
    lines: dict[str, int] = {}
    rng = session.rng
    for sku in rng.sample(catalog.skus, rng.randint(1, 3)):
        quantity = rng.randint(1, 3)
        await session.call(
            "add_item",
            "POST",
            f"{API}/carts/{cart_id}/items",
            json={"sku": sku, "quantity": quantity},
            headers=headers,
            expect=201,
        )
        lines[sku] = quantity
    return PreparedCart(id=cart_id, token=token, lines=lines)


async def check_out(session: Session, cart: PreparedCart, placed: list[PlacedOrder]) -> None:
    """Pay for a cart with the sandbox's approved card; a 201 is recorded as a placed order."""
    response = await session.call(
        "checkout",
        "POST",
        f"{API}/carts/{cart.id}/checkout",
        json={
            "email": "bench@example.com",
            "shipping_address": SHIPPING_ADDRESS,
            "payment": {"token": "tok_visa"},
        },
        headers=(("X-Cart-Token", cart.token), ("Idempotency-Key", uuid.uuid4().hex)),
        expect=201,
    )
    order = response.json()
    order_lines: dict[str, int] = {}
    for item in order["items"]:
        order_lines[item["sku"]] = order_lines.get(item["sku"], 0) + item["quantity"]
    placed.append(PlacedOrder(id=order["id"], cart_lines=cart.lines, order_lines=order_lines))


class Carts:
    """Create a cart and add 1-3 lines; `keep` collects the carts for a later checkout run."""

    def __init__(self, catalog: CatalogSample, *, keep: deque[PreparedCart] | None = None) -> None:
        self.catalog = catalog
        self.keep = keep

    async def __call__(self, session: Session) -> None:
        cart = await build_cart(session, self.catalog)
        if self.keep is not None:
            self.keep.append(cart)


class CheckoutFlow:
    """Create a cart, add 1-3 lines, check out: one completed order per operation."""

    def __init__(self, catalog: CatalogSample) -> None:
        self.catalog = catalog
        self.placed: list[PlacedOrder] = []

    async def __call__(self, session: Session) -> None:
        cart = await build_cart(session, self.catalog)
        await check_out(session, cart, self.placed)


class Checkout:
    """The checkout request alone, on carts prepared beforehand."""

    def __init__(self, carts: deque[PreparedCart]) -> None:
        self.carts = carts
        self.placed: list[PlacedOrder] = []

    async def __call__(self, session: Session) -> None:
        try:
            cart = self.carts.popleft()
        except IndexError:
            raise Exhausted from None
        await check_out(session, cart, self.placed)
