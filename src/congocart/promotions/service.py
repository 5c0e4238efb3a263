"""Coupons: admin writes and reads, applicability checks for carts, and redemption.

The redemption counter (`coupons.redemptions`) counts live reservations plus
completed orders. Checkout takes one with `reserve_redemption` (a guarded
conditional update: it can never pass `max_redemptions`, however many
checkouts race), gives it back with `release_redemption` when the payment
fails or the order is cancelled, and writes who used it with
`record_redemption` when the order is confirmed.
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
    "create_coupon",
    "customer_redemptions",
    "get_applicable_coupon",
    "get_coupon",
    "list_coupons",
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


async def reserve_redemption(tx: Connection, *, code: str) -> None:
    """Take one redemption of `code` for an order being placed, in one conditional update.

    Raises 409 `coupon_unavailable` when none is left (or the coupon is gone).
    Pair with `release_redemption` when the checkout fails or the order is
    cancelled, and with `record_redemption` when the order is confirmed.
    """
    if not await repository.increment_redemptions(tx, normalize_code(code)):
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
