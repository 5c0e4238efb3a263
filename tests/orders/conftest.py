"""Order test helpers: real paid orders, made the way checkout makes them.

`place_order` creates a product per line (with stock), a cart and a checkout
attempt, reserves and sells the stock, charges the sandbox gateway, and calls
`orders.service.create_paid_order` — all on the connection it is given, so it
works on the test's rolled-back connection and on a committed database alike.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from congocart.adapters.sandbox_gateway import SandboxGateway
from congocart.catalog import service as catalog
from congocart.catalog.domain import NewProduct, NewVariant
from congocart.core.db import Connection, Database
from congocart.core.money import Money
from congocart.orders import service
from congocart.orders.domain import Order, OrderLineDraft, PaymentRecord
from tests.conftest import SingleConnectionDatabase

USD = "USD"
ADDRESS = {
    "name": "Ada Lovelace",
    "line1": "12 Analytical Row",
    "city": "London",
    "postal_code": "N1 9GU",
    "country": "GB",
}


@asynccontextmanager
async def logged_statements(conn: Connection) -> AsyncIterator[list[str]]:
    """The statements the connection runs inside the block."""
    statements: list[str] = []
    with conn.query_logger(lambda record: statements.append(record.query)):
        yield statements
    await asyncio.sleep(0)  # asyncpg calls loggers with call_soon: let them run


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}".upper()


@dataclass(frozen=True)
class CheckoutParts:
    """Everything `create_paid_order` takes, prepared as checkout would."""

    cart_id: uuid.UUID
    attempt_id: uuid.UUID
    order_number: int  # drawn with the attempt, as checkout does
    lines: list[OrderLineDraft]
    payment: PaymentRecord


async def prepare_checkout(
    tx: Connection,
    *,
    gateway: SandboxGateway,
    user_id: uuid.UUID | None,
    prices: Sequence[str],
    quantity: int,
    stock: int,
    total: Money,
) -> CheckoutParts:
    lines = []
    for price in prices:
        sku = unique("SKU")
        await catalog.create_product(
            tx,
            product=NewProduct(
                name=f"Product {sku}",
                variants=[NewVariant(sku=sku, price=Money.of(price, USD), stock=stock)],
            ),
            currency=USD,
            actor_id=None,
        )
        lines.append(
            OrderLineDraft(
                sku=sku, name=f"Product {sku}", unit_price=Money.of(price, USD), quantity=quantity
            )
        )
    stock_lines = {line.sku: line.quantity for line in lines}
    await catalog.reserve_stock(tx, lines=stock_lines)
    await catalog.commit_stock(tx, lines=stock_lines)
    cart_id = await tx.fetchval(
        """
        INSERT INTO carts (user_id, guest_token_hash, currency, status)
        VALUES ($1, CASE WHEN $1::uuid IS NULL THEN sha256(gen_random_uuid()::text::bytea) END,
                $2, 'checked_out')
        RETURNING id
        """,
        user_id,
        USD,
    )
    attempt = await tx.fetchrow(
        """
        INSERT INTO checkout_attempts (cart_id, idempotency_key, payment_key, reserved_lines,
                                       amount_minor, currency, status, expires_at)
        VALUES ($1, $2, $3, '[]', $4, $5, 'confirmed', $6)
        RETURNING id, order_number
        """,
        cart_id,
        uuid.uuid4().hex,
        f"pay-{uuid.uuid4().hex}",
        total.to_minor(),
        USD,
        datetime.now(UTC) + timedelta(minutes=10),
    )
    assert attempt is not None
    attempt_id = attempt["id"]
    charge = await gateway.charge(
        idempotency_key=f"pay-{attempt_id}", amount=total, token="tok_visa"
    )
    payment = PaymentRecord(
        gateway="sandbox",
        gateway_ref=charge.payment_ref,
        amount=charge.amount,
        brand=charge.brand,
        last4=charge.last4,
    )
    return CheckoutParts(
        cart_id=cart_id,
        attempt_id=attempt_id,
        order_number=attempt["order_number"],
        lines=lines,
        payment=payment,
    )


PlaceOrder = Callable[..., Awaitable[Order]]


async def place_order_on(
    tx: Connection,
    gateway: SandboxGateway,
    *,
    user_id: uuid.UUID | None,
    email: str = "buyer@example.com",
    prices: Sequence[str] = ("10.00",),
    quantity: int = 2,
    stock: int = 10,
    shipping: str = "5.00",
    discount: str = "0.00",
    coupon_code: str | None = None,
) -> Order:
    """A paid order of `quantity` units of one fresh SKU per price (20 % tax)."""
    subtotal = Money.zero(USD)
    for price in prices:
        subtotal = subtotal + Money.of(price, USD) * quantity
    discount_money = Money.of(discount, USD)
    shipping_money = Money.of(shipping, USD)
    rate = Decimal("0.20")
    tax = ((subtotal - discount_money + shipping_money) * rate).quantize()
    total = subtotal - discount_money + shipping_money + tax
    parts = await prepare_checkout(
        tx,
        gateway=gateway,
        user_id=user_id,
        prices=prices,
        quantity=quantity,
        stock=stock,
        total=total,
    )
    return await service.create_paid_order(
        tx,
        service.paid_order(
            cart_id=parts.cart_id,
            number=parts.order_number,
            checkout_attempt_id=parts.attempt_id,
            user_id=user_id,
            email=email,
            currency=USD,
            lines=parts.lines,
            subtotal=subtotal,
            discount=discount_money,
            shipping=shipping_money,
            tax=tax,
            total=total,
            tax_rate=rate,
            coupon_code=coupon_code,
            shipping_method="standard",
            shipping_address=ADDRESS,
            payment=parts.payment,
        ),
    )


@pytest.fixture
def gateway(db: Database) -> SandboxGateway:
    """The sandbox gateway on the test's own connection (savepoints), like the app's."""
    return SandboxGateway(db)


@pytest.fixture
def place_order(conn: Connection, db: SingleConnectionDatabase) -> PlaceOrder:
    gateway = SandboxGateway(db)

    async def place(**kwargs: object) -> Order:
        return await place_order_on(conn, gateway, **kwargs)  # type: ignore[arg-type]

    return place
