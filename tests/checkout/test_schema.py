"""The commerce schema (migration 0004) holds the money path's invariants by itself.

These tests write rows straight into the tables, as a buggy or racing service
would, and prove the database refuses what must never exist.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import pytest

from congocart.core import migrations
from congocart.core.db import Connection, Database
from congocart.orders.domain import format_order_number
from tests.conftest import DatabaseCopies

COMMERCE_TABLES = {
    "coupons",
    "carts",
    "cart_items",
    "checkout_attempts",
    "orders",
    "order_lines",
    "order_events",
    "payments",
    "refunds",
    "coupon_redemptions",
    "sandbox_charges",
    "sandbox_refunds",
    "webhooks",
    "webhook_deliveries",
}


async def new_sku(conn: Connection) -> str:
    sku = f"SKU-{uuid.uuid4().hex[:10].upper()}"
    product_id = await conn.fetchval(
        """
        INSERT INTO products (slug, name, min_price_minor) VALUES ($1, 'Thing', 1000)
        RETURNING id
        """,
        f"p-{uuid.uuid4().hex[:10]}",
    )
    await conn.execute(
        """
        INSERT INTO variants (sku, product_id, name, price_minor, currency, on_hand)
        VALUES ($1, $2, 'Thing', 1000, 'USD', 10)
        """,
        sku,
        product_id,
    )
    return sku


async def new_user(conn: Connection) -> uuid.UUID:
    user_id: uuid.UUID = await conn.fetchval(
        "INSERT INTO users (email, password_hash) VALUES ($1, 'x') RETURNING id",
        f"u-{uuid.uuid4().hex[:10]}@example.com",
    )
    return user_id


async def new_cart(conn: Connection, user_id: uuid.UUID | None = None) -> uuid.UUID:
    user_id = user_id or await new_user(conn)
    cart_id: uuid.UUID = await conn.fetchval(
        "INSERT INTO carts (user_id, currency) VALUES ($1, 'USD') RETURNING id", user_id
    )
    return cart_id


async def new_order(conn: Connection, cart_id: uuid.UUID, **money: int) -> asyncpg.Record:
    amounts = {"subtotal": 1000, "discount": 0, "shipping": 500, "tax": 0, "total": 1500}
    amounts.update(money)
    row = await conn.fetchrow(
        """
        INSERT INTO orders (cart_id, email, status, currency, subtotal_minor, discount_minor,
                            shipping_minor, tax_minor, total_minor, shipping_method,
                            shipping_address)
        VALUES ($1, 'a@example.com', 'paid', 'USD', $2, $3, $4, $5, $6, 'standard', $7)
        RETURNING *
        """,
        cart_id,
        amounts["subtotal"],
        amounts["discount"],
        amounts["shipping"],
        amounts["tax"],
        amounts["total"],
        {"name": "A", "line1": "1 Main St", "city": "X", "postal_code": "1", "country": "US"},
    )
    assert row is not None
    return row


async def test_one_cart_can_never_become_two_orders(conn: Connection) -> None:
    cart_id = await new_cart(conn)
    await new_order(conn, cart_id)
    with pytest.raises(asyncpg.UniqueViolationError):
        await new_order(conn, cart_id)


async def test_order_numbers_come_from_a_sequence_and_render_as_cc_numbers(
    conn: Connection,
) -> None:
    first = await new_order(conn, await new_cart(conn))
    second = await new_order(conn, await new_cart(conn))
    assert second["number"] > first["number"]
    assert format_order_number(first["number"]).startswith("CC-")


@pytest.mark.parametrize(
    "money",
    [
        {"total": 1499},  # does not add up
        {"discount": 1001, "total": 499},  # discount above subtotal
        {"tax": -1, "total": 1499},
        {"shipping": -500, "total": 500},
    ],
)
async def test_order_totals_that_do_not_add_up_are_refused(
    conn: Connection, money: dict[str, int]
) -> None:
    cart_id = await new_cart(conn)
    with pytest.raises(asyncpg.CheckViolationError):
        await new_order(conn, cart_id, **money)


async def test_refunds_can_never_exceed_the_order_total(conn: Connection) -> None:
    order = await new_order(conn, await new_cart(conn))
    refunded = await conn.fetchval(
        """
        UPDATE orders SET refunded_minor = refunded_minor + $2
        WHERE id = $1 AND refunded_minor + $2 <= total_minor
        RETURNING refunded_minor
        """,
        order["id"],
        1500,
    )
    assert refunded == 1500
    with pytest.raises(asyncpg.CheckViolationError):
        await conn.execute("UPDATE orders SET refunded_minor = 1501 WHERE id = $1", order["id"])


async def test_an_unknown_order_status_is_refused(conn: Connection) -> None:
    order = await new_order(conn, await new_cart(conn))
    with pytest.raises(asyncpg.CheckViolationError):
        await conn.execute("UPDATE orders SET status = 'lost' WHERE id = $1", order["id"])


async def test_order_lines_keep_their_own_frozen_totals(conn: Connection) -> None:
    order = await new_order(conn, await new_cart(conn))
    insert = """
        INSERT INTO order_lines (order_id, position, sku, name, unit_price_minor, quantity,
                                 line_total_minor)
        VALUES ($1, $2, $3, 'Thing', 999, 3, $4)
    """
    await conn.execute(insert, order["id"], 0, "GONE-FROM-CATALOG", 2997)
    with pytest.raises(asyncpg.CheckViolationError):
        await conn.execute(insert, order["id"], 1, "OTHER", 3000)


async def test_cart_quantities_stay_between_1_and_99_and_a_sku_appears_once(
    conn: Connection,
) -> None:
    cart_id = await new_cart(conn)
    sku = await new_sku(conn)
    insert = "INSERT INTO cart_items (cart_id, sku, quantity) VALUES ($1, $2, $3)"
    for quantity in (0, 100):
        with pytest.raises(asyncpg.CheckViolationError):
            async with conn.transaction():
                await conn.execute(insert, cart_id, sku, quantity)
    await conn.execute(insert, cart_id, sku, 99)
    with pytest.raises(asyncpg.UniqueViolationError):
        await conn.execute(insert, cart_id, sku, 1)


async def test_a_cart_item_must_be_a_catalog_sku(conn: Connection) -> None:
    cart_id = await new_cart(conn)
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await conn.execute(
            "INSERT INTO cart_items (cart_id, sku, quantity) VALUES ($1, 'NO-SUCH-SKU', 1)",
            cart_id,
        )


async def test_a_cart_belongs_to_a_user_or_has_a_guest_token(conn: Connection) -> None:
    with pytest.raises(asyncpg.CheckViolationError):
        async with conn.transaction():
            await conn.execute("INSERT INTO carts (currency) VALUES ('USD')")
    await conn.execute(
        "INSERT INTO carts (currency, guest_token_hash) VALUES ('USD', $1)", b"\x01" * 32
    )


async def new_attempt(conn: Connection, cart_id: uuid.UUID, status: str = "reserved") -> None:
    await conn.execute(
        """
        INSERT INTO checkout_attempts (cart_id, idempotency_key, payment_key, reserved_lines,
                                       amount_minor, currency, status, expires_at)
        VALUES ($1, 'k', $2, '[]', 1500, 'USD', $3, now() + interval '10 minutes')
        """,
        cart_id,
        str(uuid.uuid4()),
        status,
    )


async def test_a_cart_has_at_most_one_live_checkout_attempt(conn: Connection) -> None:
    cart_id = await new_cart(conn)
    await new_attempt(conn, cart_id, "released")
    await new_attempt(conn, cart_id, "released")
    await new_attempt(conn, cart_id)
    with pytest.raises(asyncpg.UniqueViolationError):
        await new_attempt(conn, cart_id)


async def new_coupon(conn: Connection, **fields: Any) -> uuid.UUID:
    code = fields.pop("code", f"C{uuid.uuid4().hex[:8].upper()}")
    coupon_id: uuid.UUID = await conn.fetchval(
        """
        INSERT INTO coupons (code, percent_off, amount_off_minor, currency, max_redemptions)
        VALUES ($1, $2, $3, 'USD', $4) RETURNING id
        """,
        code,
        fields.get("percent_off"),
        fields.get("amount_off_minor"),
        fields.get("max_redemptions"),
    )
    return coupon_id


@pytest.mark.parametrize(
    "fields",
    [
        {"code": "lower"},
        {"percent_off": None, "amount_off_minor": None},
        {"percent_off": 10, "amount_off_minor": 500},
        {"percent_off": 0},
        {"percent_off": 101},
        {"amount_off_minor": 0, "percent_off": None},
        {"percent_off": 10, "max_redemptions": 0},
    ],
)
async def test_coupon_definitions_that_break_the_rules_are_refused(
    conn: Connection, fields: dict[str, Any]
) -> None:
    fields = {"percent_off": 10, **fields}
    with pytest.raises(asyncpg.CheckViolationError):
        await new_coupon(conn, **fields)


async def test_coupon_redemptions_can_never_pass_the_maximum(conn: Connection) -> None:
    coupon_id = await new_coupon(conn, percent_off=10, max_redemptions=1)
    await conn.execute("UPDATE coupons SET redemptions = 1 WHERE id = $1", coupon_id)
    with pytest.raises(asyncpg.CheckViolationError):
        await conn.execute("UPDATE coupons SET redemptions = 2 WHERE id = $1", coupon_id)


REDEEM = """
    UPDATE coupons SET redemptions = redemptions + 1
    WHERE id = $1 AND (max_redemptions IS NULL OR redemptions < max_redemptions)
    RETURNING redemptions
