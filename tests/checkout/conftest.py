"""Checkout test helpers: products, carts and coupons made through their services,
an app served on a committed database for concurrency tests, and ways to look
at what a checkout left behind (stock, coupon counters, sandbox charges).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any, NamedTuple

import httpx
import pytest

from congocart.adapters.sandbox_gateway import SandboxGateway
from congocart.carts import service as carts
from congocart.carts.domain import CartOwner
from congocart.catalog import service as catalog
from congocart.catalog.domain import NewProduct, NewVariant
from congocart.config import Settings
from congocart.core import jobs
from congocart.core.db import Connection, Database
from congocart.core.money import Money
from congocart.identity.domain import Principal
from congocart.main import create_app
from congocart.payments import service as payments
from congocart.payments.domain import PaymentResult
from congocart.promotions import service as promotions
from congocart.promotions.domain import Coupon
from congocart.worker import load_task_modules
from tests.conftest import TestUser

USD = "USD"
ADDRESS = {
    "name": "Ada Lovelace",
    "line1": "12 Analytical Row",
    "city": "Springfield",
    "postal_code": "12345",
    "country": "US",
}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}".upper()


def new_key() -> str:
    return f"key-{uuid.uuid4()}"


def checkout_body(
    card: str = "tok_visa", *, email: str | None = "buyer@example.com", **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {"shipping_address": ADDRESS, "payment": {"token": card}, **extra}
    if email is not None:
        body["email"] = email
    return body


# ---------------------------------------------------------------- shop set-up


async def new_sku(tx: Connection, *, price: str = "10.00", stock: int = 10) -> str:
    sku = unique("SKU")
    await catalog.create_product(
        tx,
        product=NewProduct(
            name=f"Product {sku}",
            slug=sku.lower(),
            variants=[NewVariant(sku=sku, price=Money.of(price, USD), stock=stock)],
        ),
        currency=USD,
        actor_id=None,
    )
    return sku


async def new_coupon(
    tx: Connection,
    *,
    percent_off: str = "10",
    max_redemptions: int | None = None,
    per_customer_limit: int | None = None,
) -> str:
    code = unique("SAVE")
    await promotions.create_coupon(
        tx,
        coupon=Coupon(
            code=code,
            percent_off=Decimal(percent_off),
            max_redemptions=max_redemptions,
            per_customer_limit=per_customer_limit,
        ),
        currency=USD,
    )
    return code


@dataclass(frozen=True)
class CartRef:
    """A cart and the headers that reach it as its owner."""

    id: uuid.UUID
    owner: CartOwner
    headers: dict[str, str]

    def checkout_headers(self, key: str | None) -> dict[str, str]:
        headers = dict(self.headers)
        if key is not None:
            headers["Idempotency-Key"] = key
        return headers

    @property
    def checkout_path(self) -> str:
        return f"/api/v1/carts/{self.id}/checkout"


async def new_cart(
    tx: Connection,
    *,
    lines: Mapping[str, int],
    coupon: str | None = None,
    user: TestUser | None = None,
) -> CartRef:
    principal = None if user is None else Principal(id=user.id, email=user.email, roles=user.roles)
    view = await carts.create_cart(tx, user=principal, currency=None, shop_currency=USD)
    if principal is not None:
        owner = CartOwner(user=principal)
        headers = dict(user.headers)  # type: ignore[union-attr]
    else:
        assert view.cart_token is not None
        owner = CartOwner(cart_token=view.cart_token)
        headers = {"X-Cart-Token": view.cart_token}
    for sku, quantity in lines.items():
        await carts.add_item(tx, cart_id=view.id, owner=owner, sku=sku, quantity=quantity)
    if coupon is not None:
        await carts.apply_coupon(tx, cart_id=view.id, owner=owner, code=coupon)
    return CartRef(id=view.id, owner=owner, headers=headers)


# ---------------------------------------------------------------- what is left behind


class Stock(NamedTuple):
    on_hand: int
    reserved: int


async def stock_of(conn: Connection, sku: str) -> Stock:
    row = await conn.fetchrow("SELECT on_hand, reserved FROM variants WHERE sku = $1", sku)
    assert row is not None
    return Stock(row["on_hand"], row["reserved"])


async def redemptions_of(conn: Connection, code: str) -> tuple[int, int]:
    """(the coupon's counter, its redemption rows)."""
    row = await conn.fetchrow(
        """
        SELECT c.redemptions, (SELECT count(*) FROM coupon_redemptions r WHERE r.coupon_id = c.id)
               AS recorded
        FROM coupons c WHERE c.code = $1
        """,
        code,
    )
    assert row is not None
    return row["redemptions"], row["recorded"]


async def cart_state(conn: Connection, cart_id: uuid.UUID) -> tuple[str, int]:
    row = await conn.fetchrow("SELECT status, version FROM carts WHERE id = $1", cart_id)
    assert row is not None
    return row["status"], row["version"]


async def orders_of(conn: Connection, cart_id: uuid.UUID) -> int:
    count: int = await conn.fetchval("SELECT count(*) FROM orders WHERE cart_id = $1", cart_id)
    return count


class Charges(NamedTuple):
    """The sandbox's books for a cart's checkout attempts."""

    captured: int  # succeeded charges with money still captured
    voided: int  # succeeded charges given back in full
    refused: int  # declined or failed: nothing charged


async def charges_of(conn: Connection, cart_id: uuid.UUID) -> Charges:
    row = await conn.fetchrow(
        """
        SELECT count(*) FILTER (WHERE s.outcome = 'succeeded' AND s.refunded_minor < s.amount_minor)
                   AS captured,
               count(*) FILTER (WHERE s.outcome = 'succeeded' AND s.refunded_minor = s.amount_minor)
                   AS voided,
               count(*) FILTER (WHERE s.outcome <> 'succeeded') AS refused
        FROM sandbox_charges s
        JOIN checkout_attempts a ON a.payment_key = s.idempotency_key
        WHERE a.cart_id = $1
        """,
        cart_id,
    )
    assert row is not None
    return Charges(row["captured"], row["voided"], row["refused"])


# ---------------------------------------------------------------- gateways that misbehave


class ProcessKilled(BaseException):
    """The process died: nothing after this point runs, no handler cleans up."""


class KilledAfterCharge(SandboxGateway):
    """The card is charged, then the process dies before the order is written."""

    async def charge(self, *, idempotency_key: str, amount: Money, token: str) -> PaymentResult:
        await super().charge(idempotency_key=idempotency_key, amount=amount, token=token)
        raise ProcessKilled


# ---------------------------------------------------------------- jobs


async def run_due_jobs(database: Database, kind: str) -> int:
    """Claim and run every due job of `kind` the way the worker does; returns how many."""
    load_task_modules()
    async with database.acquire() as conn:
        due = await jobs.claim_due(
            conn, kinds=[kind], limit=1000, lease=timedelta(seconds=60), worker="test"
        )
    handler = jobs.registry.handlers[kind]
    for job in due:
        async with database.transaction() as tx:
            assert await jobs.lock_claimed(tx, job)
            await handler(tx, job)
            await jobs.mark_done(tx, job.id)
    return len(due)


@asynccontextmanager
async def gateway_installed(gateway: SandboxGateway) -> AsyncIterator[None]:
    """The gateway background jobs use, for the block's duration."""
    payments.install_gateway(gateway)
    try:
        yield
    finally:
        payments.install_gateway(None)


# ---------------------------------------------------------------- the app on a committed database


@pytest.fixture
async def gateway_db(committed_db: Database) -> AsyncIterator[Database]:
    """The sandbox's own pool on the committed database, as the app's lifespan opens it."""
    database = Database(committed_db.dsn, min_size=1, max_size=30, keep_session=True)
    await database.connect()
    yield database
    await database.close()


@pytest.fixture
def committed_gateway(gateway_db: Database) -> SandboxGateway:
    return SandboxGateway(gateway_db)


@pytest.fixture
async def committed_client(
    settings: Settings, committed_db: Database, committed_gateway: SandboxGateway
) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on an app whose requests use the committed database's real pool."""
    app = create_app(settings, database=committed_db)
    app.state.payments = committed_gateway
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def gather_responses(*calls: Any) -> list[httpx.Response]:
    """Start every request at once (a barrier first, so they really overlap)."""
    gate = asyncio.Event()

    async def run(call: Any) -> httpx.Response:
        await gate.wait()
        response: httpx.Response = await call()
        return response

    tasks = [asyncio.create_task(run(call)) for call in calls]
    await asyncio.sleep(0)
    gate.set()
    return list(await asyncio.gather(*tasks))


@asynccontextmanager
async def logged_statements(conn: Connection) -> AsyncIterator[list[str]]:
    """The statements the connection runs inside the block."""
    statements: list[str] = []
    with conn.query_logger(lambda record: statements.append(record.query)):
        yield statements
        await asyncio.sleep(0)  # asyncpg calls loggers with call_soon: let them run
