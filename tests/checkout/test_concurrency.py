"""Checkout under real concurrent requests on a committed PostgreSQL database.

Each test starts its requests together (behind a barrier) through the app, on a
real connection pool, and then checks the invariants: never oversold, one
order per cart, one redemption per single-use coupon, nothing charged without
an order.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from functools import partial
from typing import Any

import httpx

from congocart.carts import service as carts
from congocart.core.db import Database
from tests.checkout.conftest import (
    CartRef,
    cart_state,
    charges_of,
    checkout_body,
    gather_responses,
    new_cart,
    new_coupon,
    new_key,
    new_sku,
    orders_of,
    redemptions_of,
    stock_of,
)


def codes(responses: list[httpx.Response]) -> Counter[tuple[int, str | None]]:
    return Counter(
        (r.status_code, None if r.status_code < 400 else r.json()["code"]) for r in responses
    )


async def test_fifty_buyers_for_five_units_make_exactly_five_orders_and_never_oversell(
    committed_client: httpx.AsyncClient, committed_db: Database
) -> None:
    async with committed_db.transaction() as tx:
        sku = await new_sku(tx, stock=5)
        buyers = [await new_cart(tx, lines={sku: 1}) for _ in range(50)]

    lowest_available = 5
    done = asyncio.Event()

    async def watch_stock() -> None:
        nonlocal lowest_available
        async with committed_db.acquire() as conn:
            while not done.is_set():
                available = await conn.fetchval(
                    "SELECT on_hand - reserved FROM variants WHERE sku = $1", sku
                )
                lowest_available = min(lowest_available, available)
                await asyncio.sleep(0.001)

    watcher = asyncio.create_task(watch_stock())
    responses = await gather_responses(
        *(
            partial(
                committed_client.post,
                cart.checkout_path,
                json=checkout_body(),
                headers=cart.checkout_headers(new_key()),
            )
            for cart in buyers
        )
    )
    done.set()
    await watcher

    assert codes(responses) == {(201, None): 5, (409, "out_of_stock"): 45}
    assert lowest_available >= 0
    async with committed_db.acquire() as conn:
        assert await stock_of(conn, sku) == (0, 0)
        assert await conn.fetchval("SELECT count(*) FROM orders") == 5
        charges = [await charges_of(conn, cart.id) for cart in buyers]
        assert sum(c.captured for c in charges) == 5
        assert sum(c.voided + c.refused for c in charges) == 0
        for cart, response in zip(buyers, responses, strict=True):
            expected = "checked_out" if response.status_code == 201 else "open"
            assert (await cart_state(conn, cart.id))[0] == expected


async def test_one_cart_checked_out_ten_times_at_once_with_one_key_makes_one_order(
    committed_client: httpx.AsyncClient, committed_db: Database
) -> None:
    async with committed_db.transaction() as tx:
        sku = await new_sku(tx, stock=10)
        cart = await new_cart(tx, lines={sku: 2})
    key = new_key()

    responses = await gather_responses(
        *(
            partial(
                committed_client.post,
                cart.checkout_path,
                json=checkout_body(),
                headers=cart.checkout_headers(key),
            )
            for _ in range(10)
        )
    )

    outcomes = codes(responses)
    assert set(outcomes) <= {(201, None), (409, "idempotency_key_in_flight")}
    assert outcomes[(201, None)] >= 1
    created = [r for r in responses if r.status_code == 201]
    assert len({r.json()["id"] for r in created}) == 1
    assert all(r.headers["Retry-After"] for r in responses if r.status_code == 409)
    async with committed_db.acquire() as conn:
        assert await orders_of(conn, cart.id) == 1
        assert await charges_of(conn, cart.id) == (1, 0, 0)
        assert await stock_of(conn, sku) == (8, 0)

    # Once it is done, the key answers the order to anyone who asks again.
    again = await committed_client.post(
        cart.checkout_path, json=checkout_body(), headers=cart.checkout_headers(key)
    )
    assert again.status_code == 201
    assert again.json() == created[0].json()


async def test_one_cart_checked_out_at_once_with_different_keys_makes_one_order(
    committed_client: httpx.AsyncClient, committed_db: Database
) -> None:
    async with committed_db.transaction() as tx:
        sku = await new_sku(tx, stock=10)
        cart = await new_cart(tx, lines={sku: 1})

    responses = await gather_responses(
        *(
            partial(
                committed_client.post,
                cart.checkout_path,
                json=checkout_body(),
                headers=cart.checkout_headers(new_key()),
            )
            for _ in range(10)
        )
    )

    outcomes = codes(responses)
    assert outcomes[(201, None)] == 1
    assert set(outcomes) - {(201, None)} <= {
        (409, "checkout_in_progress"),
        (409, "cart_closed"),
    }
    async with committed_db.acquire() as conn:
        assert await orders_of(conn, cart.id) == 1
        assert await charges_of(conn, cart.id) == (1, 0, 0)
        assert await stock_of(conn, sku) == (9, 0)


async def check_out_at_once(
    client: httpx.AsyncClient, cart_refs: list[CartRef], body: dict[str, Any]
) -> list[httpx.Response]:
    """Every cart checked out at once, each under a key of its own."""
    return await gather_responses(
        *(
            partial(
                client.post,
                cart.checkout_path,
                json=body,
                headers=cart.checkout_headers(new_key()),
            )
            for cart in cart_refs
        )
    )


async def assert_one_order_redeemed(
    db: Database, code: str, sku: str, racers: list[CartRef], responses: list[httpx.Response]
) -> None:
    """One redemption, one unit sold, and only the paid cart charged and ordered
    (each racer's cart held one unit of `sku` from a stock of 100)."""
    async with db.acquire() as conn:
        assert await redemptions_of(conn, code) == (1, 1)
        assert await stock_of(conn, sku) == (99, 0)
        for cart, response in zip(racers, responses, strict=True):
            paid = response.status_code == 201
            assert await charges_of(conn, cart.id) == ((1, 0, 0) if paid else (0, 0, 0))
            assert await orders_of(conn, cart.id) == int(paid)


async def test_a_single_use_coupon_raced_by_ten_carts_is_redeemed_once_and_charges_nobody_else(
    committed_client: httpx.AsyncClient, committed_db: Database
) -> None:
    async with committed_db.transaction() as tx:
        sku = await new_sku(tx, stock=100)
        code = await new_coupon(tx, percent_off="50", max_redemptions=1)
        racers = [await new_cart(tx, lines={sku: 1}, coupon=code) for _ in range(10)]

    responses = await check_out_at_once(committed_client, racers, checkout_body())

    assert codes(responses) == {(201, None): 1, (409, "coupon_unavailable"): 9}
    await assert_one_order_redeemed(committed_db, code, sku, racers, responses)


async def test_a_once_per_customer_coupon_raced_by_one_customers_carts_is_redeemed_once(
    committed_client: httpx.AsyncClient, committed_db: Database
) -> None:
    # Ten guest carts of one customer (one email), the coupon plentiful but
    # once per customer: the limit holds however the checkouts interleave.
    email = f"{new_key()}@example.com"
    async with committed_db.transaction() as tx:
        sku = await new_sku(tx, stock=100)
        code = await new_coupon(tx, percent_off="50", per_customer_limit=1)
        racers = [await new_cart(tx, lines={sku: 1}, coupon=code) for _ in range(10)]

    responses = await check_out_at_once(committed_client, racers, checkout_body(email=email))

    outcomes = codes(responses)
    assert outcomes[(201, None)] == 1, outcomes
    # A loser that priced its cart after the winner's order sees the limit
    # reached (422); one that raced it is refused at the reservation (409).
    assert set(outcomes) <= {(201, None), (409, "coupon_unavailable"), (422, "coupon_invalid")}
    await assert_one_order_redeemed(committed_db, code, sku, racers, responses)


async def test_a_checkout_that_waited_for_the_carts_lock_orders_the_lines_added_meanwhile(
    committed_client: httpx.AsyncClient, committed_db: Database
) -> None:
    """Its first statement read the lines before the lock was free: it reads them again."""
    async with committed_db.transaction() as tx:
        first, second = await new_sku(tx, price="3.00"), await new_sku(tx, price="4.00")
        cart = await new_cart(tx, lines={first: 1})

    async with committed_db.transaction() as tx:
        # A line added in a transaction still open: the cart's row lock is held.
        await carts.add_item(tx, cart_id=cart.id, owner=cart.owner, sku=second, quantity=2)
        checkout = asyncio.create_task(
            committed_client.post(
                cart.checkout_path, json=checkout_body(), headers=cart.checkout_headers(new_key())
            )
        )
        await asyncio.sleep(0.3)
        assert not checkout.done()
    response = await checkout

    assert response.status_code == 201, response.text
    order = response.json()
    assert sorted((i["sku"], i["quantity"]) for i in order["items"]) == sorted(
        [(first, 1), (second, 2)]
    )
    assert order["subtotal"] == {"amount": "11.00", "currency": "USD"}
    async with committed_db.acquire() as conn:
        assert await stock_of(conn, second) == (8, 0)
        assert await orders_of(conn, cart.id) == 1


async def test_an_attempt_committed_while_a_checkout_waited_for_the_cart_is_409_in_progress(
    committed_client: httpx.AsyncClient, committed_db: Database
) -> None:
    """The reservation's snapshot saw no live attempt; one was committed before it
    got the cart's lock. It neither reserves nor calls that out of stock."""
    async with committed_db.transaction() as tx:
        sku = await new_sku(tx, stock=10)
        cart = await new_cart(tx, lines={sku: 1})

    async with committed_db.transaction() as tx:
        await tx.execute("SELECT 1 FROM carts WHERE id = $1 FOR UPDATE", cart.id)
        checkout = asyncio.create_task(
            committed_client.post(
                cart.checkout_path, json=checkout_body(), headers=cart.checkout_headers(new_key())
            )
        )
        await asyncio.sleep(0.3)  # its reservation statement now waits for the cart
        assert not checkout.done()
        # Another checkout's attempt, committed with the lock's release.
        await tx.execute(
            """
            INSERT INTO checkout_attempts (id, cart_id, idempotency_key, payment_key,
                                           reserved_lines, amount_minor, currency, expires_at)
            VALUES (gen_random_uuid(), $1, 'other', 'checkout:other', '[]', 100, 'USD',
                    now() + interval '3 minutes')
            """,
            cart.id,
        )
    response = await checkout

    assert (response.status_code, response.json()["code"]) == (409, "checkout_in_progress")
    async with committed_db.acquire() as conn:
        assert await stock_of(conn, sku) == (10, 0)
        assert await orders_of(conn, cart.id) == 0
        assert await charges_of(conn, cart.id) == (0, 0, 0)
