"""Carts test helpers: catalog variants made through the catalog service, cart owners."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from congocart.carts.domain import CartOwner
from congocart.catalog import service as catalog
from congocart.catalog.domain import NewProduct, NewVariant, ProductView
from congocart.core.db import Connection
from congocart.core.money import Money
from congocart.identity.domain import Principal
from tests.conftest import TestUser


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def make_product(
    conn: Connection,
    *,
    prices: Sequence[str] = ("10.00",),
    stock: int = 100,
    name: str | None = None,
    variant_names: Sequence[str | None] | None = None,
) -> ProductView:
    """A product with one variant per price, fresh SKUs."""
    names = variant_names or [None] * len(prices)
    return await catalog.create_product(
        conn,
        product=NewProduct(
            name=name or unique("Product"),
            slug=unique("p"),
            variants=[
                NewVariant(
                    sku=unique("SKU").upper(), price=Money.of(price, "USD"), stock=stock, name=vn
                )
                for price, vn in zip(prices, names, strict=True)
            ],
        ),
        currency="USD",
        actor_id=None,
    )


async def make_skus(conn: Connection, *, count: int, price: str = "1.00") -> list[str]:
    product = await make_product(conn, prices=[price] * count)
    return [variant.sku for variant in product.variants]


def principal(user: TestUser) -> Principal:
    return Principal(id=user.id, email=user.email, roles=user.roles)


def user_owner(user: TestUser) -> CartOwner:
    return CartOwner(user=principal(user))


def guest_owner(token: str | None) -> CartOwner:
    return CartOwner(cart_token=token)


@asynccontextmanager
async def logged_statements(conn: Connection) -> AsyncIterator[list[str]]:
    """The statements the connection runs inside the block."""
    statements: list[str] = []
    with conn.query_logger(lambda record: statements.append(record.query)):
        yield statements
    await asyncio.sleep(0)  # asyncpg calls loggers with call_soon: let them run
