"""The redemption counter under real concurrency, on a committed database."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from congocart.core.db import Database
from congocart.promotions import service
from congocart.promotions.domain import Coupon
from congocart.promotions.errors import CouponUnavailable
from tests.promotions.conftest import unique_code


async def test_ten_concurrent_reservations_of_a_single_use_coupon_yield_exactly_one(
    committed_db: Database,
) -> None:
    code = unique_code("ONCE")
    async with committed_db.transaction() as tx:
        await service.create_coupon(
            tx, coupon=Coupon(code=code, percent_off=Decimal(10), max_redemptions=1), currency="USD"
        )
    start = asyncio.Event()

    async def reserve() -> bool:
        async with committed_db.transaction() as tx:
            await start.wait()
            try:
                await service.reserve_redemption(tx, code=code)
            except CouponUnavailable:
                return False
            # Hold the row a moment, so the others really queue behind this one.
            await asyncio.sleep(0.05)
            return True

    tasks = [asyncio.create_task(reserve()) for _ in range(10)]
    await asyncio.sleep(0.1)  # every session has begun its transaction
    start.set()
    results = await asyncio.gather(*tasks)

    assert results.count(True) == 1
    async with committed_db.acquire() as conn:
        coupon = await service.get_coupon(conn, code=code)
    assert coupon is not None
    assert coupon.redemptions == 1


async def test_a_redemption_released_by_a_failed_checkout_goes_to_the_next_buyer(
    committed_db: Database,
) -> None:
    code = unique_code("AGAIN")
    async with committed_db.transaction() as tx:
        await service.create_coupon(
            tx, coupon=Coupon(code=code, percent_off=Decimal(10), max_redemptions=1), currency="USD"
        )
    async with committed_db.transaction() as tx:
        await service.reserve_redemption(tx, code=code)
    async with committed_db.transaction() as tx:  # the payment was declined
        await service.release_redemption(tx, code=code)

    async def reserve() -> bool:
        try:
            async with committed_db.transaction() as tx:
                await service.reserve_redemption(tx, code=code)
        except CouponUnavailable:
            return False
        return True

    results = await asyncio.gather(*(reserve() for _ in range(5)))
    assert results.count(True) == 1