"""


async def test_concurrent_redemptions_of_a_single_use_coupon_redeem_it_once(
    committed_db: Database,
) -> None:
    async with committed_db.transaction() as conn:
        coupon_id = await new_coupon(conn, percent_off=10, max_redemptions=1)

    async def redeem() -> bool:
        async with committed_db.transaction() as conn:
            redeemed = await conn.fetchval(REDEEM, coupon_id)
            await asyncio.sleep(0.01)  # hold the row while others pile up behind it
            return redeemed is not None

    outcomes = await asyncio.gather(*(redeem() for _ in range(20)))
    assert outcomes.count(True) == 1
    async with committed_db.acquire() as conn:
        assert await conn.fetchval("SELECT redemptions FROM coupons WHERE id = $1", coupon_id) == 1


async def _tables(dsn: str) -> set[str]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    finally:
        await conn.close()
    return {row["tablename"] for row in rows}


async def test_the_commerce_migration_downgrades_and_upgrades_cleanly(
    copies: DatabaseCopies,
) -> None:
    dsn = await copies.create()
    assert await _tables(dsn) >= COMMERCE_TABLES

    await asyncio.to_thread(migrations.downgrade, dsn, "0002")  # only 0004 depends on both
    remaining = await _tables(dsn)
    assert not COMMERCE_TABLES & remaining
    assert {"users", "variants", "products"} <= remaining

    await asyncio.to_thread(migrations.upgrade, dsn, "heads")
    assert await _tables(dsn) >= COMMERCE_TABLES

    await asyncio.to_thread(migrations.downgrade, dsn, "base")
    assert await _tables(dsn) == {"alembic_version"}
