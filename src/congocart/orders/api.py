"""Order routes: the customer's orders, and the back office's order workflow."""

from __future__ import annotations

import asyncio
from typing import Annotated
from uuid import UUID

import structlog
from fastapi import APIRouter, Query, Request

from congocart.core.db import Conn, Connection, Tx
from congocart.core.errors import problem_responses
from congocart.core.pagination import SHORT_LIST, Cursor, Limit
from congocart.identity.dependencies import CurrentUser, StaffUser
from congocart.identity.domain import Principal
from congocart.orders import service
from congocart.orders.domain import Caller, OrderStatus
from congocart.orders.errors import OrderNotFound
from congocart.orders.schemas import (
    CancelRequest,
    OrderEventList,
    OrderEventRead,
    OrderList,
    OrderRead,
    RefundCreate,
    RefundRead,
    ShipRequest,
)
from congocart.payments.dependencies import payment_gateway
from congocart.payments.domain import PaymentError, PaymentGateway

log = structlog.get_logger(__name__)

router = APIRouter(tags=["orders"])

# The request's own attempt at the gateway after commit; past this the outbox job finishes it.
IMMEDIATE_REVERSAL_TIMEOUT_SECONDS = 10.0


def _caller(user: Principal) -> Caller:
    return Caller(id=user.id, is_staff=user.is_staff, is_admin=user.is_admin)


def _order_id(value: str) -> UUID:
    # A malformed id names no order: 404, like someone else's order.
    try:
        return UUID(value)
    except ValueError:
        raise OrderNotFound from None


async def _give_money_back(
    conn: Connection, gateway: PaymentGateway, pending: service.PendingRefund | None
) -> None:
    """Reverse the payment now, after the commit and outside every lock.

    Best effort: on a gateway failure or timeout the refund stays pending and the
    outbox job enqueued with it retries (same idempotency key, so never twice).
    """
    if pending is None:
        return
    refund_id = pending.refund.id
    try:
        async with asyncio.timeout(IMMEDIATE_REVERSAL_TIMEOUT_SECONDS):
            reversal = await service.reverse_payment(
                conn, gateway=gateway, refund_id=refund_id, void=pending.void
            )
    except (PaymentError, TimeoutError) as exc:
        log.warning("refund_deferred_to_job", refund_id=str(refund_id), error=repr(exc))
        return
    if reversal is not None:
        async with conn.transaction():
            await service.record_reversal(
                conn, refund_id=refund_id, reversal=reversal, void=pending.void
            )


# ---------------------------------------------------------------- customers


@router.get("/orders", response_model=OrderList)
async def list_my_orders(
    conn: Conn, user: CurrentUser, limit: Limit = 20, cursor: Cursor = None
) -> OrderList:
    """Your orders, newest first, in keyset pages (`next_cursor`)."""
    page = await service.list_customer_orders(conn, user_id=user.id, limit=limit, cursor=cursor)
    return OrderList(items=[OrderRead.of(o) for o in page.items], next_cursor=page.next_cursor)


@router.get("/orders/{order_id}", response_model=OrderRead)
async def get_order(conn: Conn, user: CurrentUser, order_id: str) -> OrderRead:
    """One order: its owner, staff and admins see it; for anyone else it does not exist (404)."""
    order = await service.get_order_for(conn, order_id=_order_id(order_id), caller=_caller(user))
    return OrderRead.of(order)


@router.get("/orders/{order_id}/events", response_model=OrderEventList, dependencies=SHORT_LIST)
async def list_order_events(conn: Conn, user: CurrentUser, order_id: str) -> OrderEventList:
    """The order's audit trail, oldest first: who changed it, when, from what, to what, why."""
    events = await service.list_events(conn, order_id=_order_id(order_id), caller=_caller(user))
    return OrderEventList(items=[OrderEventRead.of(e) for e in events], next_cursor=None)


