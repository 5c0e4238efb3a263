"""Orders SQL: orders, their lines, payments, refunds and the audit trail.

Every statement is written out with `$n` parameters. A status change locks the
order row first (`get_for_update`) and every other write of that change happens
under that lock, so concurrent changes of one order run one after the other.
Reads return the `Order` read model in one statement, whatever the line count.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg

from congocart.core.db import Connection, Params
from congocart.core.money import Money
from congocart.orders.domain import (
    Actor,
    Order,
    OrderEvent,
    OrderLine,
    OrderLineDraft,
    OrderPayment,
    OrderStatus,
    PaymentRecord,
    Refund,
    format_order_number,
)

# ---------------------------------------------------------------- creating an order


@dataclass(frozen=True, slots=True)
class PaidOrderRow:
    """The values of a paid order's statement (`insert_paid_order_sql`)."""

    id: UUID
    number: int
    placed_at: datetime
    cart_id: UUID
    checkout_attempt_id: UUID
    user_id: UUID | None
    email: str
    currency: str
    lines: Sequence[OrderLineDraft]
    subtotal_minor: int
    discount_minor: int
    shipping_minor: int
    tax_minor: int
    total_minor: int
    tax_rate: Decimal | None
    coupon_code: str | None
    shipping_method: str
    shipping_address: Mapping[str, str]
    payment: PaymentRecord
    actor_id: UUID | None
    actor_role: Actor


def insert_paid_order_sql(p: Params, order: PaidOrderRow, *, only_if: str = "true") -> str:
    """The CTEs that write a paid order, its lines, its captured payment and its
    first event, when the SQL condition `only_if` holds (for this statement or
    another feature's). `new_order` returns the order's id when it was written.

    Each INSERT of the chain reads the new order's id from the first one; the
    lines go in as arrays through `unnest`, so the statement is the same for
    one line or a hundred. The unique `cart_id` makes a second order for the
    same cart fail here (`asyncpg.UniqueViolationError`).
    """
    lines = order.lines
    payment = order.payment
    currency = p(order.currency)
    return f"""
        new_order AS (
            INSERT INTO orders (id, number, cart_id, checkout_attempt_id, user_id, email,
                                status, currency, subtotal_minor, discount_minor,
                                shipping_minor, tax_minor, total_minor, tax_rate, coupon_code,
                                shipping_method, shipping_address, created_at, updated_at)
            SELECT {p(order.id)}, {p(order.number)}, {p(order.cart_id)},
                   {p(order.checkout_attempt_id)}, {p(order.user_id)}, {p(order.email)}, 'paid',
                   {currency}, {p(order.subtotal_minor)}, {p(order.discount_minor)},
                   {p(order.shipping_minor)}, {p(order.tax_minor)}, {p(order.total_minor)},
                   {p(order.tax_rate)}, {p(order.coupon_code)}, {p(order.shipping_method)},
                   {p(dict(order.shipping_address))}, t.at, t.at
            FROM (SELECT {p(order.placed_at)}::timestamptz AS at) t
            WHERE {only_if}
            RETURNING id
        ),
        new_lines AS (
            INSERT INTO order_lines (order_id, position, sku, name, unit_price_minor, quantity,
                                     line_total_minor)
            SELECT new_order.id, line.ordinality - 1, line.sku, line.name,
                   line.unit_price_minor, line.quantity, line.unit_price_minor * line.quantity
            FROM new_order,
                 unnest({p.array([line.sku for line in lines], "text[]")},
                        {p.array([line.name for line in lines], "text[]")},
                        {p.array([line.unit_price.to_minor() for line in lines], "bigint[]")},
                        {p.array([line.quantity for line in lines], "integer[]")})
                     WITH ORDINALITY AS line(sku, name, unit_price_minor, quantity, ordinality)
        ),
        new_payment AS (
            INSERT INTO payments (order_id, gateway, gateway_ref, status, amount_minor,
                                  currency, brand, last4)
            SELECT new_order.id, {p(payment.gateway)}, {p(payment.gateway_ref)}, 'captured',
                   {p(payment.amount.to_minor())}, {currency}, {p(payment.brand)},
                   {p(payment.last4)}
            FROM new_order
        ),
        first_event AS (
            INSERT INTO order_events (order_id, actor_id, actor_role, action, from_status,
                                      to_status, reason)
            SELECT new_order.id, {p(order.actor_id)}, {p(order.actor_role.value)}, 'checkout',
                   NULL, 'paid', 'paid at checkout'
            FROM new_order
        )
    """  # noqa: S608 - fixed text around placeholders, no values


