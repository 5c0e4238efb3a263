"""Order use cases: create (for checkout), read, move through the status machine, refund."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from uuid import UUID

from congocart.core.db import Connection
from congocart.core.money import Money
from congocart.orders import repository
from congocart.orders.domain import (
    Actor,
    Order,
    OrderLine,
    OrderLineDraft,
    OrderPayment,
    OrderStatus,
    PaymentRecord,
    format_order_number,
    order_document,
)
from congocart.webhooks import service as webhooks


async def create_paid_order(
    tx: Connection,
    *,
    cart_id: UUID,
    checkout_attempt_id: UUID,
    user_id: UUID | None,
    email: str,
    currency: str,
    lines: Sequence[OrderLineDraft],
    subtotal: Money,
    discount: Money,
    shipping: Money,
    tax: Money,
    total: Money,
    tax_rate: Decimal | None,
    coupon_code: str | None,
    shipping_method: str,
    shipping_address: Mapping[str, str],
    payment: PaymentRecord,
) -> Order:
    """Write the paid order checkout confirms, in the caller's transaction.

    The order (numbered from the sequence), its lines, the captured payment and
    the first event (none → paid, by the owner, or the system for a guest) are
    one statement; the `order.paid` webhook event adds at most three more. The
    count does not depend on the number of lines. A second order for the same
    cart raises `asyncpg.UniqueViolationError` (the caller's transaction is
    then aborted: checkout should lock the cart before calling this).
    """
    amounts = (subtotal, discount, shipping, tax, total, payment.amount)
    if any(m.currency != currency for m in amounts) or any(
        line.unit_price.currency != currency for line in lines
    ):
        raise ValueError(f"every amount of the order must be in {currency}")
    if not lines:
        raise ValueError("an order has at least one line")
    lines_total = Money.zero(currency)
    for line in lines:
        lines_total = lines_total + line.line_total
    if lines_total.quantize() != subtotal.quantize():
        raise ValueError("subtotal must equal the sum of the line totals")
    if subtotal - discount + shipping + tax != total:
        raise ValueError("total must equal subtotal - discount + shipping + tax")
    actor_role = Actor.OWNER if user_id is not None else Actor.SYSTEM
    inserted = await repository.insert_paid_order(
        tx,
        cart_id=cart_id,
        checkout_attempt_id=checkout_attempt_id,
        user_id=user_id,
        email=email,
        currency=currency,
        lines=lines,
        subtotal_minor=subtotal.to_minor(),
        discount_minor=discount.to_minor(),
        shipping_minor=shipping.to_minor(),
        tax_minor=tax.to_minor(),
        total_minor=total.to_minor(),
        tax_rate=tax_rate,
        coupon_code=coupon_code,
        shipping_method=shipping_method,
        shipping_address=shipping_address,
        payment=payment,
        actor_id=user_id,
        actor_role=actor_role,
    )
    zero = Money.zero(currency)
    order = Order(
        id=inserted.id,
        number=format_order_number(inserted.number),
        status=OrderStatus.PAID,
        user_id=user_id,
        email=email,
        currency=currency,
        items=tuple(
            OrderLine(
                sku=line.sku,
                name=line.name,
                unit_price=line.unit_price.quantize(),
                quantity=line.quantity,
                line_total=line.line_total.quantize(),
            )
            for line in lines
        ),
        subtotal=subtotal.quantize(),
        discount=discount.quantize(),
        shipping=shipping.quantize(),
        tax=tax.quantize(),
        total=total.quantize(),
        refunded=zero,
        tax_rate=tax_rate,
        coupon_code=coupon_code,
        shipping_method=shipping_method,
        shipping_address=dict(shipping_address),
        payment=OrderPayment(
            status="captured",
            amount=payment.amount.quantize(),
            refunded=zero,
            brand=payment.brand,
            last4=payment.last4,
        ),
        carrier=None,
        tracking_number=None,
        created_at=inserted.created_at,
        updated_at=inserted.updated_at,
    )
    await webhooks.publish(tx, event="order.paid", data=order_document(order))
    return order


async def get_order(conn: Connection, *, order_id: UUID) -> Order | None:
    """The order, or None (used by checkout to answer a repeated call)."""
    return await repository.get_order(conn, order_id)