@router.post(
    "/orders/{order_id}/cancel", response_model=OrderRead, responses=problem_responses(409)
)
async def cancel_order(
    request: Request,
    conn: Conn,
    user: CurrentUser,
    order_id: str,
    body: CancelRequest | None = None,
) -> OrderRead:
    """Cancel the order: stock goes back on hand and the payment is voided.

    The owner may cancel until the order ships (then 409 `invalid_transition`);
    staff and admins whenever the transition table allows. Concurrent cancels
    of one order: one succeeds, the others get 409, and stock and money move
    once.
    """
    oid = _order_id(order_id)
    async with conn.transaction():
        cancellation = await service.cancel_order(
            conn,
            order_id=oid,
            caller=_caller(user),
            reason=None if body is None else body.reason,
        )
    await _give_money_back(conn, payment_gateway(request), cancellation.reversal)
    if cancellation.reversal is None:
        return OrderRead.of(cancellation.order)
    # Read again: the payment's status changed if the void went through just now.
    return OrderRead.of(await service.get_order_for(conn, order_id=oid, caller=_caller(user)))


# ---------------------------------------------------------------- back office


@router.get("/admin/orders", response_model=OrderList, responses=problem_responses(403))
async def list_orders(
    conn: Conn,
    staff: StaffUser,
    status: OrderStatus | None = None,
    customer: Annotated[
        str | None,
        Query(min_length=1, max_length=254, description="A customer's user id or email."),
    ] = None,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> OrderList:
    """Every order, newest first; filter by `status` and by `customer` (user id or email)."""
    page = await service.list_all_orders(
        conn, status=status, customer=customer, limit=limit, cursor=cursor
    )
    return OrderList(items=[OrderRead.of(o) for o in page.items], next_cursor=page.next_cursor)


@router.post(
    "/admin/orders/{order_id}/fulfill",
    response_model=OrderRead,
    responses=problem_responses(403, 409),
)
async def fulfill_order(tx: Tx, staff: StaffUser, order_id: str) -> OrderRead:
    """paid → fulfilling. Any other status: 409 `invalid_transition`."""
    order = await service.fulfill_order(tx, order_id=_order_id(order_id), caller=_caller(staff))
    return OrderRead.of(order)


@router.post(
    "/admin/orders/{order_id}/ship", response_model=OrderRead, responses=problem_responses(403, 409)
)
async def ship_order(
    tx: Tx, staff: StaffUser, order_id: str, body: ShipRequest | None = None
) -> OrderRead:
    """paid | fulfilling → shipped, recording the carrier and tracking number when given."""
    order = await service.ship_order(
        tx,
        order_id=_order_id(order_id),
        caller=_caller(staff),
        carrier=None if body is None else body.carrier,
        tracking_number=None if body is None else body.tracking_number,
    )
    return OrderRead.of(order)


@router.post(
    "/admin/orders/{order_id}/deliver",
    response_model=OrderRead,
    responses=problem_responses(403, 409),
)
async def deliver_order(tx: Tx, staff: StaffUser, order_id: str) -> OrderRead:
    """shipped → delivered. Any other status: 409 `invalid_transition`."""
    order = await service.deliver_order(tx, order_id=_order_id(order_id), caller=_caller(staff))
    return OrderRead.of(order)


@router.post(
    "/admin/orders/{order_id}/refunds",
    status_code=201,
    response_model=RefundRead,
    responses=problem_responses(403, 409),
)
async def refund_order(
    request: Request, conn: Conn, staff: StaffUser, order_id: str, body: RefundCreate
) -> RefundRead:
    """Give money back: `amount` (default: everything still refundable) with a `reason`.

    A partial refund keeps the order's status; reaching the total makes it
    `refunded`. More than what remains → 422 `invalid_refund_amount`; a
    cancelled or refunded order → 409 `invalid_transition`. The refund is
    `succeeded` once the gateway confirmed it, `pending` while it is retried.
    """
    async with conn.transaction():
        pending = await service.refund_order(
            conn,
            order_id=_order_id(order_id),
            caller=_caller(staff),
            amount=None if body.amount is None else body.amount.to_money(),
            reason=body.reason,
        )
    await _give_money_back(conn, payment_gateway(request), pending)
    refund = await service.get_refund(conn, refund_id=pending.refund.id)
    return RefundRead.of(refund or pending.refund)
