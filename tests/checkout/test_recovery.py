"""Crashes and late answers: what the sweeper and the void jobs heal.

A process killed between "card charged" and "order written" is simulated by a
gateway that charges the card and then raises an exception nothing in the app
catches (like a kill, no clean-up code runs). Time passing is simulated by
moving a reservation's expiry (and its key's lease) into the past.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from uuid import UUID

import httpx
import pytest

from congocart.adapters.sandbox_gateway import SandboxGateway
from congocart.checkout import service
from congocart.checkout.domain import RESERVATION_TTL
from congocart.config import Settings
from congocart.core import jobs
from congocart.core.db import Connection, Database
from congocart.core.money import Money
from congocart.main import create_app
from congocart.payments.domain import PaymentResult
from tests.checkout.conftest import (
    CartRef,
    KilledAfterCharge,
    ProcessKilled,
    cart_state,
    charges_of,
    checkout_body,
    gateway_installed,
    new_cart,
    new_coupon,
    new_key,
    new_sku,
    orders_of,
    redemptions_of,
    run_due_jobs,
    stock_of,
)


def client_for(app: object) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


@pytest.fixture
async def crashing_client(
    settings: Settings, committed_db: Database, gateway_db: Database
) -> AsyncIterator[httpx.AsyncClient]:
    """An app whose process 'dies' right after the card is charged."""
    app = create_app(settings, database=committed_db)
    app.state.payments = KilledAfterCharge(gateway_db)
    async with client_for(app) as client:
        yield client


async def expire_reservations_of(conn: Connection, cart_id: UUID) -> None:
    """Let the cart's reservation (and the key that made it) run out, as minutes would."""
    await conn.execute(
        """
        UPDATE idempotency_keys SET locked_until = now() - interval '1 second'
        WHERE status = 'in_flight' AND key IN (
            SELECT idempotency_key FROM checkout_attempts WHERE cart_id = $1)
        """,
        cart_id,
    )
    await conn.execute(
        """
        UPDATE checkout_attempts SET expires_at = now() - interval '1 second'
        WHERE cart_id = $1 AND status = 'reserved'
        """,
        cart_id,
    )


async def test_a_checkout_killed_after_the_charge_is_healed_by_the_sweeper(
    crashing_client: httpx.AsyncClient,
    committed_client: httpx.AsyncClient,
    committed_db: Database,
    committed_gateway: SandboxGateway,
) -> None:
    async with committed_db.transaction() as tx:
        sku = await new_sku(tx, stock=5)
        code = await new_coupon(tx, max_redemptions=1)
        cart = await new_cart(tx, lines={sku: 2}, coupon=code)

    with pytest.raises(ProcessKilled):
        await crashing_client.post(
            cart.checkout_path, json=checkout_body(), headers=cart.checkout_headers(new_key())
        )

    async with committed_db.acquire() as conn:
        # What the crash left behind: stock and coupon held, the card charged, no order.
        assert await stock_of(conn, sku) == (5, 2)
        assert await redemptions_of(conn, code) == (1, 0)
        assert await charges_of(conn, cart.id) == (1, 0, 0)
        assert await orders_of(conn, cart.id) == 0

    # While the reservation lives, the sweeper leaves it to its checkout.
    async with committed_db.transaction() as tx:
        assert await service.release_expired_reservations(tx, now=datetime.now(UTC)) == []
    later = datetime.now(UTC) + RESERVATION_TTL + timedelta(seconds=1)
    async with committed_db.transaction() as tx:
        released = await service.release_expired_reservations(tx, now=later)
    assert [attempt.cart_id for attempt in released] == [cart.id]
    async with gateway_installed(committed_gateway):
        assert await run_due_jobs(committed_db, service.VOID_PAYMENT_JOB) == 1

    async with committed_db.acquire() as conn:
        assert await stock_of(conn, sku) == (5, 0)
        assert await redemptions_of(conn, code) == (0, 0)
        assert await charges_of(conn, cart.id) == (0, 1, 0)
        assert await orders_of(conn, cart.id) == 0
        assert (await cart_state(conn, cart.id))[0] == "open"
    # A second sweep finds nothing more to do.
    async with committed_db.transaction() as tx:
        assert await service.release_expired_reservations(tx, now=later) == []

    # The cart, its stock and its coupon are whole again: it checks out normally.
    paid = await committed_client.post(
        cart.checkout_path, json=checkout_body(), headers=cart.checkout_headers(new_key())
    )
    assert paid.status_code == 201, paid.text
    async with committed_db.acquire() as conn:
        assert await stock_of(conn, sku) == (3, 0)
        assert await redemptions_of(conn, code) == (1, 1)
        assert await charges_of(conn, cart.id) == (1, 1, 0)


