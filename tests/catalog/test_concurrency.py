"""Stock under real concurrency: many sessions on a committed database."""

from __future__ import annotations

import asyncio
import random
import sys
from pathlib import Path

from congocart.catalog import service
from congocart.catalog.domain import NewProduct, NewVariant
from congocart.catalog.errors import InsufficientStock, OutOfStock
from congocart.core.db import Database
from congocart.core.money import Money
from tests.catalog.conftest import unique


async def make_skus(db: Database, *, count: int, stock: int) -> list[str]:
    async with db.transaction() as tx:
        product = await service.create_product(
            tx,
            product=NewProduct(
                name=unique("Contended"),
                variants=[
                    NewVariant(sku=unique("C").upper(), price=Money.of("1.00", "USD"), stock=stock)
                    for _ in range(count)
                ],
            ),
            currency="USD",
            actor_id=None,
        )
    return [v.sku for v in product.variants]


async def stock_levels(db: Database, skus: list[str]) -> dict[str, tuple[int, int]]:
    async with db.acquire() as conn:
        rows = await conn.fetch(
            "SELECT sku, on_hand, reserved FROM variants WHERE sku = ANY($1::text[])", skus
        )
    return {r["sku"]: (r["on_hand"], r["reserved"]) for r in rows}


async def test_fifty_concurrent_reservations_against_five_units_reserve_exactly_five(
    committed_db: Database,
) -> None:
    [sku] = await make_skus(committed_db, count=1, stock=5)

    async def reserve_one() -> list[str]:
        """The SKUs refused as out of stock: none when the reservation held."""
        try:
            async with committed_db.transaction() as tx:
                await service.reserve_stock(tx, lines={sku: 1})
        except OutOfStock as exc:
            return exc.skus
        return []

    results = await asyncio.gather(*(reserve_one() for _ in range(50)))
    assert results.count([]) == 5
    assert results.count([sku]) == 45
    assert await stock_levels(committed_db, [sku]) == {sku: (5, 5)}


async def test_multi_sku_reservations_in_random_orders_never_deadlock_or_lose_a_unit(
    committed_db: Database,
) -> None:
    skus = await make_skus(committed_db, count=6, stock=10_000)
    rng = random.Random(20261124)
    sold: dict[str, int] = dict.fromkeys(skus, 0)

    async def shopper(lines: dict[str, int], sell: bool) -> None:
        async with committed_db.transaction() as tx:
            await service.reserve_stock(tx, lines=lines)
        async with committed_db.transaction() as tx:
            if sell:
                await service.commit_stock(tx, lines=lines)
            else:
                await service.release_stock(tx, lines=lines)
        if sell:
            for sku, qty in lines.items():
                sold[sku] += qty

    orders = []
    for _ in range(120):
        chosen = rng.sample(skus, rng.randint(2, 6))  # random order: the dict keeps it
        orders.append(({sku: rng.randint(1, 3) for sku in chosen}, rng.random() < 0.5))
    # Any deadlock would surface here as DeadlockDetectedError.
    await asyncio.gather(*(shopper(lines, sell) for lines, sell in orders))

    levels = await stock_levels(committed_db, skus)
    assert levels == {sku: (10_000 - sold[sku], 0) for sku in skus}


async def test_adjustments_racing_reservations_never_leave_less_on_hand_than_reserved(
    committed_db: Database,
) -> None:
    [sku] = await make_skus(committed_db, count=1, stock=20)
    reserved = adjusted = 0

    async def reserve() -> None:
        nonlocal reserved
        try:
            async with committed_db.transaction() as tx:
                await service.reserve_stock(tx, lines={sku: 1})
            reserved += 1
        except OutOfStock:
            pass

    async def shrink() -> None:
        nonlocal adjusted
        try:
            async with committed_db.transaction() as tx:
                await service.adjust_stock(tx, sku=sku, delta=-1, reason="count", actor_id=None)
            adjusted += 1
        except InsufficientStock:
            pass

    tasks = [reserve() for _ in range(20)] + [shrink() for _ in range(15)]
    random.Random(7).shuffle(tasks)
    await asyncio.gather(*tasks)

    assert reserved + adjusted == 20  # every unit went one way or the other, none twice
    assert await stock_levels(committed_db, [sku]) == {sku: (20 - adjusted, reserved)}
    async with committed_db.acquire() as conn:
        ledger = await conn.fetchval(
            "SELECT count(*) FROM inventory_adjustments WHERE sku = $1 AND reason = 'count'", sku
        )
    assert ledger == adjusted


async def test_the_seed_command_loads_the_demo_catalog_once(committed_db: Database) -> None:
    congocart = Path(sys.executable).with_name("congocart")

    async def seed(products: int) -> str:
        process = await asyncio.create_subprocess_exec(
            str(congocart),
            "seed",
            "--products",
            str(products),
            env={"DATABASE_URL": committed_db.dsn, "PATH": "/usr/bin:/bin"},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await process.communicate()
        assert process.returncode == 0, err.decode()
        return out.decode()

    first = await seed(30)
    assert "added 30 products" in first
    second = await seed(30)
    assert "added 0 products and 0 variants" in second
    async with committed_db.acquire() as conn:
        counts = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM products) AS products,"
            " (SELECT count(*) FROM categories) AS categories"
        )
    assert tuple(counts) == (30, 5)
