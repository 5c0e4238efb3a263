"""Checkout: a cart becomes a paid order exactly once, and stock is never oversold.

`check_out` is the one use case that owns its transactions: the payment call
must sit *between* two of them, outside both, so the request boundary hands it
a connection that is not in a transaction. Everything else here takes `tx`.

1. Reserve. Claim the Idempotency-Key (or answer what an earlier request
   with it decided) and read the cart, in one statement that commits the
   claim at once; check and price the cart as read; then, in one statement,
   insert a `reserved` checkout attempt (one live attempt per cart, by a
   unique index; it draws the order's number) and take its stock
   (conditional updates under SKU-ordered row locks), only if the cart is
   still at the version checked. With a coupon, a cart changed meanwhile or
   a live attempt, the same is done in a short transaction under the cart's
   lock, coupon redemption included. A business error reserves nothing and
   is stored under the key, so the same key replays it; any other failure
   gives the key back.
2. Charge the card under the attempt's own payment key, with no transaction
   open and no row locked.
3. Confirm. The order is fully known by now (its number came with the
   attempt), so its 201 body is rendered first; then one statement, atomic
   without a transaction, closes the cart, moves the attempt `reserved` →
   `confirmed`, writes the paid order with its `order.paid` webhook event,
   sells the stock and stores the 201 under the key. If the sweeper released
   the attempt first, or the stock is short, the statement aborts itself
   (nothing written) and the charge is voided. A coupon's redemption joins
   the statement in a transaction. Or, when the payment failed, release:
   stock and coupon back, attempt `released`, cart untouched.

Row locks are always taken in one order, by reservations, confirmations and
the sweeper alike: cart, attempt, (the customer's advisory locks, for a coupon
limited per customer), coupon, variants (by SKU); the reservation
without a coupon locks the variants before it inserts the attempt, which
never waits on another attempt (see `repository.reserve_if_unchanged`).

A crash anywhere leaves at worst a `reserved` attempt and an in-flight key,
the attempt expiring a moment before the key's lease:
`release_expired_reservations` (a periodic job) gives the stock and coupon
back and queues a void of any charge made under the attempt's payment key; a
retry with the same key takes the key over.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import structlog

from congocart.carts import service as carts
from congocart.carts.domain import CartOwner
from congocart.catalog import service as catalog
from congocart.checkout import repository
from congocart.checkout.domain import (
    RESERVATION_MARGIN,
    RESERVATION_TTL,
    NewAttempt,
    ReservedAttempt,
    ShippingAddress,
    merge_lines,
    payment_key_for,
)
from congocart.checkout.errors import (
    CheckoutInProgress,
    IdempotencyKeyInFlight,
    PaymentDeclined,
    PaymentTimeout,
    PaymentUnavailable,
)
from congocart.core import idempotency, jobs
from congocart.core.db import Connection, aborted
from congocart.core.errors import CongoError
from congocart.orders import service as orders
from congocart.orders.domain import Order, OrderLineDraft, PaymentRecord
from congocart.payments import domain as gateway_errors
from congocart.payments import service as payments
from congocart.payments.domain import PaymentGateway, PaymentResult
from congocart.promotions import service as promotions
from congocart.promotions.domain import Coupon

log = structlog.get_logger(__name__)

VOID_PAYMENT_JOB = "void_abandoned_payment"
# A timed-out charge may still land at the provider after we gave up on it: the
# queued void looks again once a late answer has had time to settle.
VOID_SETTLE_DELAY = timedelta(seconds=30)
# Expired attempts one sweep releases at most; the next sweep takes the rest.
SWEEP_BATCH = 200

RenderOrder = Callable[[Order], Any]


@dataclass(frozen=True, slots=True)
class CheckoutRequest:
    cart_id: UUID
    owner: CartOwner
    # Already defaulted to the signed-in customer's address when not given.
    email: str
    shipping_address: ShippingAddress
    shipping_method: str | None
    payment_token: str


@dataclass(frozen=True, slots=True)
class IdempotentCall:
    """The request's Idempotency-Key, where it applies, and the request's hash."""

    scope: str
    key: str
    request_hash: bytes


@dataclass(frozen=True, slots=True)
class CheckoutResponse:
    """What to answer: the new order (201), or a replay of an earlier answer."""

    status: int
    body: Any
    replayed: bool


@dataclass(frozen=True, slots=True)
class _Reservation:
    cart: carts.CheckoutCart
    attempt: ReservedAttempt
    order_number: int  # drawn with the attempt, carried by its order


class _ReservationLost(Exception):
    """The attempt was no longer `reserved` when the payment came back."""


def idempotency_scope(*, cart_id: UUID, user_id: UUID | None) -> str:
    """Keys are per signed-in customer, or per guest cart."""
    return f"user:{user_id}" if user_id is not None else f"cart:{cart_id}"


async def check_out(
    conn: Connection,
    *,
    gateway: PaymentGateway,
    call: IdempotentCall,
    request: CheckoutRequest,
    render_order: RenderOrder,
    tax_rates: Mapping[str, Decimal] | None = None,
) -> CheckoutResponse:
    """Place the order for a cart and take its payment (see the module docstring).

    `conn` must not be in a transaction. Raises the cart, stock, coupon and
    payment errors of the contract's "Checkout" section; `render_order` gives
    the 201 body that is stored for replays.
    """
    now = datetime.now(UTC)

    # 1. Reserve. The key is claimed first, on its own: from then on a request
    # with the same key sees it in flight, and every way out of this step
    # either stores a final answer under it or gives it back.
    claimed, read = await _claim(conn, call=call, cart_id=request.cart_id)
    if isinstance(claimed, idempotency.StoredResponse):
        return CheckoutResponse(claimed.status, claimed.body, replayed=True)
    claim = claimed
    try:
        reservation = await _reserve_unlocked(
            conn, claim=claim, read=read, request=request, tax_rates=tax_rates, now=now
        )
        if reservation is None:
            async with conn.transaction():
                reservation = await _reserve(
                    conn, claim=claim, request=request, tax_rates=tax_rates, now=now
                )
    except Exception as exc:
        if isinstance(exc, CongoError) and _is_final(exc):
            await idempotency.complete(
                conn, claim, status=exc.status_code, body=problem_document(exc)
            )
        else:
            await idempotency.release(conn, claim)
        raise
    attempt = reservation.attempt

    # 2. Charge. Deliberately outside any transaction: the provider may take
    # seconds, and no cart, coupon or stock row may stay locked meanwhile (every
    # other checkout of those SKUs would queue behind it). The committed
    # reservation is what keeps the stock ours while we wait.
    try:
        charge = await payments.charge_card(
            gateway,
            idempotency_key=attempt.payment_key,
            amount=attempt.amount,
            token=request.payment_token,
        )
    except gateway_errors.PaymentDeclined as exc:
        declined = PaymentDeclined(f"{exc} Nothing was charged.")
        await _give_up(conn, gateway, claim, attempt, answer=declined, maybe_charged=False)
        raise declined from exc
    except gateway_errors.PaymentUnavailable as exc:
        await _give_up(conn, gateway, claim, attempt, answer=None, maybe_charged=False)
        raise PaymentUnavailable() from exc
    except gateway_errors.PaymentTimeout as exc:
        # The charge may exist: release now, and void whatever the provider holds
        # under the payment key (now, and once more after it had time to settle).
        await _give_up(conn, gateway, claim, attempt, answer=None, maybe_charged=True)
        raise PaymentTimeout() from exc
    except Exception:
        # Any other failure leaves the outcome as unknown as a timeout does.
        await _give_up(conn, gateway, claim, attempt, answer=None, maybe_charged=True)
        raise

    # 3. Confirm.
    try:
        body = await _confirm(
            conn,
            claim=claim,
            reservation=reservation,
            request=request,
            gateway=gateway,
            charge=charge,
            render_order=render_order,
        )
    except _ReservationLost as exc:
        # We came back after the reservation expired and was released: the
        # customer must not pay for an order that does not exist.
        await _give_up(conn, gateway, claim, attempt, answer=None, maybe_charged=charge is not None)
        raise PaymentTimeout(
            "The payment took too long and the reservation expired; "
            "any charge made will be reversed. Please try again."
        ) from exc
    except CongoError as exc:
        final = _is_final(exc)
        await _give_up(
            conn,
            gateway,
            claim,
            attempt,
            answer=exc if final else None,
            maybe_charged=charge is not None,
        )
        raise
    except Exception:
        await _give_up(conn, gateway, claim, attempt, answer=None, maybe_charged=charge is not None)
        raise
    return CheckoutResponse(201, body, replayed=False)


async def _claim(
    conn: Connection, *, call: IdempotentCall, cart_id: UUID
) -> tuple[idempotency.Claim | idempotency.StoredResponse, Any]:
    """Claim the key (committed at once), and read the cart in the same statement.

    A key held or used before is settled by `idempotency.claim` in a short
    transaction of its own (replayed, refused, or taken over).
    """
    first = await repository.claim_and_read(
        conn,
        claim_key=lambda p: idempotency.claim_sql(
            p,
            scope=call.scope,
            key=call.key,
            request_hash=call.request_hash,
            lease=RESERVATION_TTL,
        ),
        read_cart=lambda p: carts.checkout_read_sql(p, cart_id=cart_id),
    )
    if first["claimed_until"] is not None:
        claim = idempotency.Claim(
            call.scope, call.key, call.request_hash, first["claimed_until"], took_over=False
        )
        return claim, first
    async with conn.transaction():
        claimed = await idempotency.claim(
            conn,
            scope=call.scope,
            key=call.key,
            request_hash=call.request_hash,
            lease=RESERVATION_TTL,
        )
    return claimed, first


def _new_attempt(cart: carts.CheckoutCart) -> ReservedAttempt:
    attempt_id = uuid4()
    return ReservedAttempt(
        id=attempt_id,
        cart_id=cart.cart_id,
        payment_key=payment_key_for(attempt_id),
        lines=cart.quantities,
        amount=cart.totals.total,
        coupon_code=None if cart.coupon is None else cart.coupon.code,
    )


async def _reserve_unlocked(
    conn: Connection,
    *,
    claim: idempotency.Claim,
    read: Any,
    request: CheckoutRequest,
    tax_rates: Mapping[str, Decimal] | None,
    now: datetime,
) -> _Reservation | None:
    """The usual reservation, without a transaction: the cart as `_claim` read
    it is checked, then one statement inserts the attempt and takes its stock
    if the cart is still at the version checked and has no live attempt.

    None when that does not apply (a coupon, whose redemption is taken between
    the attempt and the stock; a cart changed since the read; a live attempt):
    then `_reserve` does it under the cart's lock. Raises the cart's errors and
    `OutOfStock` (nothing reserved).
    """
    cart = await carts.cart_for_checkout(
        conn,
        read,
        owner=request.owner,
        country=request.shipping_address.country,
        shipping_method=request.shipping_method,
        now=now,
        email=request.email,
        tax_rates=tax_rates,
    )
    attempt = _new_attempt(cart)
    if attempt.coupon_code is not None:
        return None
    row = await repository.reserve_if_unchanged(
        conn,
        cart_unchanged=lambda p: carts.unchanged_sql(p, cart_id=cart.cart_id, version=cart.version),
        new=_to_insert(attempt, claim=claim, cart=cart, request=request),
        stock_locked=lambda p, only_if: catalog.reserve_stock_lock_sql(
            p, lines=attempt.lines, only_if=only_if
        ),
        stock_taken=catalog.reserve_stock_take_sql,
        all_available=catalog.RESERVE_STOCK_AVAILABLE,
        reserved_column=catalog.RESERVE_STOCK_OUTCOME,
    )
    if not (row["cart_unchanged"] and row["no_live_attempt"]):
        return None
    if not row["inserted"]:
        if not row["all_available"]:
            # A line is short: nothing was inserted or taken; say which.
            catalog.reserved_or_raise(attempt.lines, row["reserved"])
        # Every line was there, but another checkout's attempt for the cart was
        # committed after this statement's snapshot: settle it under the lock.
        return None
    catalog.reserved_or_raise(attempt.lines, row["reserved"])
    return _Reservation(cart=cart, attempt=attempt, order_number=row["order_number"])


def _expiry(claim: idempotency.Claim) -> datetime:
    """A reservation expires a moment before its key's lease: a request can take
    a crashed request's key over only once its reservation may be released."""
    return claim.lease_until - RESERVATION_MARGIN


