"""POST /api/v1/carts/{cart_id}/checkout through the app, one request at a time."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from congocart.core.db import Connection
from tests.checkout.conftest import (
    ADDRESS,
    cart_state,
    charges_of,
    checkout_body,
    logged_statements,
    new_cart,
    new_coupon,
    new_key,
    new_sku,
    orders_of,
    redemptions_of,
    stock_of,
)
from tests.conftest import MakeUser

# Checkout's statements for any number of lines (no coupon), none of them in a
# transaction: the idempotency claim with the cart read, the attempt with its
# stock reservation, the sandbox's charge, and the confirmation (the cart
# closed, the attempt confirmed, the order written with its webhook event,
# the stock sold and the answer stored).
STATEMENT_BUDGET = 4


async def test_a_guest_checkout_creates_a_paid_order_takes_the_stock_and_closes_the_cart(
    client: httpx.AsyncClient, conn: Connection
) -> None:
    sku = await new_sku(conn, price="12.50", stock=5)
    cart = await new_cart(conn, lines={sku: 2})

    response = await client.post(
        cart.checkout_path,
        json=checkout_body("tok_visa", email="Ann@Example.com"),
        headers=cart.checkout_headers(new_key()),
    )

    assert response.status_code == 201, response.text
    order = response.json()
    assert order["status"] == "paid"
    assert order["email"] == "ann@example.com"
    assert order["number"].startswith("CC-")
    assert [(i["sku"], i["quantity"], i["unit_price"]) for i in order["items"]] == [
        (sku, 2, {"amount": "12.50", "currency": "USD"})
    ]
    assert order["subtotal"] == {"amount": "25.00", "currency": "USD"}
    # Standard shipping (5.00 under 50.00) and US tax 7.25% of 30.00.
    assert order["shipping"] == {"amount": "5.00", "currency": "USD"}
    assert order["tax"] == {"amount": "2.18", "currency": "USD"}
    assert order["total"] == {"amount": "32.18", "currency": "USD"}
    assert order["payment"] == {"status": "captured", "last4": "4242"}
    assert order["shipping_address"] == {
        "name": "Ada Lovelace",
        "line1": "12 Analytical Row",
        "city": "Springfield",
        "postal_code": "12345",
        "country": "US",
    }
    assert await stock_of(conn, sku) == (3, 0)
    assert (await cart_state(conn, cart.id))[0] == "checked_out"
    assert await charges_of(conn, cart.id) == (1, 0, 0)


async def test_the_same_key_and_body_replays_the_order_without_charging_again(
    client: httpx.AsyncClient, conn: Connection
) -> None:
    sku = await new_sku(conn, stock=5)
    cart = await new_cart(conn, lines={sku: 1})
    key = new_key()

    first = await client.post(
        cart.checkout_path, json=checkout_body(), headers=cart.checkout_headers(key)
    )
    again = await client.post(
        cart.checkout_path, json=checkout_body(), headers=cart.checkout_headers(key)
    )

    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert await orders_of(conn, cart.id) == 1
    assert await charges_of(conn, cart.id) == (1, 0, 0)
    assert await stock_of(conn, sku) == (4, 0)


async def test_the_same_key_with_another_body_is_422_idempotency_key_reused(
    client: httpx.AsyncClient, conn: Connection
) -> None:
    cart = await new_cart(conn, lines={await new_sku(conn): 1})
    key = new_key()
    first = await client.post(
        cart.checkout_path, json=checkout_body(), headers=cart.checkout_headers(key)
    )
    assert first.status_code == 201

    other = await client.post(
        cart.checkout_path,
        json=checkout_body(email="someone.else@example.com"),
        headers=cart.checkout_headers(key),
    )

    assert other.status_code == 422
    assert other.json()["code"] == "idempotency_key_reused"
    assert await orders_of(conn, cart.id) == 1


async def test_key_order_and_whitespace_in_the_body_do_not_make_another_request(
    client: httpx.AsyncClient, conn: Connection
) -> None:
    cart = await new_cart(conn, lines={await new_sku(conn): 1})
    key = new_key()
    first = await client.post(
        cart.checkout_path, json=checkout_body(), headers=cart.checkout_headers(key)
    )
    address = dict(reversed(list(ADDRESS.items())))
    reordered = '{"payment": {"token": "tok_visa"},  "email": "buyer@example.com",\n'
    reordered += f' "shipping_address": {json.dumps(address, indent=2)}}}'

    again = await client.post(
        cart.checkout_path,
        content=reordered,
        headers={**cart.checkout_headers(key), "Content-Type": "application/json"},
    )

    assert again.status_code == 201, again.text
    assert again.json()["id"] == first.json()["id"]


@pytest.mark.parametrize(
    ("key", "code"),
    [
        (None, "idempotency_key_missing"),
        ("", "idempotency_key_invalid"),
        ("   ", "idempotency_key_invalid"),
        ("k" * 256, "idempotency_key_invalid"),
    ],
)
async def test_a_missing_or_malformed_idempotency_key_is_400_and_changes_nothing(
    client: httpx.AsyncClient, conn: Connection, key: str | None, code: str
) -> None:
    sku = await new_sku(conn, stock=5)
    cart = await new_cart(conn, lines={sku: 1})

    response = await client.post(
        cart.checkout_path, json=checkout_body(), headers=cart.checkout_headers(key)
    )

    assert response.status_code == 400
    assert response.json()["code"] == code
    assert await stock_of(conn, sku) == (5, 0)
    assert (await cart_state(conn, cart.id))[0] == "open"


async def test_a_key_of_255_printable_characters_is_accepted(
    client: httpx.AsyncClient, conn: Connection
) -> None:
    cart = await new_cart(conn, lines={await new_sku(conn): 1})
    key = ("~ aZ09!" * 40)[:254] + "x"

    response = await client.post(
        cart.checkout_path, json=checkout_body(), headers=cart.checkout_headers(key)
    )

    assert response.status_code == 201, response.text


@pytest.mark.parametrize("card", ["tok_chargeDeclined", "tok_insufficientFunds"])
async def test_a_declined_payment_is_402_and_leaves_stock_cart_and_coupon_as_they_were(
    client: httpx.AsyncClient, conn: Connection, card: str
) -> None:
    sku = await new_sku(conn, price="20.00", stock=3)
    code = await new_coupon(conn, percent_off="10", max_redemptions=1)
    cart = await new_cart(conn, lines={sku: 2}, coupon=code)
    before = await cart_state(conn, cart.id)
    key = new_key()

    declined = await client.post(
        cart.checkout_path, json=checkout_body(card), headers=cart.checkout_headers(key)
    )

    assert declined.status_code == 402
    assert declined.json()["code"] == "payment_declined"
    assert await stock_of(conn, sku) == (3, 0)
    assert await redemptions_of(conn, code) == (0, 0)
    assert await cart_state(conn, cart.id) == before
    assert await orders_of(conn, cart.id) == 0
    assert await charges_of(conn, cart.id) == (0, 0, 1)

    # The same key keeps its answer; a new attempt with a good card goes through.
    replayed = await client.post(
        cart.checkout_path, json=checkout_body(card), headers=cart.checkout_headers(key)
    )
    assert replayed.status_code == 402
    assert replayed.json()["code"] == "payment_declined"
    assert replayed.headers["Idempotent-Replayed"] == "true"
    assert replayed.json()["request_id"] == replayed.headers["X-Request-ID"]

    paid = await client.post(
        cart.checkout_path, json=checkout_body("tok_visa"), headers=cart.checkout_headers(new_key())
    )
    assert paid.status_code == 201, paid.text
    assert paid.json()["discount"] == {"amount": "4.00", "currency": "USD"}
    assert await stock_of(conn, sku) == (1, 0)
    assert await redemptions_of(conn, code) == (1, 1)
    assert (await cart_state(conn, cart.id))[0] == "checked_out"


async def test_a_processing_error_is_502_charges_and_reserves_nothing_and_frees_the_key(
    client: httpx.AsyncClient, conn: Connection
) -> None:
    sku = await new_sku(conn, stock=3)
    code = await new_coupon(conn, max_redemptions=1)
    cart = await new_cart(conn, lines={sku: 1}, coupon=code)
    before = await cart_state(conn, cart.id)
    key = new_key()

    failed = await client.post(
        cart.checkout_path,
        json=checkout_body("tok_processingError"),
        headers=cart.checkout_headers(key),
    )

    assert failed.status_code == 502
    assert failed.json()["code"] == "payment_unavailable"
    assert await stock_of(conn, sku) == (3, 0)
    assert await redemptions_of(conn, code) == (0, 0)
    assert await cart_state(conn, cart.id) == before
    assert await charges_of(conn, cart.id) == (0, 0, 1)

    # Not stored: the same key is tried again, not replayed.
    retried = await client.post(
        cart.checkout_path,
        json=checkout_body("tok_processingError"),
        headers=cart.checkout_headers(key),
    )
    assert retried.status_code == 502
    assert "Idempotent-Replayed" not in retried.headers
    assert await charges_of(conn, cart.id) == (0, 0, 2)


async def test_a_payment_timeout_is_504_releases_the_stock_and_voids_the_lost_charge(
    client: httpx.AsyncClient, conn: Connection
) -> None:
    sku = await new_sku(conn, stock=3)
    cart = await new_cart(conn, lines={sku: 1})
    key = new_key()

    timed_out = await client.post(
        cart.checkout_path, json=checkout_body("tok_timeout"), headers=cart.checkout_headers(key)
    )

    assert timed_out.status_code == 504
    assert timed_out.json()["code"] == "payment_timeout"
    assert await stock_of(conn, sku) == (3, 0)
    assert (await cart_state(conn, cart.id))[0] == "open"
    # The sandbox charged the card and lost the answer: it is voided at once, and a
    # job is queued to void it again once a late answer would have settled.
    assert await charges_of(conn, cart.id) == (0, 1, 0)
    queued = await conn.fetchval(
        "SELECT count(*) FROM jobs WHERE kind = 'void_abandoned_payment' AND status = 'pending'"
        " AND run_at > now()"
    )
    assert queued == 1

    retried = await client.post(
        cart.checkout_path, json=checkout_body("tok_visa"), headers=cart.checkout_headers(key)
    )
    assert retried.status_code == 201, retried.text
    assert await charges_of(conn, cart.id) == (1, 1, 0)


async def test_an_empty_cart_is_409_cart_empty_and_the_key_replays_it(
    client: httpx.AsyncClient, conn: Connection
) -> None:
    cart = await new_cart(conn, lines={})
    key = new_key()

    first = await client.post(
        cart.checkout_path, json=checkout_body(), headers=cart.checkout_headers(key)
    )
    again = await client.post(
        cart.checkout_path, json=checkout_body(), headers=cart.checkout_headers(key)
    )

    assert (first.status_code, first.json()["code"]) == (409, "cart_empty")
    assert (again.status_code, again.json()["code"]) == (409, "cart_empty")
    assert again.headers["Idempotent-Replayed"] == "true"


async def test_a_cart_checked_out_with_another_key_is_409_cart_closed(
    client: httpx.AsyncClient, conn: Connection
) -> None:
    sku = await new_sku(conn, stock=5)
    cart = await new_cart(conn, lines={sku: 1})
    first = await client.post(
        cart.checkout_path, json=checkout_body(), headers=cart.checkout_headers(new_key())
    )
    assert first.status_code == 201

    second = await client.post(
        cart.checkout_path, json=checkout_body(), headers=cart.checkout_headers(new_key())
    )

    assert second.status_code == 409
    assert second.json()["code"] == "cart_closed"
    assert await orders_of(conn, cart.id) == 1
    assert await stock_of(conn, sku) == (4, 0)
    assert await charges_of(conn, cart.id) == (1, 0, 0)


async def test_out_of_stock_is_409_reserves_and_charges_nothing_and_the_key_replays_it(
    client: httpx.AsyncClient, conn: Connection
) -> None:
    plenty, scarce = await new_sku(conn, stock=10), await new_sku(conn, stock=1)
    cart = await new_cart(conn, lines={plenty: 1, scarce: 1})
    await conn.execute("UPDATE variants SET on_hand = 0 WHERE sku = $1", scarce)
    key = new_key()

    first = await client.post(
        cart.checkout_path, json=checkout_body(), headers=cart.checkout_headers(key)
    )
    await conn.execute("UPDATE variants SET on_hand = 5 WHERE sku = $1", scarce)
    again = await client.post(
        cart.checkout_path, json=checkout_body(), headers=cart.checkout_headers(key)
    )

    assert (first.status_code, first.json()["code"]) == (409, "out_of_stock")
    assert scarce in first.json()["detail"]
    assert (again.status_code, again.json()["code"]) == (409, "out_of_stock")
    assert await stock_of(conn, plenty) == (10, 0)
    assert await charges_of(conn, cart.id) == (0, 0, 0)
    assert (await cart_state(conn, cart.id))[0] == "open"


async def test_a_guest_must_give_an_email(client: httpx.AsyncClient, conn: Connection) -> None:
    cart = await new_cart(conn, lines={await new_sku(conn): 1})

    response = await client.post(
        cart.checkout_path, json=checkout_body(email=None), headers=cart.checkout_headers(new_key())
    )

    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "email", "message": "required for guest checkout"}
    ]


@pytest.mark.parametrize(
    "body",
    [
        {"shipping_address": ADDRESS, "payment": {"token": "tok_visa"}, "total": "0.01"},
        {"shipping_address": {**ADDRESS, "country": "USA"}, "payment": {"token": "tok_visa"}},
        {"shipping_address": {**ADDRESS, "city": ""}, "payment": {"token": "tok_visa"}},
        {"shipping_address": ADDRESS, "payment": {}},
        {"payment": {"token": "tok_visa"}},
    ],
)
async def test_an_invalid_body_is_422_and_changes_nothing(
    client: httpx.AsyncClient, conn: Connection, body: dict[str, Any]
) -> None:
    sku = await new_sku(conn, stock=2)
    cart = await new_cart(conn, lines={sku: 1})

    response = await client.post(
        cart.checkout_path,
        json={"email": "a@example.com", **body},
        headers=cart.checkout_headers(new_key()),
    )

    assert response.status_code == 422
    assert response.json()["code"] == "validation_failed"
    assert await stock_of(conn, sku) == (2, 0)


async def test_someone_elses_cart_is_404_and_does_not_spend_the_owners_key(
    client: httpx.AsyncClient, conn: Connection
) -> None:
    cart = await new_cart(conn, lines={await new_sku(conn): 1})
    key = new_key()

    stranger = await client.post(
        cart.checkout_path,
        json=checkout_body(),
        headers={"X-Cart-Token": "not-the-token", "Idempotency-Key": key},
    )
    owner = await client.post(
        cart.checkout_path, json=checkout_body(), headers=cart.checkout_headers(key)
    )

    assert (stranger.status_code, stranger.json()["code"]) == (404, "cart_not_found")
    assert owner.status_code == 201, owner.text


async def test_a_malformed_cart_id_is_404(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/carts/not-a-uuid/checkout",
        json=checkout_body(),
        headers={"Idempotency-Key": new_key()},
    )

    assert response.status_code == 404


async def test_a_signed_in_customers_email_defaults_to_their_account(
    client: httpx.AsyncClient, conn: Connection, make_user: MakeUser
) -> None:
    user = await make_user()
    cart = await new_cart(conn, lines={await new_sku(conn): 1}, user=user)

    response = await client.post(
        cart.checkout_path, json=checkout_body(email=None), headers=cart.checkout_headers(new_key())
    )

    assert response.status_code == 201, response.text
    assert response.json()["email"] == user.email
    owner = await conn.fetchval("SELECT user_id FROM orders WHERE cart_id = $1", cart.id)
    assert owner == user.id


async def test_a_signed_in_customers_key_is_theirs_across_carts(
    client: httpx.AsyncClient, conn: Connection, make_user: MakeUser
) -> None:
    user = await make_user()
    first = await new_cart(conn, lines={await new_sku(conn): 1}, user=user)
    second = await new_cart(conn, lines={await new_sku(conn): 1}, user=user)
    key = new_key()
    assert (
        await client.post(
            first.checkout_path, json=checkout_body(), headers=first.checkout_headers(key)
        )
    ).status_code == 201

    reused = await client.post(
        second.checkout_path, json=checkout_body(), headers=second.checkout_headers(key)
    )

    assert (reused.status_code, reused.json()["code"]) == (422, "idempotency_key_reused")
    assert (await cart_state(conn, second.id))[0] == "open"


async def test_an_order_with_nothing_to_pay_is_placed_without_charging_the_card(
    client: httpx.AsyncClient, conn: Connection
) -> None:
    # 100 % off, and standard shipping is free from 50.00: the total is zero.
    sku = await new_sku(conn, price="60.00", stock=2)
    code = await new_coupon(conn, percent_off="100")
    cart = await new_cart(conn, lines={sku: 1}, coupon=code)

    response = await client.post(
        cart.checkout_path, json=checkout_body(), headers=cart.checkout_headers(new_key())
    )

    assert response.status_code == 201, response.text
    assert response.json()["total"] == {"amount": "0.00", "currency": "USD"}
    assert await charges_of(conn, cart.id) == (0, 0, 0)
    assert await stock_of(conn, sku) == (1, 0)
    assert await redemptions_of(conn, code) == (1, 1)


async def test_a_coupon_used_up_since_it_was_applied_is_409_coupon_unavailable_and_charges_nothing(
    client: httpx.AsyncClient, conn: Connection
) -> None:
    sku = await new_sku(conn, stock=5)
    code = await new_coupon(conn, max_redemptions=1)
    winner = await new_cart(conn, lines={sku: 1}, coupon=code)
    loser = await new_cart(conn, lines={sku: 1}, coupon=code)
    paid = await client.post(
        winner.checkout_path, json=checkout_body(), headers=winner.checkout_headers(new_key())
    )
    assert paid.status_code == 201

    refused = await client.post(
        loser.checkout_path, json=checkout_body(), headers=loser.checkout_headers(new_key())
    )

    assert (refused.status_code, refused.json()["code"]) == (409, "coupon_unavailable")
    assert await charges_of(conn, loser.id) == (0, 0, 0)
    assert await stock_of(conn, sku) == (4, 0)
    assert await redemptions_of(conn, code) == (1, 1)


async def test_checkout_runs_a_bounded_number_of_statements_whatever_the_number_of_lines(
    client: httpx.AsyncClient, conn: Connection
) -> None:
    counts = []
    for lines in (1, 3, 10):
        skus = [await new_sku(conn) for _ in range(lines)]
        cart = await new_cart(conn, lines={sku: 1 for sku in skus})
        async with logged_statements(conn) as statements:
            response = await client.post(
                cart.checkout_path, json=checkout_body(), headers=cart.checkout_headers(new_key())
            )
        assert response.status_code == 201, response.text
        counts.append(len(statements))

    # Everything, the sandbox's own charge included.
    assert counts[0] == counts[1] == counts[2] == STATEMENT_BUDGET
