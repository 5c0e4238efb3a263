"""Carts request and response bodies."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import Field, StringConstraints

from congocart.carts.domain import MAX_QUANTITY, MIN_QUANTITY, CartStatus, CartView, ShippingMethod
from congocart.core.schemas import Currency, MoneyOut, Page, RequestModel, ResponseModel

Quantity = Annotated[int, Field(strict=True, ge=MIN_QUANTITY, le=MAX_QUANTITY, examples=[2])]


class CartCreate(RequestModel):
    currency: Currency | None = Field(
        default=None, description="Must be the shop's currency when given.", examples=["USD"]
    )


class ItemCreate(RequestModel):
    sku: Annotated[str, StringConstraints(min_length=1, max_length=64)] = Field(
        examples=["SHIRT-LINEN-M"]
    )
    quantity: Quantity


class ItemUpdate(RequestModel):
    quantity: Annotated[int, Field(strict=True, ge=0, le=MAX_QUANTITY, examples=[3])] = Field(
        description="0 removes the line."
    )


class CouponApply(RequestModel):
    code: Annotated[str, StringConstraints(min_length=1, max_length=64)] = Field(
        examples=["WELCOME10"]
    )


class CartMerge(RequestModel):
    cart_token: Annotated[str, StringConstraints(min_length=1, max_length=512)] = Field(
        description="The guest cart's token."
    )


class CartItemRead(ResponseModel):
    id: UUID
    sku: str
    name: str
    unit_price: MoneyOut
    quantity: int
    line_total: MoneyOut


class CartRead(ResponseModel):
    id: UUID
    currency: str
    status: CartStatus
    items: list[CartItemRead]
    coupon: str | None = Field(description="The applied coupon's code.")
    subtotal: MoneyOut
    discount: MoneyOut
    shipping: MoneyOut
    tax: MoneyOut
    total: MoneyOut
    country: str | None = Field(description="The destination the shipping and tax are for.")
    shipping_method: str | None
    tax_rate: str | None
    version: int = Field(description="Bumped by every change; send it back in `If-Match`.")
    updated_at: datetime

    @classmethod
    def of(cls, view: CartView) -> CartRead:
        return cls.model_validate(_fields(view))


class CartCreated(CartRead):
    cart_token: str | None = Field(
        description=(
            "A guest cart's token, shown only here: send it as `X-Cart-Token` to reach "
            "the cart. Null for a user's cart."
        )
    )

    @classmethod
    def of(cls, view: CartView) -> CartCreated:
        return cls.model_validate({**_fields(view), "cart_token": view.cart_token})


def _fields(view: CartView) -> dict[str, object]:
    totals = view.totals
    return {
        "id": view.id,
        "currency": view.currency,
        "status": view.status,
        "items": [
            CartItemRead(
                id=item.id,
                sku=item.sku,
                name=item.name,
                unit_price=MoneyOut.of(item.unit_price),
                quantity=item.quantity,
                line_total=MoneyOut.of(item.line_total),
            )
            for item in view.items
        ],
        "coupon": view.coupon,
        "subtotal": MoneyOut.of(totals.subtotal),
        "discount": MoneyOut.of(totals.discount),
        "shipping": MoneyOut.of(totals.shipping),
        "tax": MoneyOut.of(totals.tax),
        "total": MoneyOut.of(totals.total),
        "country": view.country,
        "shipping_method": totals.shipping_method,
        "tax_rate": None if totals.tax_rate is None else str(totals.tax_rate),
        "version": view.version,
        "updated_at": view.updated_at,
    }


class ShippingMethodRead(ResponseModel):
    code: str
    name: str
    price: MoneyOut
    estimated_days: str = Field(description='Business days, e.g. "5-7" or "1".')
    free_from: MoneyOut | None = Field(description="Free from this subtotal, when set.")


def shipping_method_page(methods: Sequence[ShippingMethod]) -> Page[ShippingMethodRead]:
    """The short, fixed list of methods, in the contract's page shape."""
    return Page[ShippingMethodRead](
        items=[
            ShippingMethodRead(
                code=m.code,
                name=m.name,
                price=MoneyOut.of(m.price),
                estimated_days=m.estimated_days,
                free_from=None if m.free_from is None else MoneyOut.of(m.free_from),
            )
            for m in methods
        ],
        next_cursor=None,
    )