async def _reserve(
    tx: Connection,
    *,
    claim: idempotency.Claim,
    request: CheckoutRequest,
    tax_rates: Mapping[str, Decimal] | None,
    now: datetime,
) -> _Reservation:
    """The reservation under the cart's lock, in the caller's transaction."""
    cart = await carts.lock_cart_for_checkout(
        tx,
        cart_id=request.cart_id,
        owner=request.owner,
        country=request.shipping_address.country,
        shipping_method=request.shipping_method,
        now=now,
        email=request.email,
        tax_rates=tax_rates,
    )
    attempt = _new_attempt(cart)
    new = _to_insert(attempt, claim=claim, cart=cart, request=request)
    number = await repository.insert_attempt(tx, new)
    if number is None:
        # The cart has a live attempt. If it expired (its checkout crashed),
        # release it here rather than make the customer wait for the sweeper.
        stale = await repository.lock_expired_attempt_of_cart(tx, cart_id=cart.cart_id)
        if stale is None:
            if claim.took_over:
                raise IdempotencyKeyInFlight()
            raise CheckoutInProgress()
        await _release(tx, [stale], void_after=timedelta(0))
        number = await repository.insert_attempt(tx, new)
        assert number is not None, "the only live attempt of a locked cart was just released"
    if cart.coupon is not None:
        await _hold_coupon(tx, coupon=cart.coupon, attempt=attempt, cart=cart, email=request.email)
    await catalog.reserve_stock(tx, lines=attempt.lines)
    return _Reservation(cart=cart, attempt=attempt, order_number=number)