async def test_the_periodic_sweeper_job_runs_every_30_seconds_and_releases_what_expired(
    crashing_client: httpx.AsyncClient,
    committed_db: Database,
    committed_gateway: SandboxGateway,
) -> None:
    async with committed_db.transaction() as tx:
        sku = await new_sku(tx, stock=3)
        cart = await new_cart(tx, lines={sku: 3})
    with pytest.raises(ProcessKilled):
        await crashing_client.post(
            cart.checkout_path, json=checkout_body(), headers=cart.checkout_headers(new_key())
        )
    async with committed_db.transaction() as tx:
        await expire_reservations_of(tx, cart.id)
        await jobs.enqueue(tx, kind="release_expired_checkouts", payload={})

    assert jobs.registry.schedules["release_expired_checkouts"].every == timedelta(seconds=30)
    assert await run_due_jobs(committed_db, "release_expired_checkouts") == 1
    async with gateway_installed(committed_gateway):
        assert await run_due_jobs(committed_db, service.VOID_PAYMENT_JOB) == 1

    async with committed_db.acquire() as conn:
        assert await stock_of(conn, sku) == (3, 0)
        assert await charges_of(conn, cart.id) == (0, 1, 0)


async def test_after_a_crash_the_same_key_is_in_flight_until_it_expires_then_taken_over(
    crashing_client: httpx.AsyncClient,
    committed_client: httpx.AsyncClient,
    committed_db: Database,
    committed_gateway: SandboxGateway,
) -> None:
    async with committed_db.transaction() as tx:
        sku = await new_sku(tx, stock=5)
        cart = await new_cart(tx, lines={sku: 1})
    key = new_key()
    with pytest.raises(ProcessKilled):
        await crashing_client.post(
            cart.checkout_path, json=checkout_body(), headers=cart.checkout_headers(key)
        )

    busy = await committed_client.post(
        cart.checkout_path, json=checkout_body(), headers=cart.checkout_headers(key)
    )
    other_key = await committed_client.post(
        cart.checkout_path, json=checkout_body(), headers=cart.checkout_headers(new_key())
    )
    assert (busy.status_code, busy.json()["code"]) == (409, "idempotency_key_in_flight")
    assert busy.headers["Retry-After"] == "1"
    assert (other_key.status_code, other_key.json()["code"]) == (409, "checkout_in_progress")

    async with committed_db.acquire() as conn:
        await expire_reservations_of(conn, cart.id)
    # No sweep has run yet: the retry itself releases the dead reservation.
    retried = await committed_client.post(
        cart.checkout_path, json=checkout_body(), headers=cart.checkout_headers(key)
    )
    assert retried.status_code == 201, retried.text
    async with gateway_installed(committed_gateway):
        assert await run_due_jobs(committed_db, service.VOID_PAYMENT_JOB) == 1

    async with committed_db.acquire() as conn:
        assert await orders_of(conn, cart.id) == 1
        # The crashed attempt's charge voided, the order's captured.
        assert await charges_of(conn, cart.id) == (1, 1, 0)
        assert await stock_of(conn, sku) == (4, 0)


Meanwhile = Callable[[Connection, str], Awaitable[None]]


class ShopChangedWhileCharging(SandboxGateway):
    """Charges, then, before answering, changes the shop in a transaction of its
    own (`meanwhile(tx, payment_key)`): what happens while a card is charged."""

    def __init__(self, database: Database, *, shop: Database, meanwhile: Meanwhile) -> None:
        super().__init__(database)
        self._shop = shop
        self._meanwhile = meanwhile

    async def charge(self, *, idempotency_key: str, amount: Money, token: str) -> PaymentResult:
        result = await super().charge(idempotency_key=idempotency_key, amount=amount, token=token)
        async with self._shop.transaction() as tx:
            await self._meanwhile(tx, idempotency_key)
        return result


async def check_out_while_charging(
    settings: Settings,
    committed_db: Database,
    gateway_db: Database,
    cart: CartRef,
    meanwhile: Meanwhile,
    *,
    key: str | None = None,
) -> httpx.Response:
    """One checkout of `cart` through an app whose gateway runs `meanwhile` while charging."""
    app = create_app(settings, database=committed_db)
    app.state.payments = ShopChangedWhileCharging(
        gateway_db, shop=committed_db, meanwhile=meanwhile
    )
    async with client_for(app) as client:
        return await client.post(
            cart.checkout_path,
            json=checkout_body(),
            headers=cart.checkout_headers(key or new_key()),
        )


async def swept(tx: Connection, payment_key: str) -> None:
    """The provider is so slow that the reservation expires and is swept."""
    await tx.execute(
        "UPDATE checkout_attempts SET expires_at = now() - interval '1 second'"
        " WHERE payment_key = $1",
        payment_key,
    )
    assert await service.release_expired_reservations(tx, now=datetime.now(UTC))


