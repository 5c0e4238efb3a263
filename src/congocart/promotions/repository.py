"""Coupons and their redemptions: the SQL.

The redemption counter is only ever moved by the two conditional updates in
`reserve_redemption` / `release_redemption`; the table's CHECK
(`redemptions <= max_redemptions`) is the backstop no race can get past.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg

from congocart.core.db import Connection
from congocart.core.money import Money
from congocart.promotions.domain import Coupon, CouponRecord

_COLUMNS = """
    c.id, c.code, c.percent_off, c.amount_off_minor, c.currency, c.min_subtotal_minor,
    c.max_redemptions, c.per_customer_limit, c.redemptions, c.starts_at, c.ends_at,
    c.created_at, c.updated_at
"""


def _coupon(row: asyncpg.Record) -> Coupon:
    currency: str = row["currency"]
    amount_off, min_subtotal = row["amount_off_minor"], row["min_subtotal_minor"]
    return Coupon(
        code=row["code"],
        percent_off=row["percent_off"],
        amount_off=None if amount_off is None else Money.from_minor(amount_off, currency),
        min_subtotal=None if min_subtotal is None else Money.from_minor(min_subtotal, currency),
        max_redemptions=row["max_redemptions"],
        per_customer_limit=row["per_customer_limit"],
        starts_at=row["starts_at"],
        ends_at=row["ends_at"],
        redemptions=row["redemptions"],
    )


def _record(row: asyncpg.Record) -> CouponRecord:
    return CouponRecord(
        id=row["id"],
        coupon=_coupon(row),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


async def insert_coupon(tx: Connection, coupon: Coupon, *, currency: str) -> CouponRecord | None:
    """The new coupon; None when its code is taken."""
    row = await tx.fetchrow(
        f"""
        INSERT INTO coupons AS c (code, percent_off, amount_off_minor, currency,
                                  min_subtotal_minor, max_redemptions, per_customer_limit,
                                  starts_at, ends_at, created_at, updated_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, clock_timestamp(), clock_timestamp())
        ON CONFLICT (code) DO NOTHING
        RETURNING {_COLUMNS}
        """,  # noqa: S608 - a fixed column list, no values
        coupon.code,
        coupon.percent_off,
        None if coupon.amount_off is None else coupon.amount_off.to_minor(),
        currency,
        None if coupon.min_subtotal is None else coupon.min_subtotal.to_minor(),
        coupon.max_redemptions,
        coupon.per_customer_limit,
        coupon.starts_at,
        coupon.ends_at,
    )
    return None if row is None else _record(row)


async def get_coupon(conn: Connection, code: str) -> Coupon | None:
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM coupons c WHERE c.code = $1",  # noqa: S608 - fixed columns
        code,
    )
    return None if row is None else _coupon(row)


async def get_coupon_for_customer(
    conn: Connection, code: str, *, user_id: UUID | None, email: str | None
) -> tuple[Coupon, int] | None:
    """The coupon and how many orders of this customer (by user, or by email) used it.

    One statement; the redemptions are only counted when the coupon has a
    per-customer limit.
    """
    row = await conn.fetchrow(
        f"""
        SELECT {_COLUMNS},
               CASE WHEN c.per_customer_limit IS NULL THEN 0 ELSE (
                   SELECT count(*) FROM coupon_redemptions r
                   WHERE r.coupon_id = c.id
                     AND (r.user_id = $2 OR r.email = lower($3))
               ) END AS customer_redemptions
        FROM coupons c
        WHERE c.code = $1
        """,  # noqa: S608 - a fixed column list, no values
        code,
        user_id,
        email,
    )
    if row is None:
        return None
    return _coupon(row), int(row["customer_redemptions"])


async def count_customer_redemptions(
    conn: Connection, code: str, *, user_id: UUID | None, email: str | None
) -> int:
    count: int = await conn.fetchval(
        """
        SELECT count(*)
        FROM coupon_redemptions r JOIN coupons c ON c.id = r.coupon_id
        WHERE c.code = $1 AND (r.user_id = $2 OR r.email = lower($3))
        """,
        code,
        user_id,
        email,
    )
    return count


async def list_coupons(
    conn: Connection, *, after: tuple[datetime, UUID] | None, limit: int
) -> list[CouponRecord]:
    """Newest first, keyset-paginated on (created_at, id)."""
    after_at, after_id = after if after is not None else (None, None)
    rows = await conn.fetch(
        f"""
        SELECT {_COLUMNS} FROM coupons c
        WHERE $1::timestamptz IS NULL OR (c.created_at, c.id) < ($1, $2::uuid)
        ORDER BY c.created_at DESC, c.id DESC
        LIMIT $3
        """,  # noqa: S608 - a fixed column list, no values
        after_at,
        after_id,
        limit,
    )
    return [_record(row) for row in rows]


async def increment_redemptions(tx: Connection, code: str) -> bool:
    """Take one redemption if any is left; False when used up or unknown.

    The guard is in the WHERE clause: concurrent callers queue on the row lock
    and each re-checks the condition against the committed count, so the counter
    can never pass `max_redemptions`.
    """
    found = await tx.fetchval(
        """
        UPDATE coupons
        SET redemptions = redemptions + 1, updated_at = now()
        WHERE code = $1 AND (max_redemptions IS NULL OR redemptions < max_redemptions)
        RETURNING true
        """,
        code,
    )
    return bool(found)


async def lock_keys(tx: Connection, keys: list[str]) -> None:
    """Transaction-scoped advisory locks on `keys`, taken in one fixed order (by
    their hash) so that two transactions locking overlapping sets never deadlock."""
    await tx.execute(
        """
        SELECT count(pg_advisory_xact_lock(h))
        FROM (SELECT DISTINCT hashtextextended(k, 0) AS h FROM unnest($1::text[]) AS k
              ORDER BY h) AS ordered
        """,
        keys,
    )


async def decrement_redemptions(tx: Connection, code: str) -> bool:
    """Give one redemption back; False when there was none to give."""
    found = await tx.fetchval(
        """
        UPDATE coupons
        SET redemptions = redemptions - 1, updated_at = now()
        WHERE code = $1 AND redemptions > 0
        RETURNING true
        """,
        code,
    )
    return bool(found)


async def insert_redemption(
    tx: Connection, code: str, *, order_id: UUID, user_id: UUID | None, email: str
) -> bool:
    """A row in coupon_redemptions for the order; False when the coupon is unknown.

    Re-recording the same order is a no-op (order_id is unique), so a retried
    confirmation records once.
    """
    found = await tx.fetchval(
        """
        WITH coupon AS (SELECT id FROM coupons WHERE code = $1),
        inserted AS (
            INSERT INTO coupon_redemptions (coupon_id, order_id, user_id, email)
            SELECT id, $2, $3, lower($4) FROM coupon
            ON CONFLICT (order_id) DO NOTHING
        )
        SELECT true FROM coupon
        """,
        code,
        order_id,
        user_id,
        email,
    )
    return bool(found)
