"""Coupon administration."""

from __future__ import annotations

from fastapi import APIRouter, Request

from congocart.config import Settings
from congocart.core.db import Conn, Tx
from congocart.core.errors import problem_responses
from congocart.core.pagination import Cursor, Limit
from congocart.core.schemas import Page
from congocart.identity.dependencies import AdminUser
from congocart.promotions import service
from congocart.promotions.schemas import CouponCreate, CouponRead

router = APIRouter(
    prefix="/admin/coupons", tags=["admin: coupons"], responses=problem_responses(403)
)


@router.post("", status_code=201, response_model=CouponRead, responses=problem_responses(409))
async def create_coupon(
    request: Request, tx: Tx, admin: AdminUser, body: CouponCreate
) -> CouponRead:
    """Create a coupon (admin).

    Exactly one of `percent_off` and `amount_off`. Amounts are in the shop
    currency. The code is case-insensitive and stored upper-case; 409
    `coupon_code_taken` when it exists. `starts_at` is inclusive and `ends_at`
    exclusive. `max_redemptions` holds however many checkouts race for it.
    """
    settings: Settings = request.app.state.settings
    record = await service.create_coupon(tx, coupon=body.to_domain(), currency=settings.currency)
    return CouponRead.of(record)


@router.get("", response_model=Page[CouponRead])
async def list_coupons(
    conn: Conn, admin: AdminUser, limit: Limit = 20, cursor: Cursor = None
) -> Page[CouponRead]:
    """Coupons, newest first, each with its `redemptions` count (admin)."""
    page = await service.list_coupons(conn, limit=limit, cursor=cursor)
    return Page[CouponRead](
        items=[CouponRead.of(record) for record in page.items], next_cursor=page.next_cursor
    )