async def _hold_coupon(
    tx: Connection,
    *,
    coupon: Coupon,
    attempt: ReservedAttempt,
    cart: carts.CheckoutCart,
    email: str,
) -> None:
    """Take the coupon's redemption for the attempt, in its transaction.

    With a per-customer limit, under the customer's lock, the customer's other
    live attempts holding the coupon count as used: two checkouts of one
    customer can never both pass the limit (each attempt inserted records
    its customer; a hold ends when its attempt is confirmed or released).
    """
    if coupon.per_customer_limit is None:
        await promotions.reserve_redemption(tx, code=coupon.code)
        return
    await promotions.lock_customer(tx, code=coupon.code, user_id=cart.user_id, email=email)
    holds = await repository.count_coupon_holds(
        tx, code=coupon.code, user_id=cart.user_id, email=email, other_than=attempt.id
    )
    await promotions.reserve_redemption(
        tx,
        code=coupon.code,
        customer=promotions.CustomerHolds(user_id=cart.user_id, email=email, other_holds=holds),
    )


def _to_insert(
    attempt: ReservedAttempt,
    *,
    claim: idempotency.Claim,
    cart: carts.CheckoutCart,
    request: CheckoutRequest,
) -> NewAttempt:
    return NewAttempt(
        reservation=attempt,
        user_id=cart.user_id,
        email=request.email,
        idempotency_key=claim.key,
        expires_at=_expiry(claim),
    )


