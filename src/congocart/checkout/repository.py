"""Checkout SQL: the `checkout_attempts` rows that hold a checkout's reservation.

An attempt changes state only by a conditional UPDATE from `reserved`, so a
request confirming it and the sweeper releasing it can never both win: the
row lock orders them, and the loser's WHERE no longer matches.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from uuid import UUID

import asyncpg

from congocart.checkout.domain import ReservedAttempt
from congocart.core.db import Connection
from congocart.core.money import Money

_ATTEMPT_COLUMNS = "id, cart_id, payment_key, reserved_lines, amount_minor, currency, coupon_code"


def _attempt(row: asyncpg.Record) -> ReservedAttempt:
    return ReservedAttempt(
        id=row["id"],
        cart_id=row["cart_id"],
        payment_key=row["payment_key"],
        lines={line["sku"]: line["quantity"] for line in row["reserved_lines"]},
        amount=Money.from_minor(row["amount_minor"], row["currency"].strip()),
        coupon_code=row["coupon_code"],
    )


async def insert_attempt(
    tx: Connection,
    *,
    attempt_id: UUID,
    cart_id: UUID,
    idempotency_key: str,
    payment_key: str,
    lines: Mapping[str, int],
    amount: Money,
    coupon_code: str | None,
    ttl: timedelta,
) -> bool:
    """Insert a `reserved` attempt; False when the cart already has a live one.

    The partial unique index (one `reserved` attempt per cart) decides, so two
    checkouts of one cart can never both hold stock.
    """
    inserted = await tx.fetchval(
        """
        INSERT INTO checkout_attempts
            (id, cart_id, idempotency_key, payment_key, reserved_lines,
             amount_minor, currency, coupon_code, expires_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now() + make_interval(secs => $9))
        ON CONFLICT (cart_id) WHERE status = 'reserved' DO NOTHING
        RETURNING true
        """,
        attempt_id,
        cart_id,
        idempotency_key,
        payment_key,
        [{"sku": sku, "quantity": quantity} for sku, quantity in lines.items()],
        amount.to_minor(),
        amount.currency,
        coupon_code,
        ttl.total_seconds(),
    )
    return bool(inserted)


async def confirm_attempt(tx: Connection, *, attempt_id: UUID, payment_ref: str | None) -> bool:
    """`reserved` → `confirmed`; False when it is no longer reserved (the sweeper won)."""
    result: str = await tx.execute(
        """
        UPDATE checkout_attempts
        SET status = 'confirmed', payment_ref = $2, updated_at = now()
        WHERE id = $1 AND status = 'reserved'
        """,
        attempt_id,
        payment_ref,
    )
    return result == "UPDATE 1"


async def release_attempts(tx: Connection, attempt_ids: Sequence[UUID]) -> list[UUID]:
    """`reserved` → `released` for those still reserved; returns the ones released."""
    rows = await tx.fetch(
        """
        UPDATE checkout_attempts
        SET status = 'released', updated_at = now()
        WHERE id = ANY($1::uuid[]) AND status = 'reserved'
        RETURNING id
        """,
        list(attempt_ids),
    )
    return [row["id"] for row in rows]


async def lock_expired_attempts(
    tx: Connection, *, before: datetime, limit: int
) -> list[ReservedAttempt]:
    """Reserved attempts expired before `before`, oldest first, row-locked.

    SKIP LOCKED: an attempt whose checkout is confirming or releasing it right
    now is left to that checkout, and concurrent sweeps split the work.
    """
    rows = await tx.fetch(
        f"""
        SELECT {_ATTEMPT_COLUMNS} FROM checkout_attempts
        WHERE status = 'reserved' AND expires_at < $1
        ORDER BY expires_at
        LIMIT $2
        FOR UPDATE SKIP LOCKED
        """,  # noqa: S608 - a fixed column list, no values
        before,
        limit,
    )
    return [_attempt(row) for row in rows]


async def lock_expired_attempt_of_cart(tx: Connection, *, cart_id: UUID) -> ReservedAttempt | None:
    """The cart's live attempt if it has expired and nobody holds it (SKIP LOCKED)."""
    row = await tx.fetchrow(
        f"""
        SELECT {_ATTEMPT_COLUMNS} FROM checkout_attempts
        WHERE cart_id = $1 AND status = 'reserved' AND expires_at <= now()
        FOR UPDATE SKIP LOCKED
        """,  # noqa: S608 - a fixed column list, no values
        cart_id,
    )
    return None if row is None else _attempt(row)


async def get_attempt_status(conn: Connection, *, payment_key: str) -> str | None:
    status: str | None = await conn.fetchval(
        "SELECT status FROM checkout_attempts WHERE payment_key = $1", payment_key
    )
    return status
