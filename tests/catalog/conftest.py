"""Catalog test helpers: products made through the service, on the test's connection."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager

import pytest

from congocart.catalog import service
from congocart.catalog.domain import NewProduct, NewVariant, ProductView
from congocart.core.db import Connection
from congocart.core.money import Money

MakeProduct = Callable[..., Awaitable[ProductView]]


@asynccontextmanager
async def logged_statements(conn: Connection) -> AsyncIterator[list[str]]:
    """The statements the connection runs inside the block."""
    statements: list[str] = []
    with conn.query_logger(lambda record: statements.append(record.query)):
        yield statements
    await asyncio.sleep(0)  # asyncpg calls loggers with call_soon: let them run


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def make_product(conn: Connection) -> MakeProduct:
    """`await make_product(prices=("9.99", "12.00"), stock=5, category=...)`: a product
    with one variant per price, fresh SKUs and slug."""

    async def make(
        *,
        name: str | None = None,
        prices: Sequence[str] = ("10.00",),
        stock: int = 10,
        category: str | None = None,
        description: str = "",
    ) -> ProductView:
        product = NewProduct(
            name=name or unique("Product"),
            slug=unique("p"),
            description=description,
            category=category,
            variants=[
                NewVariant(sku=unique("SKU").upper(), price=Money.of(price, "USD"), stock=stock)
                for price in prices
            ],
        )
        return await service.create_product(conn, product=product, currency="USD", actor_id=None)

    return make
