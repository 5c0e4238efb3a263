"""Carts and their lines: the SQL.

Every change to a cart locks its row (`FOR UPDATE`) first and bumps its
`version` in the same transaction as the line it writes. Lines are shown in the
order they were added: `created_at` is the clock time of the insert (not the
transaction's start, which several inserts can share). That invariant is
what lets a single statement lock the cart *and* read its lines: see
`get_cart_for_update`. Prices are never stored here; they are the catalog's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg

from congocart.carts.domain import Cart, CartItem, CartStatus
from congocart.core.db import Connection, Params

_CART_COLUMNS = """
    c.id, c.user_id, c.guest_token_hash, c.currency, c.coupon_code, c.status, c.version,
    c.updated_at
"""
# The lines as one jsonb array, so a cart and its lines are one statement.
_ITEMS = """
    (SELECT coalesce(jsonb_agg(jsonb_build_object('id', i.id, 'sku', i.sku,
                                                  'quantity', i.quantity)
                               ORDER BY i.created_at, i.id), '[]'::jsonb)
     FROM cart_items i WHERE i.cart_id = c.id) AS items
"""


def _items(raw: list[dict[str, Any]]) -> tuple[CartItem, ...]:
    return tuple(CartItem(id=UUID(i["id"]), sku=i["sku"], quantity=i["quantity"]) for i in raw)


def _cart(row: asyncpg.Record, items: tuple[CartItem, ...] | None = None) -> Cart:
    return Cart(
        id=row["id"],
        user_id=row["user_id"],
        guest_token_hash=row["guest_token_hash"],
        currency=row["currency"].strip(),
        coupon_code=row["coupon_code"],
        status=CartStatus(row["status"]),
        version=row["version"],
        updated_at=row["updated_at"],
        items=_items(row["items"]) if items is None else items,
    )


async def insert_cart(
    conn: Connection, *, user_id: UUID | None, guest_token_hash: bytes | None, currency: str
) -> Cart:
    row = await conn.fetchrow(
        f"""
        INSERT INTO carts AS c (user_id, guest_token_hash, currency)
        VALUES ($1, $2, $3)
        RETURNING {_CART_COLUMNS}, '[]'::jsonb AS items
        """,  # noqa: S608 - fixed column lists, no values
        user_id,
        guest_token_hash,
        currency,
    )
    assert row is not None
    return _cart(row)


async def get_cart(conn: Connection, cart_id: UUID) -> Cart | None:
    """The cart and its lines, one statement, no lock."""
    row = await conn.fetchrow(
        f"SELECT {_CART_COLUMNS}, {_ITEMS} FROM carts c WHERE c.id = $1",  # noqa: S608
        cart_id,
    )
    return None if row is None else _cart(row)


VariantsSql = Callable[[str], str]


async def get_cart_and_variants(
    conn: Connection, cart_id: UUID, *, adding: str, variants_sql: VariantsSql
) -> tuple[Cart, Any] | None:
    """The cart, its lines and the catalog's snapshot of their variants and of
    `adding`, from one statement (one snapshot), without a lock.

    `variants_sql` is the catalog's part (`catalog.service.variant_snapshots_sql`);
    what it returns comes back as is, for the catalog to read.
    """
    skus = "array(SELECT i.sku FROM cart_items i WHERE i.cart_id = c.id) || $2::text"
    row = await conn.fetchrow(
        f"""
        SELECT {_CART_COLUMNS}, {_ITEMS}, {variants_sql(skus)} AS variants
        FROM carts c WHERE c.id = $1
        """,  # noqa: S608 - fixed column lists and parts, no values
        cart_id,
        adding,
    )
    return None if row is None else (_cart(row), row["variants"])


async def upsert_item_if_unchanged(
    conn: Connection, *, cart_id: UUID, seen_version: int, sku: str, quantity: int
) -> tuple[UUID, int, datetime] | None:
    """`upsert_item` for a cart still open and at `seen_version`; None when it is not.

    One statement, atomic without a transaction. The version check is made on
    the cart's newest row under its row lock (an UPDATE that finds the row
    changed re-reads it), and every change of a cart's lines bumps its version
    under that lock: when the version is the one read, so are the lines, and
    the rules checked against them still hold.
    """
    row = await conn.fetchrow(
        """
        WITH bumped AS (
            UPDATE carts SET version = version + 1, updated_at = now()
            WHERE id = $1 AND version = $4 AND status = 'open'
            RETURNING version, updated_at
        ), line AS (
            INSERT INTO cart_items (cart_id, sku, quantity, created_at)
            SELECT $1, $2, $3, clock_timestamp() FROM bumped
            ON CONFLICT (cart_id, sku)
            DO UPDATE SET quantity = excluded.quantity, updated_at = now()
            RETURNING id
        )
        SELECT line.id, bumped.version, bumped.updated_at FROM line, bumped
        """,
        cart_id,
        sku,
        quantity,
        seen_version,
    )
    return None if row is None else (row["id"], row["version"], row["updated_at"])


async def get_cart_for_update(tx: Connection, cart_id: UUID) -> Cart | None:
    """Lock the cart row and read its lines; usually one statement.

    Under READ COMMITTED a `FOR UPDATE` that had to wait returns the newest
    version of the locked row, but the lines subquery still reads the snapshot
    taken when the statement started, before the other transaction committed.
    `seen_version` is the cart's version in that same snapshot: every line
    change bumps the version under this lock, so when the two agree the lines
    are current, and when they differ (only under contention) they are read
    again, now that the lock is held.
    """
    row = await tx.fetchrow(
        f"""
        SELECT {_CART_COLUMNS}, {_ITEMS},
               (SELECT s.version FROM carts s WHERE s.id = c.id) AS seen_version
        FROM carts c
        WHERE c.id = $1
        FOR UPDATE OF c
        """,  # noqa: S608 - fixed column lists, no values
        cart_id,
    )
    if row is None:
        return None
    if row["seen_version"] == row["version"]:
        return _cart(row)
    return _cart(row, await get_items(tx, cart_id))


def read_for_checkout_sql(p: Params, cart_id: UUID, *, variants_sql: VariantsSql) -> str:
    """The cart, its lines and the catalog's snapshot of their variants, one
    snapshot, no lock: a subquery of another feature's statement (checkout's
    first). Read its columns with `read_for_checkout`."""
    skus = "array(SELECT i.sku FROM cart_items i WHERE i.cart_id = c.id)"
    return f"""
        SELECT {_CART_COLUMNS}, {_ITEMS}, {variants_sql(skus)} AS variants
        FROM carts c
        WHERE c.id = {p(cart_id)}
    """  # noqa: S608 - fixed column lists and parts around a placeholder, no values


def read_for_checkout(row: asyncpg.Record) -> tuple[Cart, Any] | None:
    """The cart and its variants' snapshot of a `read_for_checkout_sql` row (None: no cart)."""
    return None if row["id"] is None else (_cart(row), row["variants"])


