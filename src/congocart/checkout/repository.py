"""Checkout SQL: the `checkout_attempts` rows that hold a checkout's reservation.

An attempt changes state only by a conditional UPDATE from `reserved`, so a
request confirming it and the sweeper releasing it can never both win: the
row lock orders them, and the loser's WHERE no longer matches.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from uuid import UUID

import asyncpg

from congocart.checkout.domain import NewAttempt, ReservedAttempt
from congocart.core.db import Connection, Params, abort_unless
from congocart.core.money import Money

_ATTEMPT_COLUMNS = "id, cart_id, payment_key, reserved_lines, amount_minor, currency, coupon_code"

# Another feature's part of a statement: its CTEs, given the statement's
# parameters and the SQL condition under which they may write.
Part = Callable[[Params, str], str]


def _attempt(row: asyncpg.Record) -> ReservedAttempt:
    return ReservedAttempt(
        id=row["id"],
        cart_id=row["cart_id"],
        payment_key=row["payment_key"],
        lines={line["sku"]: line["quantity"] for line in row["reserved_lines"]},
        amount=Money.from_minor(row["amount_minor"], row["currency"].strip()),
        coupon_code=row["coupon_code"],
    )


async def claim_and_read(
    conn: Connection,
    *,
    claim_key: Callable[[Params], str],
    read_cart: Callable[[Params], str],
) -> asyncpg.Record:
    """Checkout's first statement, no transaction needed: `claim_key`
    (core.idempotency's INSERT of a free key, committed with the statement, so
    a concurrent request with the key sees it in flight at once) and
    `read_cart` (the carts feature's subquery reading the cart, its lines and
    their variants, without a lock). Returns `claimed_until` (NULL when the key
    was not free) and the cart's columns (NULL without such a cart).
    """
    p = Params()
    claimed = claim_key(p)
    cart = read_cart(p)
    row = await conn.fetchrow(
        f"""
        WITH claimed AS ({claimed})
        SELECT (SELECT locked_until FROM claimed) AS claimed_until, cart.*
        FROM (SELECT 1) AS one
        LEFT JOIN LATERAL ({cart}) AS cart ON true
        """,  # noqa: S608 - composed of fixed parts around placeholders, no values
        *p.values,
    )
    assert row is not None
    return row


def _insert_attempt_sql(p: Params, new: NewAttempt, *, only_if: str = "true") -> str:
    attempt = new.reservation
    lines = [{"sku": sku, "quantity": quantity} for sku, quantity in attempt.lines.items()]
    return f"""
        INSERT INTO checkout_attempts
            (id, cart_id, user_id, email, idempotency_key, payment_key, reserved_lines,
             amount_minor, currency, coupon_code, expires_at)
        SELECT {p(attempt.id)}, {p(attempt.cart_id)}, {p(new.user_id)}, lower({p(new.email)}),
               {p(new.idempotency_key)}, {p(attempt.payment_key)}, {p(lines)},
               {p(attempt.amount.to_minor())}, {p(attempt.amount.currency)},
               {p(attempt.coupon_code)}, {p(new.expires_at)}
        WHERE {only_if}
        ON CONFLICT (cart_id) WHERE status = 'reserved' DO NOTHING
        RETURNING order_number
    """


async def insert_attempt(tx: Connection, new: NewAttempt) -> int | None:
    """Insert a `reserved` attempt and return the order number drawn for it;
    None when the cart already has a live one.

    The partial unique index (one `reserved` attempt per cart) decides, so two
    checkouts of one cart can never both hold stock.
    """
    p = Params()
    sql = _insert_attempt_sql(p, new)
    number: int | None = await tx.fetchval(sql, *p.values)
    return number


async def reserve_if_unchanged(
    conn: Connection,
    *,
    cart_unchanged: Callable[[Params], str],
    new: NewAttempt,
    stock_locked: Part,
    stock_taken: Part,
    all_available: str,
    reserved_column: str,
) -> asyncpg.Record:
    """A checkout's reservation (no coupon) in one statement, atomic without a
    transaction, made of the owning features' parts:

    1. `cart_unchanged` (carts: the cart locked for the statement, only if it
       is still open at the version checked) and no live attempt of the cart;
    2. `stock_locked(p, condition)` (catalog: the variants locked in SKU order,
       with what each has available), only then;
    3. the `reserved` attempt, only if `all_available` (catalog's condition on
       the locked stock) holds;
    4. `stock_taken(p, condition)` (catalog), only if the attempt was inserted.

    So the attempt exists exactly when its stock is taken. The attempt insert
    never waits on another attempt: the cart's lock keeps other checkouts of
    the cart out, and a live attempt seen in the statement's snapshot stops it
    at step 1. Returns `cart_unchanged`, `no_live_attempt`, `all_available`,
    `inserted`, the attempt's `order_number` and the `reserved_column` (as
    `reserved`).
    """
    assert new.reservation.coupon_code is None, "a coupon's redemption is taken under the lock"
    p = Params()
    cart = cart_unchanged(p)
    cart_param = p(new.reservation.cart_id)
    no_live = f"""NOT EXISTS (SELECT 1 FROM checkout_attempts a
                           WHERE a.cart_id = {cart_param} AND a.status = 'reserved')"""  # noqa: S608
    may_reserve = f"EXISTS (SELECT 1 FROM cart_unchanged) AND {no_live}"  # noqa: S608
    locked = stock_locked(p, may_reserve)
    attempt = _insert_attempt_sql(p, new, only_if=f"{may_reserve} AND {all_available}")
    inserted = "EXISTS (SELECT 1 FROM attempt_inserted)"
    row = await conn.fetchrow(
        f"""
        WITH cart_unchanged AS MATERIALIZED ({cart}),
        {locked},
        attempt_inserted AS ({attempt}),
        {stock_taken(p, inserted)}
        SELECT EXISTS (SELECT 1 FROM cart_unchanged) AS cart_unchanged,
               {no_live} AS no_live_attempt,
               {all_available} AS all_available,
               {inserted} AS inserted,
               (SELECT order_number FROM attempt_inserted) AS order_number,
               {reserved_column} AS reserved
        """,  # noqa: S608 - composed of fixed parts around placeholders, no values
        *p.values,
    )
    assert row is not None
    return row


# Why `confirm` aborts (core.db.aborted): the attempt was released (by the
# sweeper) before it could be confirmed, or its stock was not all reserved.
RESERVATION_LOST = "reservation_lost"
STOCK_NOT_RESERVED = "stock_not_reserved"


async def confirm(
    conn: Connection,
    *,
    attempt_id: UUID,
    payment_ref: str | None,
    cart_closed: Callable[[Params], str],
    order_written: Part,
    stock_sold: Part,
    sold_count: str,
    lines: int,
    answered: Part,
) -> bool:
    """Confirm the attempt and write what it becomes, in one statement made of
    the owning features' parts, atomic without a transaction; locks are taken
    in checkout's order:

    1. `cart_closed` (the carts feature's UPDATE, closing the cart);
    2. the attempt `reserved` → `confirmed`, only if the cart was closed;
    3. `order_written(p, condition)` (the orders feature's CTEs: the order and
       its webhook event), `stock_sold(p, condition)` (the catalog's CTEs,
       locking the variants in SKU order; `sold_count` counts what they sold)
       and `answered(p, condition)` (the idempotency answer), only if the
       attempt was confirmed.

    False when the cart was not closed (changed or closed since): then nothing
    was written. A cart closed for an attempt that could not be confirmed, or
    a sale of fewer than `lines` SKUs, aborts the statement (nothing written;
    `core.db.aborted` gives `RESERVATION_LOST` or `STOCK_NOT_RESERVED`).
    """
    p = Params()
    closed = cart_closed(p)
    ref, attempt = p(payment_ref), p(attempt_id)
    was_closed = "EXISTS (SELECT 1 FROM cart_closed)"
    if_confirmed = "EXISTS (SELECT 1 FROM attempt_confirmed)"
    all_sold = f"{sold_count} = {p(lines)}"
    return bool(
        await conn.fetchval(
            f"""
            WITH cart_closed AS ({closed}),
            attempt_confirmed AS (
                UPDATE checkout_attempts
                SET status = 'confirmed', payment_ref = {ref}, updated_at = now()
                WHERE id = {attempt} AND status = 'reserved' AND {was_closed}
                RETURNING id
            ),
            {order_written(p, if_confirmed)},
            {stock_sold(p, if_confirmed)},
            {answered(p, if_confirmed)}
            -- CASE, not AND: its branches are tried in this order.
            SELECT CASE WHEN NOT {was_closed} THEN false
                        WHEN NOT {abort_unless(if_confirmed, RESERVATION_LOST)} THEN false
                        ELSE {abort_unless(all_sold, STOCK_NOT_RESERVED)} END
            """,  # noqa: S608 - composed of fixed parts around placeholders, no values
            *p.values,
        )
    )


async def count_coupon_holds(
    tx: Connection, *, code: str, user_id: UUID | None, email: str, other_than: UUID
) -> int:
    """The customer's live (`reserved`) attempts holding coupon `code`, but
    `other_than`: the customer is the same user, or the same email."""
    count: int = await tx.fetchval(
        """
        SELECT count(*) FROM checkout_attempts
        WHERE status = 'reserved' AND coupon_code = $1 AND id <> $4
          AND (user_id = $2 OR email = lower($3))
        """,
        code,
        user_id,
        email,
        other_than,
    )
    return count


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