async def _confirm(
    conn: Connection,
    *,
    claim: idempotency.Claim,
    reservation: _Reservation,
    request: CheckoutRequest,
    gateway: PaymentGateway,
    charge: PaymentResult | None,
    render_order: RenderOrder,
) -> Any:
    """Write the paid order and its answer; returns the 201 body.

    One statement without a transaction (see `repository.confirm`). With a
    coupon, its redemption joins it in a transaction.
    """
    cart, attempt = reservation.cart, reservation.attempt
    payment_ref = None if charge is None else charge.payment_ref
    totals = cart.totals
    draft = orders.paid_order(
        number=reservation.order_number,
        cart_id=cart.cart_id,
        checkout_attempt_id=attempt.id,
        user_id=cart.user_id,
        email=request.email,
        currency=cart.currency,
        lines=[
            OrderLineDraft(
                sku=line.sku, name=line.name, unit_price=line.unit_price, quantity=line.quantity
            )
            for line in cart.lines
        ],
        subtotal=totals.subtotal,
        discount=totals.discount,
        shipping=totals.shipping,
        tax=totals.tax,
        total=totals.total,
        tax_rate=totals.tax_rate,
        coupon_code=attempt.coupon_code,
        shipping_method=cart.shipping_method.code,
        shipping_address=request.shipping_address.as_document(),
        payment=PaymentRecord(
            gateway=gateway.name,
            gateway_ref=payment_ref,
            amount=attempt.amount,
            brand=None if charge is None else charge.brand,
            last4=None if charge is None else charge.last4,
        ),
    )
    # The answer is known before the order is written, so it is stored by
    # the same statement: an order never exists without its answer.
    body = render_order(draft.order)
    confirm = repository.confirm(
        conn,
        attempt_id=attempt.id,
        payment_ref=payment_ref,
        cart_closed=lambda p: carts.checked_out_sql(
            p, cart_id=cart.cart_id, expected_version=cart.version
        ),
        order_written=lambda p, only_if: orders.paid_order_sql(p, draft, only_if=only_if),
        stock_sold=lambda p, only_if: catalog.commit_stock_sql(
            p, lines=attempt.lines, only_if=only_if
        ),
        sold_count=f"cardinality({catalog.COMMIT_STOCK_OUTCOME})",
        lines=len(attempt.lines),
        answered=lambda p, only_if: idempotency.complete_sql(
            p, claim, status=201, body=body, only_if=only_if
        ),
    )
    try:
        if attempt.coupon_code is None:
            closed = await confirm
        else:
            async with conn.transaction():
                closed = await confirm
                if closed:
                    await promotions.record_redemption(
                        conn,
                        code=attempt.coupon_code,
                        order_id=draft.order.id,
                        user_id=cart.user_id,
                        email=request.email,
                    )
    except asyncpg.RaiseError as exc:
        reason = aborted(exc)
        if reason == repository.RESERVATION_LOST:
            raise _ReservationLost from exc
        if reason == repository.STOCK_NOT_RESERVED:
            catalog.sold_or_raise(attempt.lines, sold=[])  # the abort undid every sale
        raise
    await carts.checked_out_or_raise(conn, cart_id=cart.cart_id, closed=closed)
    return body