def lock_if_unchanged_sql(p: Params, cart_id: UUID, version: int) -> str:
    """A subquery locking the cart for the statement and returning its id only
    if it is open and at `version` (checked on the newest row, after the lock)."""
    return f"""
        SELECT c.id FROM carts c
        WHERE c.id = {p(cart_id)} AND c.version = {p(version)} AND c.status = 'open'
        FOR UPDATE OF c
    """  # noqa: S608 - fixed text around placeholders, no values


async def get_items(conn: Connection, cart_id: UUID) -> tuple[CartItem, ...]:
    rows = await conn.fetch(
        "SELECT id, sku, quantity FROM cart_items WHERE cart_id = $1 ORDER BY created_at, id",
        cart_id,
    )
    return tuple(CartItem(id=r["id"], sku=r["sku"], quantity=r["quantity"]) for r in rows)


async def find_guest_cart_id(conn: Connection, guest_token_hash: bytes) -> UUID | None:
    cart_id: UUID | None = await conn.fetchval(
        "SELECT id FROM carts WHERE guest_token_hash = $1 AND user_id IS NULL",
        guest_token_hash,
    )
    return cart_id


async def upsert_item(
    tx: Connection, *, cart_id: UUID, sku: str, quantity: int
) -> tuple[UUID, int, datetime]:
    """Set the sku's line to `quantity` (adding the line if new) and bump the cart.

    Returns the line's id and the cart's new version and updated_at. The caller
    holds the cart's lock and has checked the line rules.
    """
    row = await tx.fetchrow(
        """
        WITH bumped AS (
            UPDATE carts SET version = version + 1, updated_at = now()
            WHERE id = $1
            RETURNING version, updated_at
        ), line AS (
            INSERT INTO cart_items (cart_id, sku, quantity, created_at)
            VALUES ($1, $2, $3, clock_timestamp())
            ON CONFLICT (cart_id, sku)
            DO UPDATE SET quantity = excluded.quantity, updated_at = now()
            RETURNING id
        )
        SELECT line.id, bumped.version, bumped.updated_at FROM line, bumped
        """,
        cart_id,
        sku,
        quantity,
    )
    assert row is not None
    return row["id"], row["version"], row["updated_at"]


async def set_item_quantity(
    tx: Connection, *, cart_id: UUID, item_id: UUID, quantity: int
) -> tuple[int, datetime]:
    row = await tx.fetchrow(
        """
        WITH line AS (
            UPDATE cart_items SET quantity = $3, updated_at = now()
            WHERE id = $2 AND cart_id = $1
        )
        UPDATE carts SET version = version + 1, updated_at = now()
        WHERE id = $1
        RETURNING version, updated_at
        """,
        cart_id,
        item_id,
        quantity,
    )
    assert row is not None
    return row["version"], row["updated_at"]


