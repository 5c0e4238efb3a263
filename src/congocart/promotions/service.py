"""Coupons: admin writes and reads, applicability checks for carts, and redemption.

The redemption counter (`coupons.redemptions`) counts live reservations plus
completed orders. Checkout takes one with `reserve_redemption` (a guarded
conditional update: it can never pass `max_redemptions`, however many
checkouts race), gives it back with `release_redemption` when the payment
fails or the order is cancelled, and writes who used it with
`record_redemption` when the order is confirmed. A per-customer limit is
checked there too, under the customer's lock (`lock_customer`), counting the
customer's other checkouts that hold the coupon at that moment.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from congocart.core.db import Connection
from congocart.core.errors import ValidationFailed
from congocart.core.money import Money
from congocart.core.pagination import decode_time_cursor, encode_cursor
from congocart.promotions import repository
from congocart.promotions.domain import (
    Coupon,
    CouponNotApplicable,
    CouponRecord,
    CouponUnknown,
    CouponUsedUp,
    normalize_code,
)
from congocart.promotions.errors import CouponCodeTaken, CouponInvalid, CouponUnavailable

__all__ = [
    "Coupon",
    "CouponPage",
    "CouponRecord",
    "CustomerHolds",
    "create_coupon",
    "customer_redemptions",
    "get_applicable_coupon",
    "get_coupon",
    "list_coupons",
    "lock_customer",
    "record_redemption",
    "release_redemption",
    "reserve_redemption",
]


# ---------------------------------------------------------------- admin


async def create_coupon(tx: Connection, *, coupon: Coupon, currency: str) -> CouponRecord:
    """Store a new coupon. Its money fields must be in the shop `currency`.

    409 `coupon_code_taken` when the (case-insensitive) code exists.
    """
    if coupon.currency is not None and coupon.currency != currency:
        field = "amount_off" if coupon.amount_off is not None else "min_subtotal"
        raise ValidationFailed(
            f"Coupon amounts must be in the shop currency, {currency}.",
            errors=[{"field": field, "message": f"must be in {currency}"}],
        )
    record = await repository.insert_coupon(tx, coupon, currency=currency)
    if record is None:
        raise CouponCodeTaken(f"A coupon with the code {coupon.code!r} already exists.")
    return record


@dataclass(frozen=True, slots=True)
class CouponPage:
    items: list[CouponRecord]
    next_cursor: str | None


async def list_coupons(conn: Connection, *, limit: int, cursor: str | None) -> CouponPage:
    """Coupons, newest first, with their redemption counts."""
    after = None if cursor is None else decode_time_cursor(cursor)
    records = await repository.list_coupons(conn, after=after, limit=limit + 1)
    items = records[:limit]
    next_cursor = None
    if len(records) > limit:
        last = items[-1]
        next_cursor = encode_cursor([last.created_at.isoformat(), str(last.id)])
    return CouponPage(items, next_cursor)


# ---------------------------------------------------------------- carts


async def get_coupon(conn: Connection, *, code: str) -> Coupon | None:
    """The coupon with this code (any case), or None."""
    return await repository.get_coupon(conn, normalize_code(code))


async def get_applicable_coupon(
    conn: Connection,
    *,
    code: str,
    subtotal: Money,
    user_id: UUID | None,
    email: str | None,
    now: datetime,
    used_up_is_conflict: bool = False,
) -> Coupon:
    """The coupon `code`, if it may be used now on a cart with this `subtotal`.

    Raises 422 `coupon_invalid` saying why not (unknown, not started, expired,
    used up, the customer's limit reached, minimum not met). With
    `used_up_is_conflict` (checkout re-checking a coupon applied earlier), a
    coupon used up meanwhile is 409 `coupon_unavailable` instead: the client did
    nothing wrong, a concurrent order took the last redemption.
    """
    code = normalize_code(code)
    found = await repository.get_coupon_for_customer(conn, code, user_id=user_id, email=email)
    try:
        if found is None:
            raise CouponUnknown(code)
        coupon, redemptions = found
        coupon.ensure_applicable(subtotal=subtotal, now=now, customer_redemptions=redemptions)
    except CouponUsedUp as exc:
        if used_up_is_conflict:
            raise CouponUnavailable(str(exc)) from exc
        raise CouponInvalid(str(exc)) from exc
    except CouponNotApplicable as exc:
        raise CouponInvalid(str(exc)) from exc
    return coupon


# ---------------------------------------------------------------- checkout


@dataclass(frozen=True, slots=True)
class CustomerHolds:
    """Who is redeeming a coupon, and how many of their other checkouts hold it now."""

    user_id: UUID | None
    email: str
    other_holds: int


async def lock_customer(tx: Connection, *, code: str, user_id: UUID | None, email: str) -> None:
    """Until the transaction ends, serialise the checkouts of this customer (the
    same user, or the same email: either counts toward a per-customer limit)
    that use coupon `code`, so each counts the holds of those before it."""
    keys = [f"coupon-customer:{normalize_code(code)}:email:{email.lower()}"]
    if user_id is not None:
        keys.append(f"coupon-customer:{normalize_code(code)}:user:{user_id}")
    await repository.lock_keys(tx, keys)


async def reserve_redemption(
    tx: Connection, *, code: str, customer: CustomerHolds | None = None
) -> None:
    """Take one redemption of `code` for an order being placed, in one conditional update.

    Raises 409 `coupon_unavailable` when none is left (or the coupon is gone).
    With `customer` (taken under `lock_customer`), the coupon's per-customer
    limit must also hold: the customer's redemptions plus their other
    checkouts holding the coupon right now stay below it. Pair with
    `release_redemption` when the checkout fails or the order is cancelled,
    and with `record_redemption` when the order is confirmed.
    """
    code = normalize_code(code)
    if customer is not None:
        found = await repository.get_coupon_for_customer(
            tx, code, user_id=customer.user_id, email=customer.email
        )
        if found is not None:
            coupon, used = found
            limit = coupon.per_customer_limit
            if limit is not None and used + customer.other_holds >= limit:
                raise CouponUnavailable(
                    "You have used this coupon as often as it allows, counting an order "
                    "being placed with it now; nothing was charged."
                )
    if not await repository.increment_redemptions(tx, code):
        raise CouponUnavailable()


async def release_redemption(tx: Connection, *, code: str) -> None:
    """Give back a redemption taken by `reserve_redemption` (failed or cancelled checkout).

    Never takes the counter below zero; a coupon deleted meanwhile is ignored.
    """
    await repository.decrement_redemptions(tx, normalize_code(code))


async def record_redemption(
    tx: Connection, *, code: str, order_id: UUID, user_id: UUID | None, email: str
) -> None:
    """Write which order (and customer) used the coupon; counts toward per-customer limits.

    Idempotent per order. The counter itself was moved by `reserve_redemption`.
    """
    if not await repository.insert_redemption(
        tx, normalize_code(code), order_id=order_id, user_id=user_id, email=email
    ):
        raise CouponUnavailable("The coupon no longer exists.")


async def customer_redemptions(
    conn: Connection, *, code: str, user_id: UUID | None, email: str | None
) -> int:
    """How many orders of this customer (same user, or same email) used the coupon."""
    return await repository.count_customer_redemptions(
        conn, normalize_code(code), user_id=user_id, email=email
    )