async def _give_up(
    conn: Connection,
    gateway: PaymentGateway,
    claim: idempotency.Claim,
    attempt: ReservedAttempt,
    *,
    answer: CongoError | None,
    maybe_charged: bool,
) -> None:
    """End an attempt that will not become an order.

    Releases its reservation (unless the sweeper already did), then stores
    `answer` under the key, or gives the key back when there is no final
    answer (the client may retry the same request). With `maybe_charged`, the
    charge under the attempt's payment key is voided, now and again by a job.
    A charge is never voided for an attempt that was confirmed: that is an
    order's payment.
    """
    async with conn.transaction():
        released = await _release(
            conn, [attempt], void_after=VOID_SETTLE_DELAY if maybe_charged else None
        )
        status = (
            "released"
            if released
            else await repository.get_attempt_status(conn, payment_key=attempt.payment_key)
        )
        if answer is not None:
            await idempotency.complete(
                conn, claim, status=answer.status_code, body=problem_document(answer)
            )
        else:
            await idempotency.release(conn, claim)
    if maybe_charged and status == "released":
        try:
            await payments.void_charge(gateway, idempotency_key=attempt.payment_key)
        except Exception as exc:  # the queued job retries it
            log.warning("checkout_void_deferred", payment_key=attempt.payment_key, error=repr(exc))


