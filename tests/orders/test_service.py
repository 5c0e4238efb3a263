"""Order use cases on real PostgreSQL, each test rolled back."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from congocart.adapters.sandbox_gateway import SandboxGateway
from congocart.core.db import Connection
from congocart.core.money import Money
from congocart.orders import service
from congocart.orders.domain import OrderLineDraft, OrderStatus, PaymentRecord
from congocart.orders.schemas import order_to_response
from tests.conftest import MakeUser
from tests.orders.conftest import ADDRESS, USD, PlaceOrder, logged_statements, prepare_checkout


async def subscribe(conn: Connection, *events: str) -> uuid.UUID:
    webhook_id: uuid.UUID = await conn.fetchval(
        "INSERT INTO webhooks (url, events, secret) VALUES ($1, $2, 's3cret') RETURNING id",
        "http://127.0.0.1:9/hook",
        list(events),
    )
    return webhook_id


async def test_create_paid_order_writes_order_lines_payment_and_first_event(
    conn: Connection, place_order: PlaceOrder, make_user: MakeUser
) -> None:
    user = await make_user()
    order = await place_order(user_id=user.id, email=user.email, prices=("10.00", "2.50"))

    assert order.status is OrderStatus.PAID
    assert order.number.startswith("CC-")
    assert len(order.number) >= 9
    assert [(i.unit_price, i.quantity, i.line_total) for i in order.items] == [
        (Money.of("10.00", USD), 2, Money.of("20.00", USD)),
        (Money.of("2.50", USD), 2, Money.of("5.00", USD)),
    ]
    stored = await service.get_order(conn, order_id=order.id)
    assert stored == order
    events = await conn.fetch(
        "SELECT actor_id, actor_role, from_status, to_status FROM order_events WHERE order_id = $1",
        order.id,
    )
    assert [tuple(e) for e in events] == [(user.id, "owner", None, "paid")]
    payment = await conn.fetchrow(
        "SELECT status, amount_minor, last4 FROM payments WHERE order_id = $1", order.id
    )
    assert tuple(payment) == ("captured", order.total.to_minor(), "4242")


async def test_a_guest_order_is_recorded_as_made_by_the_system(
    conn: Connection, place_order: PlaceOrder
) -> None:
    order = await place_order(user_id=None, email="guest@example.com")
    role = await conn.fetchval("SELECT actor_role FROM order_events WHERE order_id = $1", order.id)
    assert role == "system"
    assert order.user_id is None


async def test_create_paid_order_runs_the_same_few_statements_for_1_or_60_lines(
    conn: Connection, gateway: SandboxGateway
) -> None:
    await subscribe(conn, "order.paid")
    counts = []
    for line_count in (1, 60):
        prices = [f"{i + 1}.00" for i in range(line_count)]
        # Everything but the order itself is prepared outside the counted block.
        subtotal = Money.zero(USD)
        for p in prices:
            subtotal = subtotal + Money.of(p, USD)
        parts = await prepare_checkout(
            conn,
            gateway=gateway,
            user_id=None,
            prices=prices,
            quantity=1,
            stock=5,
            total=subtotal,
        )
        async with logged_statements(conn) as statements:
            order = await service.create_paid_order(
                conn,
                service.paid_order(
                    cart_id=parts.cart_id,
                    number=parts.order_number,
                    checkout_attempt_id=parts.attempt_id,
                    user_id=None,
                    email="many@example.com",
                    currency=USD,
                    lines=parts.lines,
                    subtotal=subtotal,
                    discount=Money.zero(USD),
                    shipping=Money.zero(USD),
                    tax=Money.zero(USD),
                    total=subtotal,
                    tax_rate=None,
                    coupon_code=None,
                    shipping_method="standard",
                    shipping_address=ADDRESS,
                    payment=parts.payment,
                ),
            )
        assert len(order.items) == line_count
        counts.append(len(statements))
    assert counts[0] == counts[1] <= 5


async def test_a_paid_order_publishes_order_paid_to_subscribed_webhooks_only(
    conn: Connection, place_order: PlaceOrder
) -> None:
    paid_hook = await subscribe(conn, "order.paid", "order.shipped")
    other_hook = await subscribe(conn, "order.shipped")
    order = await place_order(user_id=None)

    rows = await conn.fetch(
        """
        SELECT webhook_id, event, payload FROM webhook_deliveries
        WHERE payload->'data'->>'id' = $1
        """,
        str(order.id),
    )
    assert [(r["webhook_id"], r["event"]) for r in rows] == [(paid_hook, "order.paid")]
    assert other_hook not in {r["webhook_id"] for r in rows}
    body = rows[0]["payload"]
    assert body["event"] == "order.paid"
    assert body["data"]["number"] == order.number
    assert body["data"]["total"] == {"amount": str(order.total.amount), "currency": USD}
    fan_out = await conn.fetchval(
        "SELECT count(*) FROM jobs WHERE kind = 'webhooks.fan_out' AND payload->>'event_id' = $1",
        body["id"],
    )
    assert fan_out == 1


async def test_a_second_order_for_the_same_cart_is_refused_by_the_database(
    conn: Connection, place_order: PlaceOrder, gateway: SandboxGateway
) -> None:
    order = await place_order(user_id=None, quantity=1)
    cart_id = await conn.fetchval("SELECT cart_id FROM orders WHERE id = $1", order.id)
    attempt = await conn.fetchval(
        """
        INSERT INTO checkout_attempts (cart_id, idempotency_key, payment_key, reserved_lines,
                                       amount_minor, currency, status, expires_at)
        VALUES ($1, 'k2', 'pk2', '[]', 1, 'USD', 'confirmed', now()) RETURNING id
        """,
        cart_id,
    )
    with pytest.raises(asyncpg.UniqueViolationError):
        async with conn.transaction():
            await service.create_paid_order(
                conn,
                service.paid_order(
                    cart_id=cart_id,
                    number=await conn.fetchval("SELECT nextval('order_numbers')"),
                    checkout_attempt_id=attempt,
                    user_id=None,
                    email="x@example.com",
                    currency=USD,
                    lines=[
                        OrderLineDraft(sku=i.sku, name=i.name, unit_price=i.unit_price, quantity=1)
                        for i in order.items
                    ],
                    subtotal=order.subtotal,
                    discount=order.discount,
                    shipping=order.shipping,
                    tax=order.tax,
                    total=order.total,
                    tax_rate=None,
                    coupon_code=None,
                    shipping_method="standard",
                    shipping_address=ADDRESS,
                    payment=PaymentRecord(gateway="sandbox", gateway_ref=None, amount=order.total),
                ),
            )


async def test_order_to_response_has_the_contract_shape(
    place_order: PlaceOrder,
) -> None:
    order = await place_order(user_id=None, prices=("19.99",), quantity=1, shipping="0.00")
    body = order_to_response(order)
    assert set(body) >= {
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
    assert body["items"] == [
        {
            "sku": order.items[0].sku,
            "name": order.items[0].name,
            "unit_price": {"amount": "19.99", "currency": "USD"},
            "quantity": 1,
            "line_total": {"amount": "19.99", "currency": "USD"},
        }
    ]
    assert body["payment"] == {"status": "captured", "last4": "4242"}
    assert body["status"] == "paid"
    assert body["total"] == {"amount": "23.99", "currency": "USD"}
