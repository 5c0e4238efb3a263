"""Order use cases: create (for checkout), read, move through the status machine, refund.

Every status change locks the order row first, asks `orders.domain` whether
the change is allowed, then writes the new status and its event under that
lock; concurrent requests on one order therefore run one after the other,
and the second sees what the first did.

Giving money back (cancel, refund) is exactly-once in two halves:
1. Under the order's lock: the transition, the stock (cancel), and a
   `pending` refund row plus an outbox job `orders.reverse_payment` for it,
   all in the caller's transaction. Ten concurrent cancels make one refund row,
   because nine find the order already cancelled and get 409.
2. After the commit, outside every lock: the gateway call, keyed by the refund
   id (`refund:<id>`), so however often it runs (the request right away, the
   outbox job as the guarantee if the request died or the provider was down)
   the provider reverses the money once; then `record_reversal` settles the
   refund with a conditional update that only the first arrival applies.
We never hold the order row lock across the provider call: a slow provider
would stall every other change of the order, and a crash mid-call would lose
the refund's record; this way a crash at any point leaves a pending refund
that the job completes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

from congocart.catalog import service as catalog
from congocart.core import jobs
from congocart.core.db import Connection, Params
from congocart.core.errors import Forbidden
from congocart.core.money import Money
from congocart.core.pagination import decode_time_cursor, encode_cursor
from congocart.orders import repository
from congocart.orders.domain import (
    Actor,
    ActorNotPermitted,
    Caller,
    Order,
    OrderAction,
    OrderEvent,
    OrderLine,
    OrderLineDraft,
    OrderPayment,
    OrderStatus,
    PaymentRecord,
    Refund,
    TransitionNotAllowed,
    format_order_number,
    next_status,
    order_document,
    plan_refund,
)
from congocart.orders.domain import InvalidRefundAmount as RefundAmountRefused
from congocart.orders.errors import InvalidRefundAmount, InvalidTransition, OrderNotFound
from congocart.payments.domain import PaymentGateway, Reversal
from congocart.promotions import service as promotions
from congocart.webhooks import service as webhooks

REVERSE_PAYMENT_JOB = "orders.reverse_payment"
# Webhook events published by each action (fulfilment has none).
_EVENTS: Mapping[OrderAction, str] = {
    OrderAction.SHIP: "order.shipped",
    OrderAction.DELIVER: "order.delivered",
    OrderAction.CANCEL: "order.cancelled",
    OrderAction.REFUND: "order.refunded",
}


async def create_paid_order(tx: Connection, draft: PaidOrderDraft) -> Order:
    """Write a paid order checked by `paid_order`, in the caller's transaction.

    The order, its lines, the captured payment, the first event (none → paid,
    by the owner, or the system for a guest) and the `order.paid` webhook
    event are one statement, whatever the number of lines. A second order for
    the same cart raises `asyncpg.UniqueViolationError` (the caller's
    transaction is then aborted: checkout should lock the cart before calling
    this).
    """
    p = Params()
    await tx.execute(f"WITH {paid_order_sql(p, draft, only_if='true')} SELECT", *p.values)
    return draft.order


@dataclass(frozen=True, slots=True)
class PaidOrderDraft:
    """A paid order checked and ready to write (`paid_order`): `order` is the
    order exactly as it will be once written."""

    row: repository.PaidOrderRow
    order: Order


def paid_order(
    *,
    number: int,
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
) -> PaidOrderDraft:
    """The paid order `create_paid_order` (or a statement with `paid_order_sql`)
    writes, checked: amounts add up, one currency, at least one line.

    `number` comes from the `order_numbers` sequence (checkout draws it with
    the reservation); the id and the time are given here, so the order is
    known, and can be answered, before the statement that writes it runs.
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
    order_id = uuid4()
    placed_at = datetime.now(UTC)
    row = repository.PaidOrderRow(
        id=order_id,
        number=number,
        placed_at=placed_at,
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
        actor_role=Actor.OWNER if user_id is not None else Actor.SYSTEM,
    )
    zero = Money.zero(currency)
    order = Order(
        id=order_id,
        number=format_order_number(number),
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
        created_at=placed_at,
        updated_at=placed_at,
    )
    return PaidOrderDraft(row=row, order=order)


