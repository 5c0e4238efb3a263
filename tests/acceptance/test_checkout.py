"""api-contract.md, "Checkout": idempotency, payments, atomicity, never overselling.

Through HTTP only, except where the promise is about what no HTTP read shows
(reserved units, sandbox charges, orders per cart): those are read from the
database with the checkout tests' helpers.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from congocart.adapters.sandbox_gateway import SandboxGateway
from congocart.config import Settings
from congocart.core.db import Connection, Database
from congocart.core.money import Money
from congocart.main import create_app
from congocart.payments.domain import PaymentResult
from tests.acceptance.conftest import (
    API,
    Roles,
    admin_headers,
    assert_problem,
    available,
    check_out,
    checkout_body,
    committed_product,
    create_coupon,
    create_product,
    guest_cart_with,
    new_cart,
    new_key,
    new_sku,
    usd,
)
from tests.checkout.conftest import charges_of, gather_responses, orders_of, stock_of

ORDER_FIELDS = {
    "id",
    "number",
    "status",
    "email",
    "items",
    "subtotal",
    "discount",
    "shipping",
    "tax",
    "total",
    "shipping_address",
    "payment",
    "created_at",
    "updated_at",
}


async def test_checkout_is_201_with_the_paid_order(
    client: httpx.AsyncClient, roles: Roles, conn: Connection
) -> None:
    product = await create_product(client, roles.admin, prices=("12.50",), stock=5)
    sku = product["variants"][0]["sku"]
    cart = await new_cart(client, user=roles.customer, lines={sku: 2})

    response = await check_out(client, cart, card="tok_mastercard", email=None)

    assert response.status_code == 201, response.text
    order = response.json()
    assert order.keys() >= ORDER_FIELDS
    assert order["status"] == "paid"
    assert order["email"] == roles.customer.email
    assert order["number"].startswith("CC-")
    assert order["number"][3:].isdigit()
    assert [
        (i["sku"], i["name"], i["unit_price"], i["quantity"], i["line_total"])
        for i in order["items"]
    ] == [(sku, order["items"][0]["name"], usd("12.50"), 2, usd("25.00"))]
    assert order["payment"]["status"]
    assert order["payment"]["last4"] == "4444"
    assert order["shipping_address"]["country"] == "US"
    assert await available(client, sku, product["id"]) == 3
    assert await stock_of(conn, sku) == (3, 0)
    # The cart is closed.
    assert_problem(
        await client.post(
            f"{cart.path}/items", json={"sku": sku, "quantity": 1}, headers=cart.headers
        ),
        409,
        "cart_closed",
    )


async def test_order_numbers_are_unique_and_human_readable(
    client: httpx.AsyncClient, roles: Roles
) -> None:
    sku = await new_sku(client, roles.admin)
    numbers = []
    for _ in range(3):
        cart = await new_cart(client, lines={sku: 1})
        numbers.append((await check_out(client, cart)).json()["number"])

    assert len(set(numbers)) == 3
    assert all(n.startswith("CC-") and len(n) >= 9 for n in numbers)


async def test_checkout_without_an_idempotency_key_is_400_idempotency_key_missing(
    client: httpx.AsyncClient, roles: Roles, conn: Connection
) -> None:
    sku = await new_sku(client, roles.admin)
    cart = await new_cart(client, lines={sku: 1})

    response = await client.post(
        f"{cart.path}/checkout", json=checkout_body(), headers=cart.headers
    )

    assert_problem(response, 400, "idempotency_key_missing")
    assert await orders_of(conn, uuid.UUID(cart.id)) == 0


async def test_the_same_key_and_body_answer_the_same_order(
    client: httpx.AsyncClient, roles: Roles, conn: Connection
) -> None:
    sku = await new_sku(client, roles.admin, stock=5)
    cart = await new_cart(client, lines={sku: 1})
    key = new_key()

    first = await check_out(client, cart, key=key)
    again = await check_out(client, cart, key=key)

    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert await orders_of(conn, uuid.UUID(cart.id)) == 1
    assert await charges_of(conn, uuid.UUID(cart.id)) == (1, 0, 0)


async def test_the_same_key_with_another_body_is_422_idempotency_key_reused(
    client: httpx.AsyncClient, roles: Roles
) -> None:
    sku = await new_sku(client, roles.admin)
    cart = await new_cart(client, lines={sku: 1})
    key = new_key()
    assert (await check_out(client, cart, key=key)).status_code == 201

    response = await check_out(client, cart, key=key, email="someone.else@example.com")

    assert_problem(response, 422, "idempotency_key_reused")


async def test_an_error_answer_is_replayed_for_the_same_key_and_body(
    client: httpx.AsyncClient, roles: Roles
) -> None:
    sku = await new_sku(client, roles.admin)
    cart = await new_cart(client, lines={sku: 1})
    key = new_key()

    first = await check_out(client, cart, key=key, card="tok_chargeDeclined")
    again = await check_out(client, cart, key=key, card="tok_chargeDeclined")

    assert_problem(first, 402, "payment_declined")
    assert_problem(again, 402, "payment_declined")


@pytest.mark.parametrize("card", ["tok_chargeDeclined", "tok_insufficientFunds"])
async def test_a_declined_card_is_402_payment_declined_and_changes_nothing(
    client: httpx.AsyncClient, roles: Roles, conn: Connection, card: str
) -> None:
    await _assert_failed_payment_changes_nothing(client, roles, conn, card, 402, "payment_declined")


async def test_a_processing_error_is_502_payment_unavailable_and_changes_nothing(
    client: httpx.AsyncClient, roles: Roles, conn: Connection
) -> None:
    await _assert_failed_payment_changes_nothing(
        client, roles, conn, "tok_processingError", 502, "payment_unavailable"
    )


async def _assert_failed_payment_changes_nothing(
    client: httpx.AsyncClient,
    roles: Roles,
    conn: Connection,
    card: str,
    status: int,
    code: str,
) -> None:
    coupon = await create_coupon(client, roles.admin, percent_off="10", max_redemptions=1)
    product = await create_product(client, roles.admin, stock=3)
    sku = product["variants"][0]["sku"]
    cart = await new_cart(client, lines={sku: 2}, coupon=coupon["code"])
    before = (await client.get(cart.path, headers=cart.headers)).json()

    response = await check_out(client, cart, card=card)

    assert_problem(response, status, code)
    assert await available(client, sku, product["id"]) == 3
    assert await stock_of(conn, sku) == (3, 0)
    after = (await client.get(cart.path, headers=cart.headers)).json()
    assert after["items"] == before["items"]
    assert after["coupon"] == before["coupon"]
    listed = (await client.get(f"{API}/admin/coupons", headers=roles.admin.headers)).json()
    assert next(c for c in listed["items"] if c["code"] == coupon["code"])["redemptions"] == 0
    assert await orders_of(conn, uuid.UUID(cart.id)) == 0
    # Nothing charged: the provider refused it, nothing was captured or voided.
    assert await charges_of(conn, uuid.UUID(cart.id)) == (0, 0, 1)
    # Everything is still there for a good card, with a new key.
    retry = await check_out(client, cart, card="tok_visa")
    assert retry.status_code == 201, retry.text
    assert retry.json()["discount"] == usd("2.00")


async def test_a_gateway_timeout_is_504_nothing_reserved_and_the_lost_charge_is_reversed(
    client: httpx.AsyncClient, roles: Roles, conn: Connection
) -> None:
    product = await create_product(client, roles.admin, stock=3)
    sku = product["variants"][0]["sku"]
    cart = await new_cart(client, lines={sku: 1})
    key = new_key()

    response = await check_out(client, cart, card="tok_timeout", key=key)

    assert_problem(response, 504, "payment_timeout")
    assert await available(client, sku, product["id"]) == 3
    assert await stock_of(conn, sku) == (3, 0)
    assert (await client.get(cart.path, headers=cart.headers)).json()["items"][0]["sku"] == sku
    # The sandbox charged the card and lost the answer: nothing stays captured.
    assert await charges_of(conn, uuid.UUID(cart.id)) == (0, 1, 0)
    again = await check_out(client, cart, card="tok_visa", key=key)
    assert again.status_code == 201, again.text
    assert await charges_of(conn, uuid.UUID(cart.id)) == (1, 1, 0)


async def test_an_empty_cart_is_409_cart_empty(client: httpx.AsyncClient) -> None:
    cart = await new_cart(client)

    assert_problem(await check_out(client, cart), 409, "cart_empty")


async def test_a_cart_checked_out_with_another_key_is_409_cart_closed(
    client: httpx.AsyncClient, roles: Roles, conn: Connection
) -> None:
    sku = await new_sku(client, roles.admin)
    cart = await new_cart(client, lines={sku: 1})
    assert (await check_out(client, cart)).status_code == 201

    assert_problem(await check_out(client, cart), 409, "cart_closed")
    assert await orders_of(conn, uuid.UUID(cart.id)) == 1


async def test_not_enough_stock_is_409_out_of_stock(
    client: httpx.AsyncClient, roles: Roles, conn: Connection
) -> None:
    product = await create_product(client, roles.admin, stock=1)
    sku = product["variants"][0]["sku"]
    first = await new_cart(client, lines={sku: 1})
    second = await new_cart(client, lines={sku: 1})
    assert (await check_out(client, first)).status_code == 201

    assert_problem(await check_out(client, second), 409, "out_of_stock")
    assert await available(client, sku, product["id"]) == 0
    assert await charges_of(conn, uuid.UUID(second.id)) == (0, 0, 0)


async def test_a_coupon_used_up_by_another_checkout_is_409_coupon_unavailable(
    client: httpx.AsyncClient, roles: Roles, conn: Connection
) -> None:
    coupon = await create_coupon(client, roles.admin, percent_off="10", max_redemptions=1)
    product = await create_product(client, roles.admin, stock=5)
    sku = product["variants"][0]["sku"]
    first = await new_cart(client, lines={sku: 1}, coupon=coupon["code"])
    second = await new_cart(client, lines={sku: 1}, coupon=coupon["code"])
    assert (await check_out(client, first)).status_code == 201

    assert_problem(await check_out(client, second), 409, "coupon_unavailable")
    assert await available(client, sku, product["id"]) == 4
    assert await charges_of(conn, uuid.UUID(second.id)) == (0, 0, 0)


async def test_a_guest_checkout_needs_an_email(client: httpx.AsyncClient, roles: Roles) -> None:
    sku = await new_sku(client, roles.admin)
    cart = await new_cart(client, lines={sku: 1})

    assert_problem(await check_out(client, cart, email=None), 422)


async def test_the_address_is_validated(client: httpx.AsyncClient, roles: Roles) -> None:
    sku = await new_sku(client, roles.admin)
    cart = await new_cart(client, lines={sku: 1})
    response = await client.post(
        f"{cart.path}/checkout",
        json={**checkout_body(), "shipping_address": {"name": "A", "line1": "B"}},
        headers=cart.with_key(new_key()),
    )

    assert_problem(response, 422, "validation_failed")


async def test_shipping_method_and_country_decide_shipping_and_tax(
    client: httpx.AsyncClient, roles: Roles
) -> None:
    sku = await new_sku(client, roles.admin, price="10.00")
    cart = await new_cart(client, lines={sku: 1})
    body = checkout_body(shipping_method="express")
    body["shipping_address"] = {**body["shipping_address"], "country": "CA"}

    response = await client.post(
        f"{cart.path}/checkout", json=body, headers=cart.with_key(new_key())
    )

    # 10.00 + express 15.00 = 25.00; CA 13 % = 3.25.
    assert response.status_code == 201, response.text
    order = response.json()
    assert order["shipping"] == usd("15.00")
    assert order["tax"] == usd("3.25")
    assert order["total"] == usd("28.25")


# ---------------------------------------------------------------- concurrent, committed


async def test_concurrent_checkouts_for_k_units_make_exactly_k_orders_and_the_rest_out_of_stock(
    committed_client: httpx.AsyncClient, committed_db: Database, settings: Settings
) -> None:
    admin = await admin_headers(committed_db, settings)
    sku = await committed_product(committed_client, admin, stock=3)
    carts = [await guest_cart_with(committed_client, sku) for _ in range(8)]

    responses = await gather_responses(
        *(lambda c=cart: check_out(committed_client, c) for cart in carts)
    )

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] * 3 + [409] * 5, [r.text for r in responses]
    for response in responses:
        if response.status_code == 409:
            assert_problem(response, 409, "out_of_stock")
    async with committed_db.acquire() as conn:
        assert await stock_of(conn, sku) == (0, 0)


class HeldGateway(SandboxGateway):
    """The sandbox, but each charge waits until the test lets it go."""

    def __init__(self, database: Database) -> None:
        super().__init__(database)
        self.charging = asyncio.Event()
        self.release = asyncio.Event()

    async def charge(self, *, idempotency_key: str, amount: Money, token: str) -> PaymentResult:
        self.charging.set()
        await self.release.wait()
        return await super().charge(idempotency_key=idempotency_key, amount=amount, token=token)


@pytest.fixture
async def held(
    settings: Settings, committed_db: Database, gateway_db: Database
) -> AsyncIterator[tuple[httpx.AsyncClient, HeldGateway]]:
    gateway = HeldGateway(gateway_db)
    app = create_app(settings, database=committed_db)
    app.state.payments = gateway
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client, gateway


async def test_a_key_still_in_flight_is_409_idempotency_key_in_flight_then_replays_the_order(
    held: tuple[httpx.AsyncClient, HeldGateway],
    committed_db: Database,
    settings: Settings,
) -> None:
    client, gateway = held
    admin = await admin_headers(committed_db, settings)
    sku = await committed_product(client, admin, stock=5)
    cart = await guest_cart_with(client, sku)
    key = new_key()

    first = asyncio.create_task(check_out(client, cart, key=key))
    await asyncio.wait_for(gateway.charging.wait(), timeout=10)
    in_flight = await check_out(client, cart, key=key)
    gateway.release.set()
    done = await asyncio.wait_for(first, timeout=10)
    replay = await check_out(client, cart, key=key)

    assert_problem(in_flight, 409, "idempotency_key_in_flight")
    assert int(in_flight.headers["retry-after"]) >= 1
    assert done.status_code == 201, done.text
    assert replay.status_code == 201
    assert replay.json() == done.json()
    async with committed_db.acquire() as conn:
        assert await orders_of(conn, uuid.UUID(cart.id)) == 1


async def test_an_adjustment_below_the_units_a_checkout_holds_is_409_insufficient_stock(
    held: tuple[httpx.AsyncClient, HeldGateway],
    committed_db: Database,
    settings: Settings,
) -> None:
    client, gateway = held
    admin = await admin_headers(committed_db, settings)
    sku = await committed_product(client, admin, stock=2)
    cart = await guest_cart_with(client, sku)
    paying = asyncio.create_task(check_out(client, cart))
    await asyncio.wait_for(gateway.charging.wait(), timeout=10)

    below = await client.post(
        f"{API}/admin/inventory/{sku}/adjustments",
        json={"delta": -2, "reason": "shrinkage"},
        headers=admin,
    )
    allowed = await client.post(
        f"{API}/admin/inventory/{sku}/adjustments",
        json={"delta": -1, "reason": "shrinkage"},
        headers=admin,
    )
    gateway.release.set()
    paid = await asyncio.wait_for(paying, timeout=10)

    assert_problem(below, 409, "insufficient_stock")
    assert allowed.status_code == 200, allowed.text
    assert allowed.json() == {"sku": sku, "on_hand": 1, "reserved": 1, "available": 0}
    assert paid.status_code == 201, paid.text
    async with committed_db.acquire() as conn:
        assert await stock_of(conn, sku) == (0, 0)


async def test_a_single_use_coupon_raced_by_several_checkouts_makes_one_order(
    committed_client: httpx.AsyncClient, committed_db: Database, settings: Settings
) -> None:
    admin = await admin_headers(committed_db, settings)
    code = f"RACE{uuid.uuid4().hex[:8]}".upper()
    created = await committed_client.post(
        f"{API}/admin/coupons",
        json={"code": code, "percent_off": "10", "max_redemptions": 1},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    sku = await committed_product(committed_client, admin, stock=10)
    carts = [await guest_cart_with(committed_client, sku) for _ in range(5)]
    for cart in carts:
        applied = await committed_client.put(
            f"{cart.path}/coupon", json={"code": code}, headers=cart.headers
        )
        assert applied.status_code == 200, applied.text

    responses = await gather_responses(
        *(lambda c=cart: check_out(committed_client, c) for cart in carts)
    )

    assert sorted(r.status_code for r in responses) == [201] + [409] * 4
    for response in responses:
        if response.status_code == 409:
            assert_problem(response, 409, "coupon_unavailable")
    listed = (await committed_client.get(f"{API}/admin/coupons", headers=admin)).json()
    assert next(c for c in listed["items"] if c["code"] == code)["redemptions"] == 1
    async with committed_db.acquire() as conn:
        assert await stock_of(conn, sku) == (9, 0)
        for cart, response in zip(carts, responses, strict=True):
            expected = (1, 0, 0) if response.status_code == 201 else (0, 0, 0)
            assert await charges_of(conn, uuid.UUID(cart.id)) == expected
