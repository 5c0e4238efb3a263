"""Promotions test helpers: coupons stored through the service, orders to redeem them on."""

from __future__ import annotations

import uuid
from typing import Any
from uuid import UUID

from congocart.core.db import Connection
from congocart.promotions import service
from congocart.promotions.domain import Coupon, CouponRecord


def unique_code(prefix: str = "SAVE") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10].upper()}"


async def make_coupon(conn: Connection, **fields: Any) -> CouponRecord:
    """`await make_coupon(conn, percent_off=Decimal(10), max_redemptions=1)`; a fresh code."""
    fields.setdefault("code", unique_code())
    return await service.create_coupon(conn, coupon=Coupon(**fields), currency="USD")


async def insert_order(
    conn: Connection, *, user_id: UUID | None = None, email: str = "buyer@example.com"
) -> UUID:
    """A bare paid order (with its own checked-out cart), so a redemption has an order.

    Written as SQL because the orders feature is not what these tests are about.
    """
    cart_id = await conn.fetchval(
        """
        INSERT INTO carts (user_id, guest_token_hash, currency, status)
        VALUES ($1, CASE WHEN $1::uuid IS NULL THEN sha256(gen_random_uuid()::text::bytea) END,
                'USD', 'checked_out')
        RETURNING id
        """,
        user_id,
    )
    order_id: UUID = await conn.fetchval(
        """
        INSERT INTO orders (cart_id, user_id, email, status, currency, subtotal_minor,
                            discount_minor, shipping_minor, tax_minor, total_minor,
                            shipping_method, shipping_address)
        VALUES ($1, $2, $3, 'paid', 'USD', 1000, 0, 0, 0, 1000, 'standard', '{}'::jsonb)
        RETURNING id
        """,
        cart_id,
        user_id,
        email,
    )
    return order_id