async def _release(
    tx: Connection, attempts: list[ReservedAttempt], *, void_after: timedelta | None
) -> list[ReservedAttempt]:
    """Release attempts still `reserved`: coupon and stock back; returns those released.

    With `void_after`, a job voids whatever charge each one's payment key holds.
    """
    released_ids = set(await repository.release_attempts(tx, [a.id for a in attempts]))
    released = [a for a in attempts if a.id in released_ids]
    for attempt in released:
        if attempt.coupon_code is not None:
            await promotions.release_redemption(tx, code=attempt.coupon_code)
    await catalog.release_stock(tx, lines=merge_lines(released))
    if void_after is not None:
        for attempt in released:
            if not attempt.amount.is_zero():
                await _enqueue_void(tx, payment_key=attempt.payment_key, delay=void_after)
    return released


async def _enqueue_void(tx: Connection, *, payment_key: str, delay: timedelta) -> None:
    run_at = datetime.now(UTC) + delay if delay > timedelta(0) else None
    await jobs.enqueue(
        tx,
        kind=VOID_PAYMENT_JOB,
        payload={"payment_key": payment_key},
        run_at=run_at,
        dedupe_key=f"{VOID_PAYMENT_JOB}:{payment_key}",
        max_attempts=20,
    )


# ---------------------------------------------------------------- background work


async def release_expired_reservations(
    tx: Connection, *, now: datetime, limit: int = SWEEP_BATCH
) -> list[ReservedAttempt]:
    """Release reserved attempts whose checkout never finished (it crashed).

    Their stock and coupon redemptions come back and a void of any charge made
    under their payment keys is queued (`void_abandoned_payment`), in this
    transaction: the void happens if and only if the release commits, and an
    attempt released can never be confirmed afterwards. Returns the released.
    """
    expired = await repository.lock_expired_attempts(tx, before=now, limit=limit)
    if not expired:
        return []
    released = await _release(tx, expired, void_after=timedelta(0))
    if released:
        log.info("checkout_reservations_released", count=len(released))
    return released


async def void_abandoned_payment(
    conn: Connection, *, gateway: PaymentGateway, payment_key: str
) -> None:
    """Void the charge made under a released attempt's payment key, if there is one.

    Idempotent (the gateway voids once per key). Refuses to touch the payment
    of an attempt that became an order.
    """
    status = await repository.get_attempt_status(conn, payment_key=payment_key)
    if status == "confirmed":
        log.error("checkout_void_refused", payment_key=payment_key, reason="attempt confirmed")
        return
    reversal = await payments.void_charge(gateway, idempotency_key=payment_key)
    if reversal is not None:
        log.info("checkout_payment_voided", payment_key=payment_key, ref=reversal.ref)


# ---------------------------------------------------------------- answers


def _is_final(exc: CongoError) -> bool:
    """An answer the key keeps giving: the owner's request failed for good.

    Not the transient ones (the key or the cart is busy), not the 5xx ones
    (the client should retry the same request), and not "who are you" answers
    (401/403/404): a caller who is not the cart's owner must not be able to
    spend or poison a key the owner might use.
    """
    if isinstance(exc, IdempotencyKeyInFlight | CheckoutInProgress):
        return False
    if isinstance(exc, idempotency.IdempotencyKeyReused):
        return False
    return exc.status_code < 500 and exc.status_code not in (401, 403, 404)


def problem_document(exc: CongoError) -> dict[str, Any]:
    """The parts of a problem+json answer stored for replays (the request id is not one)."""
    document: dict[str, Any] = {"code": exc.code, "detail": exc.detail}
    if exc.title is not None:
        document["title"] = exc.title
    if exc.errors:
        document["errors"] = exc.errors
    return document