async def delete_item(tx: Connection, *, cart_id: UUID, item_id: UUID) -> tuple[int, datetime]:
    row = await tx.fetchrow(
        """
        WITH line AS (
            DELETE FROM cart_items WHERE id = $2 AND cart_id = $1
        )
        UPDATE carts SET version = version + 1, updated_at = now()
        WHERE id = $1
        RETURNING version, updated_at
        """,
        cart_id,
        item_id,
    )
    assert row is not None
    return row["version"], row["updated_at"]


async def set_coupon(tx: Connection, *, cart_id: UUID, code: str | None) -> tuple[int, datetime]:
    row = await tx.fetchrow(
        """
        UPDATE carts SET coupon_code = $2, version = version + 1, updated_at = now()
        WHERE id = $1
        RETURNING version, updated_at
        """,
        cart_id,
        code,
    )
    assert row is not None
    return row["version"], row["updated_at"]


async def merge_into(
    tx: Connection,
    *,
    target_id: UUID,
    source_id: UUID,
    lines: Mapping[str, int],
    coupon_code: str | None,
) -> None:
    """Write the merged `lines` into the target cart and close the source as merged.

    Both carts are locked by the caller. Lines whose quantity is unchanged may
    be left out of `lines`; the target keeps its coupon, else takes `coupon_code`.
    """
    skus = list(lines)
    await tx.execute(
        """
        WITH merged_lines AS (
            INSERT INTO cart_items (cart_id, sku, quantity, created_at)
            SELECT $1, l.sku, l.quantity, clock_timestamp()
            FROM unnest($3::text[], $4::int[]) WITH ORDINALITY AS l (sku, quantity, n)
            ORDER BY l.n
            ON CONFLICT (cart_id, sku)
            DO UPDATE SET quantity = excluded.quantity, updated_at = now()
        ), source AS (
            UPDATE carts SET status = 'merged', version = version + 1, updated_at = now()
            WHERE id = $2
        )
        UPDATE carts
        SET coupon_code = coalesce(coupon_code, $5), version = version + 1, updated_at = now()
        WHERE id = $1
        """,
        target_id,
        source_id,
        skus,
        [lines[sku] for sku in skus],
        coupon_code,
    )


async def lock_carts(tx: Connection, cart_ids: list[UUID]) -> list[Cart]:
    """Lock several carts in ascending id order (no deadlock between two merges)."""
    carts = []
    for cart_id in sorted(cart_ids):
        cart = await get_cart_for_update(tx, cart_id)
        if cart is not None:
            carts.append(cart)
    return carts


async def close_cart(
    tx: Connection, *, cart_id: UUID, status: CartStatus, expected_version: int | None
) -> bool:
    """Move an open cart (at `expected_version`, when given) to `status`; False if it was not."""
    found = await tx.fetchval(
        """
        UPDATE carts SET status = $2, version = version + 1, updated_at = now()
        WHERE id = $1 AND status = 'open' AND ($3::integer IS NULL OR version = $3)
        RETURNING true
        """,
        cart_id,
        status.value,
        expected_version,
    )
    return bool(found)


def close_cart_sql(
    p: Params, *, cart_id: UUID, status: CartStatus, expected_version: int | None
) -> str:
    """`close_cart` as the body of a CTE of another feature's statement: an UPDATE
    that returns the cart's id when it closed it."""
    version = p(expected_version)
    return f"""
        UPDATE carts SET status = {p(status.value)}, version = version + 1, updated_at = now()
        WHERE id = {p(cart_id)} AND status = 'open'
          AND ({version}::integer IS NULL OR version = {version})
        RETURNING id
    """  # noqa: S608 - fixed text around placeholders, no values


async def expire_idle_guest_carts(tx: Connection, *, idle_for: timedelta, limit: int) -> int:
    """Expire up to `limit` open guest carts untouched for `idle_for`; how many were.

    SKIP LOCKED: a cart being changed right now is not idle, and is not waited for.
    """
    expired = await tx.fetchval(
        """
        WITH idle AS (
            SELECT id FROM carts
            WHERE status = 'open' AND user_id IS NULL
              AND updated_at < now() - make_interval(secs => $1)
            ORDER BY updated_at
            LIMIT $2
            FOR UPDATE SKIP LOCKED
        ), done AS (
            UPDATE carts c SET status = 'expired', version = c.version + 1, updated_at = now()
            FROM idle WHERE c.id = idle.id
            RETURNING 1
        )
        SELECT count(*) FROM done
        """,
        idle_for.total_seconds(),
        limit,
    )
    return int(expired)