def paid_order_sql(p: Params, draft: PaidOrderDraft, *, only_if: str) -> str:
    """CTEs (of this feature's statement or another's) that write `draft` and
    publish its `order.paid` webhook event, when the SQL condition `only_if`
    holds. The unique `cart_id` makes a second order for a cart fail."""
    written = repository.insert_paid_order_sql(p, draft.row, only_if=only_if)
    published = webhooks.publish_sql(
        p,
        event_id=uuid4(),
        event="order.paid",
        data=order_document(draft.order),
        only_if="EXISTS (SELECT 1 FROM new_order)",
    )
    return f"{written}, {published}"


# ---------------------------------------------------------------- reading


@dataclass(frozen=True, slots=True)
class OrderPage:
    items: list[Order]
    next_cursor: str | None


async def get_order(conn: Connection, *, order_id: UUID) -> Order | None:
    """The order, or None (for checkout answering a repeated call; no access check)."""
    return await repository.get_order(conn, order_id)


async def get_order_for(conn: Connection, *, order_id: UUID, caller: Caller) -> Order:
    """The order, if the caller owns it or works in the back office; else `OrderNotFound`."""
    order = await repository.get_order(conn, order_id)
    if order is None or caller.actor_on(order.user_id) is None:
        raise OrderNotFound
    return order


async def list_events(conn: Connection, *, order_id: UUID, caller: Caller) -> list[OrderEvent]:
    """The order's audit trail, oldest first (same visibility as the order)."""
    owner = await repository.get_owner(conn, order_id)
    if owner is None or caller.actor_on(owner.user_id) is None:
        raise OrderNotFound
    return await repository.list_events(conn, order_id)


async def list_customer_orders(
    conn: Connection, *, user_id: UUID, limit: int, cursor: str | None
) -> OrderPage:
    """The customer's own orders, newest first."""
    return await _page(
        conn, user_id=user_id, status=None, customer=None, limit=limit, cursor=cursor
    )


async def list_all_orders(
    conn: Connection,
    *,
    status: OrderStatus | None,
    customer: str | None,
    limit: int,
    cursor: str | None,
) -> OrderPage:
    """Every order, newest first; `customer` is a user id or an email (back office)."""
    return await _page(
        conn, user_id=None, status=status, customer=customer, limit=limit, cursor=cursor
    )


async def _page(
    conn: Connection,
    *,
    user_id: UUID | None,
    status: OrderStatus | None,
    customer: str | None,
    limit: int,
    cursor: str | None,
) -> OrderPage:
    after = None if cursor is None else decode_time_cursor(cursor)
    orders = await repository.list_orders(
        conn,
        user_id=user_id,
        status=status,
        customer=customer,
        limit=limit + 1,
        after=after,
    )
    next_cursor = None
    if len(orders) > limit:
        orders = orders[:limit]
        last = orders[-1]
        next_cursor = encode_cursor([last.created_at.isoformat(), str(last.id)])
    return OrderPage(items=orders, next_cursor=next_cursor)


# ---------------------------------------------------------------- changing status


@dataclass(frozen=True, slots=True)
class PendingRefund:
    """A refund written but not yet carried out at the gateway (see the module docstring)."""

    refund: Refund
    void: bool


@dataclass(frozen=True, slots=True)
class Cancellation:
    order: Order
    reversal: PendingRefund | None


async def _lock(
    tx: Connection, order_id: UUID, caller: Caller
) -> tuple[repository.LockedOrder, Actor]:
    locked = await repository.get_for_update(tx, order_id)
    actor = None if locked is None else caller.actor_on(locked.user_id)
    if locked is None or actor is None:
        raise OrderNotFound
    return locked, actor


def _next(status: OrderStatus, action: OrderAction, actor: Actor) -> OrderStatus:
    try:
        return next_status(status, action, actor=actor)
    except TransitionNotAllowed as exc:
        raise InvalidTransition(str(exc)) from exc
    except ActorNotPermitted as exc:
        raise Forbidden(str(exc)) from exc


