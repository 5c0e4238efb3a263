"""Carts under real concurrency: many sessions on a committed database."""

from __future__ import annotations

import asyncio

from congocart.carts import service
from congocart.carts.domain import CartOwner
from congocart.carts.errors import TooManyLines
from congocart.core.db import Database
from tests.carts.conftest import guest_owner, make_skus


async def guest_cart_with_lines(
    db: Database, skus: list[str]
) -> tuple[service.CartView, CartOwner]:
    async with db.transaction() as tx:
        cart = await service.create_cart(tx, user=None, currency=None, shop_currency="USD")
        owner = guest_owner(cart.cart_token)
        for sku in skus:
            await service.add_item(tx, cart_id=cart.id, owner=owner, sku=sku, quantity=1)
    return cart, owner


async def test_concurrent_adds_never_take_a_cart_past_one_hundred_lines(
    committed_db: Database,
) -> None:
    async with committed_db.transaction() as tx:
        skus = await make_skus(tx, count=120)
    cart, owner = await guest_cart_with_lines(committed_db, skus[:95])

    async def add(sku: str) -> bool:
        try:
            async with committed_db.transaction() as tx:
                await service.add_item(tx, cart_id=cart.id, owner=owner, sku=sku, quantity=1)
        except TooManyLines:
            return False
        return True

    results = await asyncio.gather(*(add(sku) for sku in skus[95:]))

    assert results.count(True) == 5
    async with committed_db.acquire() as conn:
        final = await service.get_cart(conn, cart_id=cart.id, owner=owner)
        stored = await conn.fetchval("SELECT count(*) FROM cart_items WHERE cart_id = $1", cart.id)
    assert len(final.items) == stored == 100
    # Five successful changes on top of the 95 that built the cart.
    assert final.version == 1 + 95 + 5


async def test_concurrent_adds_of_one_sku_lose_no_quantity(committed_db: Database) -> None:
    """Each add reads the line under the cart's lock: none is based on a stale quantity."""
    async with committed_db.transaction() as tx:
        [sku] = await make_skus(tx, count=1)
    cart, owner = await guest_cart_with_lines(committed_db, [])

    async def add() -> None:
        async with committed_db.transaction() as tx:
            await service.add_item(tx, cart_id=cart.id, owner=owner, sku=sku, quantity=3)

    await asyncio.gather(*(add() for _ in range(20)))

    async with committed_db.acquire() as conn:
        final = await service.get_cart(conn, cart_id=cart.id, owner=owner)
    assert [(item.sku, item.quantity) for item in final.items] == [(sku, 60)]
    assert final.version == 21
