"""Carts under real concurrency: many sessions on a committed database."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from congocart.carts import repository, service
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


async def guest_cart(db: Database) -> tuple[service.CartView, CartOwner]:
    async with db.acquire() as conn:
        cart = await service.create_cart(conn, user=None, currency=None, shop_currency="USD")
    return cart, guest_owner(cart.cart_token)


async def test_concurrent_adds_without_a_transaction_lose_no_quantity(
    committed_db: Database,
) -> None:
    """As the route runs it: each add a read and a version-guarded write, no transaction."""
    async with committed_db.transaction() as tx:
        [sku] = await make_skus(tx, count=1)
    cart, owner = await guest_cart(committed_db)

    async def add() -> None:
        async with committed_db.acquire() as conn:
            await service.add_item(conn, cart_id=cart.id, owner=owner, sku=sku, quantity=2)

    await asyncio.gather(*(add() for _ in range(25)))

    async with committed_db.acquire() as conn:
        final = await service.get_cart(conn, cart_id=cart.id, owner=owner)
    assert [(item.sku, item.quantity) for item in final.items] == [(sku, 50)]
    assert final.version == 26


async def test_concurrent_adds_without_a_transaction_never_pass_one_hundred_lines(
    committed_db: Database,
) -> None:
    async with committed_db.transaction() as tx:
        skus = await make_skus(tx, count=130)
    cart, owner = await guest_cart_with_lines(committed_db, skus[:90])

    async def add(sku: str) -> bool:
        try:
            async with committed_db.acquire() as conn:
                await service.add_item(conn, cart_id=cart.id, owner=owner, sku=sku, quantity=1)
        except TooManyLines:
            return False
        return True

    results = await asyncio.gather(*(add(sku) for sku in skus[90:]))

    assert results.count(True) == 10
    async with committed_db.acquire() as conn:
        final = await service.get_cart(conn, cart_id=cart.id, owner=owner)
        stored = await conn.fetchval("SELECT count(*) FROM cart_items WHERE cart_id = $1", cart.id)
    assert len(final.items) == stored == 100
    assert final.version == 1 + 90 + 10


async def test_an_add_whose_cart_changed_after_its_read_writes_nothing_and_reads_again(
    committed_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with committed_db.transaction() as tx:
        first, second = await make_skus(tx, count=2)
    cart, owner = await guest_cart(committed_db)
    reads = 0
    read = repository.get_cart_and_variants

    async def read_then_someone_else_adds(*args: Any, **kwargs: Any) -> Any:
        nonlocal reads
        reads += 1
        found = await read(*args, **kwargs)
        if reads == 1:  # the cart changes between this add's read and its write
            async with committed_db.acquire() as other:
                await service.add_item(other, cart_id=cart.id, owner=owner, sku=first, quantity=5)
        return found

    monkeypatch.setattr(repository, "get_cart_and_variants", read_then_someone_else_adds)
    async with committed_db.acquire() as conn:
        view = await service.add_item(conn, cart_id=cart.id, owner=owner, sku=first, quantity=1)
        await service.add_item(conn, cart_id=cart.id, owner=owner, sku=second, quantity=1)

    # Read 1 was stale (its write did nothing), read 2 saw the other add, the
    # other add and the second add read once each.
    assert reads == 4
    assert [(item.sku, item.quantity) for item in view.items] == [(first, 6)]
    assert view.version == 3


async def test_an_add_that_keeps_losing_races_takes_the_carts_lock_instead(
    committed_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with committed_db.transaction() as tx:
        [sku] = await make_skus(tx, count=1)
    cart, owner = await guest_cart(committed_db)

    async def always_changed(*args: Any, **kwargs: Any) -> None:
        return None

    monkeypatch.setattr(repository, "upsert_item_if_unchanged", always_changed)
    async with committed_db.acquire() as conn:
        view = await service.add_item(conn, cart_id=cart.id, owner=owner, sku=sku, quantity=4)
        assert not conn.is_in_transaction()
        final = await service.get_cart(conn, cart_id=cart.id, owner=owner)

    assert [(item.sku, item.quantity) for item in view.items] == [(sku, 4)]
    assert final.version == view.version == 2