async def _publish(tx: Connection, action: OrderAction, order_id: UUID, **extra: Any) -> Order:
    order = await repository.get_order(tx, order_id)
    assert order is not None  # locked by the caller: it cannot have gone
    event = _EVENTS.get(action)
    if event is not None:
        await webhooks.publish(tx, event=event, data={**order_document(order), **extra})
    return order


async def fulfill_order(tx: Connection, *, order_id: UUID, caller: Caller) -> Order:
    """paid → fulfilling (back office)."""
    return await _move(tx, order_id=order_id, caller=caller, action=OrderAction.FULFILL)


async def ship_order(
    tx: Connection,
    *,
    order_id: UUID,
    caller: Caller,
    carrier: str | None,
    tracking_number: str | None,
) -> Order:
    """paid | fulfilling → shipped, with the carrier and tracking number when given."""
    return await _move(
        tx,
        order_id=order_id,
        caller=caller,
        action=OrderAction.SHIP,
        carrier=carrier,
        tracking_number=tracking_number,
    )


async def deliver_order(tx: Connection, *, order_id: UUID, caller: Caller) -> Order:
    """shipped → delivered (back office)."""
    return await _move(tx, order_id=order_id, caller=caller, action=OrderAction.DELIVER)


async def _move(
    tx: Connection,
    *,
    order_id: UUID,
    caller: Caller,
    action: OrderAction,
    carrier: str | None = None,
    tracking_number: str | None = None,
) -> Order:
    locked, actor = await _lock(tx, order_id, caller)
    status = _next(locked.status, action, actor)
    details = {
        key: value
        for key, value in (("carrier", carrier), ("tracking_number", tracking_number))
        if value is not None
    }
    await repository.change_status(
        tx,
        order_id=order_id,
        from_status=locked.status,
        to_status=status,
        action=action.value,
        actor_id=caller.id,
        actor_role=actor,
        reason=None,
        details=details,
        carrier=carrier,
        tracking_number=tracking_number,
    )
    return await _publish(tx, action, order_id)


async def cancel_order(
    tx: Connection, *, order_id: UUID, caller: Caller, reason: str | None
) -> Cancellation:
    """Cancel: stock back on hand, coupon redemption released, payment to be voided.

    Owners may cancel before shipping; staff and admins while the table allows.
    The void itself happens after commit (`reverse_payment` + `record_reversal`),
    and an outbox job enqueued here guarantees it.
    """
    locked, actor = await _lock(tx, order_id, caller)
    status = _next(locked.status, OrderAction.CANCEL, actor)
    why = reason or ("cancelled by the customer" if actor is Actor.OWNER else "cancelled")
    await repository.change_status(
        tx,
        order_id=order_id,
        from_status=locked.status,
        to_status=status,
        action=OrderAction.CANCEL.value,
        actor_id=caller.id,
        actor_role=actor,
        reason=why,
        details={},
        refunded_minor=locked.total_minor,
    )
    # Under the order's lock and only on the one transition into `cancelled`:
    # the stock comes back exactly once however many cancels race.
    await catalog.restock(tx, lines=locked.lines, reason="order cancelled", actor_id=caller.id)
    if locked.coupon_code is not None:
        await promotions.release_redemption(tx, code=locked.coupon_code)
    remaining = locked.total_minor - locked.refunded_minor
    pending = None
    if locked.payment_ref is not None and remaining > 0:
        refund = await repository.insert_refund(
            tx,
            order_id=order_id,
            payment_id=locked.payment_id,
            amount_minor=remaining,
            currency=locked.currency,
            reason=why,
            actor_id=caller.id,
        )
        pending = PendingRefund(refund=refund, void=True)
        await _enqueue_reversal(tx, pending)
    elif locked.payment_ref is None:
        await repository.void_uncharged_payment(tx, order_id=order_id)
    order = await _publish(tx, OrderAction.CANCEL, order_id)
    return Cancellation(order=order, reversal=pending)