# ---------------------------------------------------------------- reading orders

# The read model in one statement: lines aggregated in position order, the
# payment joined (one per order, unique on order_id).
_ORDER_SELECT = """
    SELECT o.id, o.number, o.status, o.user_id, o.email, o.currency,
           o.subtotal_minor, o.discount_minor, o.shipping_minor, o.tax_minor,
           o.total_minor, o.refunded_minor, o.tax_rate, o.coupon_code,
           o.shipping_method, o.shipping_address, o.carrier, o.tracking_number,
           o.created_at, o.updated_at,
           p.status AS payment_status, p.amount_minor AS payment_amount_minor,
           p.refunded_minor AS payment_refunded_minor, p.brand AS payment_brand,
           p.last4 AS payment_last4,
           coalesce((
               SELECT jsonb_agg(jsonb_build_array(l.sku, l.name, l.unit_price_minor,
                                                  l.quantity, l.line_total_minor)
                                ORDER BY l.position)
               FROM order_lines l WHERE l.order_id = o.id
           ), '[]'::jsonb) AS lines
    FROM orders o
    LEFT JOIN payments p ON p.order_id = o.id
"""


def _order(row: asyncpg.Record) -> Order:
    currency: str = row["currency"]

    def money(minor: int) -> Money:
        return Money.from_minor(minor, currency)

    payment = None
    if row["payment_status"] is not None:
        payment = OrderPayment(
            status=row["payment_status"],
            amount=money(row["payment_amount_minor"]),
            refunded=money(row["payment_refunded_minor"]),
            brand=row["payment_brand"],
            last4=row["payment_last4"],
        )
    return Order(
        id=row["id"],
        number=format_order_number(row["number"]),
        status=OrderStatus(row["status"]),
        user_id=row["user_id"],
        email=row["email"],
        currency=currency,
        items=tuple(
            OrderLine(
                sku=sku,
                name=name,
                unit_price=money(unit_price),
                quantity=quantity,
                line_total=money(line_total),
            )
            for sku, name, unit_price, quantity, line_total in row["lines"]
        ),
        subtotal=money(row["subtotal_minor"]),
        discount=money(row["discount_minor"]),
        shipping=money(row["shipping_minor"]),
        tax=money(row["tax_minor"]),
        total=money(row["total_minor"]),
        refunded=money(row["refunded_minor"]),
        tax_rate=row["tax_rate"],
        coupon_code=row["coupon_code"],
        shipping_method=row["shipping_method"],
        shipping_address=row["shipping_address"],
        payment=payment,
        carrier=row["carrier"],
        tracking_number=row["tracking_number"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


async def get_order(conn: Connection, order_id: UUID) -> Order | None:
    row = await conn.fetchrow(f"{_ORDER_SELECT} WHERE o.id = $1", order_id)
    return None if row is None else _order(row)


async def list_orders(
    conn: Connection,
    *,
    user_id: UUID | None,
    status: OrderStatus | None,
    customer: str | None,
    limit: int,
    after: tuple[datetime, UUID] | None,
) -> list[Order]:
    """Orders newest first, keyset-paginated on (created_at, id).

    `user_id` keeps one customer's orders; `customer` (back office) matches a
    user id or, case-insensitively, the order's email. Each filter is a fixed
    fragment that is a no-op when its parameter is NULL.
    """
    after_at, after_id = after if after is not None else (None, None)
    customer_id = _as_uuid(customer)
    rows = await conn.fetch(
        f"""
        {_ORDER_SELECT}
        WHERE ($1::uuid IS NULL OR o.user_id = $1)
          AND ($2::text IS NULL OR o.status = $2)
          AND ($3::text IS NULL OR o.user_id = $4::uuid OR lower(o.email) = lower($3))
          AND ($5::timestamptz IS NULL OR (o.created_at, o.id) < ($5, $6::uuid))
        ORDER BY o.created_at DESC, o.id DESC
        LIMIT $7
        """,
        user_id,
        None if status is None else status.value,
        customer,
        customer_id,
        after_at,
        after_id,
        limit,
    )
    return [_order(row) for row in rows]


def _as_uuid(value: str | None) -> UUID | None:
    if value is None:
        return None
    try:
        return UUID(value)
    except ValueError:
        return None


# ---------------------------------------------------------------- changing an order


@dataclass(frozen=True, slots=True)
class LockedOrder:
    """What a status change needs, read under the order's row lock."""

    id: UUID
    status: OrderStatus
    user_id: UUID | None
    currency: str
    total_minor: int
    refunded_minor: int
    coupon_code: str | None
    lines: Mapping[str, int]
    payment_id: UUID | None
    payment_ref: str | None


async def get_for_update(tx: Connection, order_id: UUID) -> LockedOrder | None:
    """Lock the order row (and read its lines and payment) for a status change.

    `FOR UPDATE OF o`: the order row is the lock every change of this order
    takes first; concurrent cancels, refunds and shipments queue on it.
    """
    row = await tx.fetchrow(
        """
        SELECT o.id, o.status, o.user_id, o.currency, o.total_minor, o.refunded_minor,
               o.coupon_code, p.id AS payment_id, p.gateway_ref AS payment_ref,
               (SELECT coalesce(jsonb_object_agg(l.sku, l.quantity), '{}'::jsonb)
                FROM order_lines l WHERE l.order_id = o.id) AS lines
        FROM orders o
        LEFT JOIN payments p ON p.order_id = o.id
        WHERE o.id = $1
        FOR UPDATE OF o
        """,
        order_id,
    )
    if row is None:
        return None
    return LockedOrder(
        id=row["id"],
        status=OrderStatus(row["status"]),
        user_id=row["user_id"],
        currency=row["currency"],
        total_minor=row["total_minor"],
        refunded_minor=row["refunded_minor"],
        coupon_code=row["coupon_code"],
        lines=row["lines"],
        payment_id=row["payment_id"],
        payment_ref=row["payment_ref"],
    )


@dataclass(frozen=True, slots=True)
class OrderOwner:
    """Whose order it is: a user, or nobody (a guest's order)."""

    user_id: UUID | None


async def get_owner(conn: Connection, order_id: UUID) -> OrderOwner | None:
    """The order's owner, or None when there is no such order."""
    row = await conn.fetchrow("SELECT user_id FROM orders WHERE id = $1", order_id)
    return None if row is None else OrderOwner(user_id=row["user_id"])


async def change_status(
    tx: Connection,
    *,
    order_id: UUID,
    from_status: OrderStatus,
    to_status: OrderStatus,
    action: str,
    actor_id: UUID | None,
    actor_role: Actor,
    reason: str | None,
    details: Mapping[str, Any],
    refunded_minor: int | None = None,
    carrier: str | None = None,
    tracking_number: str | None = None,
) -> None:
    """Move the order and append its event, in one statement (under the caller's lock).

    The `status = from_status` guard makes the update a no-op if the order is
    not where the caller saw it; under the row lock that cannot happen, and the
    event insert reading the update's output then inserts nothing.
    """
    changed = await tx.fetchval(
        """
        WITH moved AS (
            UPDATE orders
            SET status = $3,
                refunded_minor = coalesce($4, refunded_minor),
                carrier = coalesce($5, carrier),
                tracking_number = coalesce($6, tracking_number),
                updated_at = now()
            WHERE id = $1 AND status = $2
            RETURNING id
        ), event AS (
            INSERT INTO order_events (order_id, actor_id, actor_role, action, from_status,
                                      to_status, reason, details)
            SELECT id, $7, $8, $9, $2, $3, $10, $11 FROM moved
        )
        SELECT count(*) FROM moved
        """,
        order_id,
        from_status.value,
        to_status.value,
        refunded_minor,
        carrier,
        tracking_number,
        actor_id,
        actor_role.value,
        action,
        reason,
        dict(details),
    )
    if changed != 1:
        raise RuntimeError(f"order {order_id} was not {from_status} under its own lock")


async def list_events(conn: Connection, order_id: UUID) -> list[OrderEvent]:
    rows = await conn.fetch(
        """
        SELECT id, action, actor_id, actor_role, from_status, to_status, reason, created_at
        FROM order_events WHERE order_id = $1 ORDER BY seq
        """,
        order_id,
    )
    return [
        OrderEvent(
            id=r["id"],
            action=r["action"],
            actor_id=r["actor_id"],
            actor_role=Actor(r["actor_role"]),
            from_status=None if r["from_status"] is None else OrderStatus(r["from_status"]),
            to_status=OrderStatus(r["to_status"]),
            reason=r["reason"],
            created_at=r["created_at"],
        )
        for r in rows
    ]


# ---------------------------------------------------------------- refunds


def _refund(row: asyncpg.Record) -> Refund:
    return Refund(
        id=row["id"],
        order_id=row["order_id"],
        amount=Money.from_minor(row["amount_minor"], row["currency"]),
        reason=row["reason"],
        status=row["status"],
        created_at=row["created_at"],
    )


async def insert_refund(
    tx: Connection,
    *,
    order_id: UUID,
    payment_id: UUID | None,
    amount_minor: int,
    currency: str,
    reason: str,
    actor_id: UUID | None,
) -> Refund:
    """A `pending` refund: its id is the gateway idempotency key of the reversal."""
    row = await tx.fetchrow(
        """
        INSERT INTO refunds (order_id, payment_id, amount_minor, currency, reason, actor_id)
        VALUES ($1, $2, $3, $4, $5, $6)
        RETURNING id, order_id, amount_minor, currency, reason, status, created_at
        """,
        order_id,
        payment_id,
        amount_minor,
        currency,
        reason,
        actor_id,
    )
    assert row is not None
    return _refund(row)


@dataclass(frozen=True, slots=True)
class PendingReversal:
    """What the gateway needs to carry out a pending refund."""

    refund_id: UUID
    payment_ref: str
    amount: Money


async def get_pending_reversal(conn: Connection, refund_id: UUID) -> PendingReversal | None:
    """The pending refund and its charge, or None when it is settled (or has no charge)."""
    row = await conn.fetchrow(
        """
        SELECT r.id, r.amount_minor, r.currency, p.gateway_ref
        FROM refunds r
        JOIN payments p ON p.id = r.payment_id
        WHERE r.id = $1 AND r.status = 'pending' AND p.gateway_ref IS NOT NULL
        """,
        refund_id,
    )
    if row is None:
        return None
    return PendingReversal(
        refund_id=row["id"],
        payment_ref=row["gateway_ref"],
        amount=Money.from_minor(row["amount_minor"], row["currency"]),
    )


async def mark_refund_succeeded(
    tx: Connection, *, refund_id: UUID, gateway_ref: str, void: bool
) -> bool:
    """Settle a pending refund and the payment it reverses; False if it was settled already.

    The `status = 'pending'` guard makes this happen once, whichever of the
    request and the outbox job gets here first (the second waits on the refund
    row's lock, then finds it settled and changes nothing).
    """
    settled = await tx.fetchval(
        """
        WITH settled AS (
            UPDATE refunds
            SET status = 'succeeded', gateway_ref = $2, updated_at = now()
            WHERE id = $1 AND status = 'pending'
            RETURNING payment_id, amount_minor
        ), paid AS (
            UPDATE payments AS p
            SET refunded_minor = CASE WHEN $3 THEN p.amount_minor
                                      ELSE p.refunded_minor + settled.amount_minor END,
                status = CASE
                    WHEN $3 THEN 'voided'
                    WHEN p.refunded_minor + settled.amount_minor >= p.amount_minor
                        THEN 'refunded'
                    ELSE 'partially_refunded'
                END,
                updated_at = now()
            FROM settled
            WHERE p.id = settled.payment_id
        )
        SELECT count(*) FROM settled
        """,
        refund_id,
        gateway_ref,
        void,
    )
    return bool(settled)


async def void_uncharged_payment(tx: Connection, *, order_id: UUID) -> None:
    """An order with nothing charged (total zero) is cancelled without the gateway."""
    await tx.execute(
        """
        UPDATE payments SET status = 'voided', updated_at = now()
        WHERE order_id = $1 AND gateway_ref IS NULL
        """,
        order_id,
    )


async def get_refund(conn: Connection, refund_id: UUID) -> Refund | None:
    row = await conn.fetchrow(
        """
        SELECT id, order_id, amount_minor, currency, reason, status, created_at
        FROM refunds WHERE id = $1
        """,
        refund_id,
    )
    return None if row is None else _refund(row)