# Without a coupon the confirmation is one statement that aborts itself; with
# one it runs in a transaction with the redemption.
@pytest.mark.parametrize("with_coupon", [False, True], ids=["one statement", "coupon"])
async def test_a_payment_answered_after_the_reservation_was_swept_is_voided_and_504(
    settings: Settings,
    committed_client: httpx.AsyncClient,
    committed_db: Database,
    gateway_db: Database,
    with_coupon: bool,
) -> None:
    async with committed_db.transaction() as tx:
        sku = await new_sku(tx, stock=2)
        code = await new_coupon(tx, max_redemptions=1)
        cart = await new_cart(tx, lines={sku: 1}, coupon=code if with_coupon else None)
    key = new_key()
    late = await check_out_while_charging(settings, committed_db, gateway_db, cart, swept, key=key)

    assert (late.status_code, late.json()["code"]) == (504, "payment_timeout")
    async with committed_db.acquire() as conn:
        assert await orders_of(conn, cart.id) == 0
        assert await charges_of(conn, cart.id) == (0, 1, 0)
        assert await stock_of(conn, sku) == (2, 0)
        assert await redemptions_of(conn, code) == (0, 0)
        assert (await cart_state(conn, cart.id))[0] == "open"
    # The key was given back: the same request can simply be sent again.
    again = await committed_client.post(
        cart.checkout_path, json=checkout_body(), headers=cart.checkout_headers(key)
    )
    assert again.status_code == 201, again.text


async def test_neither_the_sweeper_nor_a_void_job_touches_a_confirmed_checkout(
    committed_client: httpx.AsyncClient,
    committed_db: Database,
    committed_gateway: SandboxGateway,
) -> None:
    async with committed_db.transaction() as tx:
        sku = await new_sku(tx, stock=2)
        cart = await new_cart(tx, lines={sku: 1})
    paid = await committed_client.post(
        cart.checkout_path, json=checkout_body(), headers=cart.checkout_headers(new_key())
    )
    assert paid.status_code == 201
    async with committed_db.transaction() as tx:
        await tx.execute(
            "UPDATE checkout_attempts SET expires_at = now() - interval '1 h' WHERE cart_id = $1",
            cart.id,
        )
        assert await service.release_expired_reservations(tx, now=datetime.now(UTC)) == []
        payment_key = await tx.fetchval(
            "SELECT payment_key FROM checkout_attempts WHERE cart_id = $1", cart.id
        )
        await jobs.enqueue(tx, kind=service.VOID_PAYMENT_JOB, payload={"payment_key": payment_key})

    async with gateway_installed(committed_gateway):
        assert await run_due_jobs(committed_db, service.VOID_PAYMENT_JOB) == 1

    async with committed_db.acquire() as conn:
        assert await charges_of(conn, cart.id) == (1, 0, 0)
        assert await stock_of(conn, sku) == (1, 0)
        assert await orders_of(conn, cart.id) == 1


async def cart_edited(tx: Connection, payment_key: str) -> None:
    """The customer changes the cart (another tab) while the card is charged."""
    await tx.execute(
        """
        UPDATE carts SET version = version + 1
        WHERE id = (SELECT cart_id FROM checkout_attempts WHERE payment_key = $1)
        """,
        payment_key,
    )


async def test_a_cart_changed_while_its_payment_was_taken_becomes_no_order_and_the_charge_is_voided(
    settings: Settings, committed_db: Database, gateway_db: Database
) -> None:
    async with committed_db.transaction() as tx:
        sku = await new_sku(tx, stock=3)
        cart = await new_cart(tx, lines={sku: 2})
    response = await check_out_while_charging(settings, committed_db, gateway_db, cart, cart_edited)

    assert (response.status_code, response.json()["code"]) == (412, "version_mismatch")
    async with committed_db.acquire() as conn:
        assert await orders_of(conn, cart.id) == 0
        assert await charges_of(conn, cart.id) == (0, 1, 0)
        assert await stock_of(conn, sku) == (3, 0)
        assert (await cart_state(conn, cart.id))[0] == "open"


async def test_a_confirmation_that_cannot_sell_every_line_writes_nothing(
    settings: Settings, committed_db: Database, gateway_db: Database
) -> None:
    async with committed_db.transaction() as tx:
        sold, short = await new_sku(tx, stock=5), await new_sku(tx, stock=5)
        cart = await new_cart(tx, lines={sold: 1, short: 1})

    async def reservation_taken(tx: Connection, payment_key: str) -> None:
        # A bookkeeping bug elsewhere takes one SKU's reservation away behind
        # checkout's back: the confirmation can sell only part of the cart.
        await tx.execute("UPDATE variants SET reserved = 0 WHERE sku = $1", short)

    response = await check_out_while_charging(
        settings, committed_db, gateway_db, cart, reservation_taken
    )

    assert (response.status_code, response.json()["code"]) == (409, "stock_not_reserved")
    async with committed_db.acquire() as conn:
        # One statement wrote the cart, the attempt, the order and the stock: the
        # short line aborted all of it, the line that could be sold included.
        assert await orders_of(conn, cart.id) == 0
        assert (await cart_state(conn, cart.id))[0] == "open"
        assert (await stock_of(conn, sold)).on_hand == 5
        status = await conn.fetchval(
            "SELECT status FROM checkout_attempts WHERE cart_id = $1", cart.id
        )
        assert status == "reserved"  # never confirmed; the sweeper's to settle