async def refund_order(
    tx: Connection,
    *,
    order_id: UUID,
    caller: Caller,
    amount: Money | None,
    reason: str,
) -> PendingRefund:
    """Refund `amount` (None: all that is left). Reaching the total makes the order refunded.

    Over what remains → 422 `invalid_refund_amount`; a cancelled or refunded
    order → 409 `invalid_transition`. The money moves after commit, like a cancel's.
    """
    locked, actor = await _lock(tx, order_id, caller)
    currency = locked.currency
    try:
        plan = plan_refund(
            status=locked.status,
            total=Money.from_minor(locked.total_minor, currency),
            already_refunded=Money.from_minor(locked.refunded_minor, currency),
            amount=amount,
            actor=actor,
        )
    except TransitionNotAllowed as exc:
        raise InvalidTransition(str(exc)) from exc
    except ActorNotPermitted as exc:
        raise Forbidden(str(exc)) from exc
    except RefundAmountRefused as exc:
        raise InvalidRefundAmount(str(exc)) from exc
    refund = await repository.insert_refund(
        tx,
        order_id=order_id,
        payment_id=locked.payment_id,
        amount_minor=plan.amount.to_minor(),
        currency=currency,
        reason=reason,
        actor_id=caller.id,
    )
    await repository.change_status(
        tx,
        order_id=order_id,
        from_status=locked.status,
        to_status=plan.status,
        action=OrderAction.REFUND.value,
        actor_id=caller.id,
        actor_role=actor,
        reason=reason,
        details={"refund_id": str(refund.id), "amount": str(plan.amount.amount)},
        refunded_minor=plan.refunded_total.to_minor(),
    )
    pending = PendingRefund(refund=refund, void=False)
    if locked.payment_ref is not None:
        await _enqueue_reversal(tx, pending)
    await _publish(
        tx,
        OrderAction.REFUND,
        order_id,
        refund={"id": str(refund.id), "amount": str(plan.amount.amount), "reason": reason},
    )
    return pending


# ---------------------------------------------------------------- moving the money back


async def _enqueue_reversal(tx: Connection, pending: PendingRefund) -> None:
    await jobs.enqueue(
        tx,
        kind=REVERSE_PAYMENT_JOB,
        payload={"refund_id": str(pending.refund.id), "void": pending.void},
        dedupe_key=f"{REVERSE_PAYMENT_JOB}:{pending.refund.id}",
    )


def reversal_key(refund_id: UUID) -> str:
    """The gateway idempotency key of a refund: one reversal per refund row, ever."""
    return f"refund:{refund_id}"


async def reverse_payment(
    conn: Connection, *, gateway: PaymentGateway, refund_id: UUID, void: bool
) -> Reversal | None:
    """Ask the gateway to give a pending refund's money back; None if it is settled.

    Call it with no row locks held. Safe to repeat: the idempotency key makes
    the provider answer a repeat with the first reversal. Raises the gateway's
    `PaymentError` on failure (the refund stays pending).
    """
    pending = await repository.get_pending_reversal(conn, refund_id)
    if pending is None:
        return None
    if void:
        return await gateway.void(
            payment_ref=pending.payment_ref, idempotency_key=reversal_key(refund_id)
        )
    return await gateway.refund(
        payment_ref=pending.payment_ref,
        amount=pending.amount,
        idempotency_key=reversal_key(refund_id),
    )


async def record_reversal(
    tx: Connection, *, refund_id: UUID, reversal: Reversal, void: bool
) -> bool:
    """Settle the refund and its payment once; False when someone settled it first."""
    return await repository.mark_refund_succeeded(
        tx, refund_id=refund_id, gateway_ref=reversal.ref, void=void
    )


async def settle_refund(
    tx: Connection, *, gateway: PaymentGateway, refund_id: UUID, void: bool
) -> None:
    """Both halves at once, for the outbox job (its transaction locks no order row)."""
    reversal = await reverse_payment(tx, gateway=gateway, refund_id=refund_id, void=void)
    if reversal is not None:
        await record_reversal(tx, refund_id=refund_id, reversal=reversal, void=void)


async def get_refund(conn: Connection, *, refund_id: UUID) -> Refund | None:
    return await repository.get_refund(conn, refund_id)
