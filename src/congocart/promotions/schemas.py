"""Promotions request and response bodies."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Self
from uuid import UUID

from pydantic import AwareDatetime, Field, StringConstraints, model_validator

from congocart.core.schemas import MoneyIn, MoneyOut, RequestModel, ResponseModel
from congocart.promotions.domain import Coupon, CouponRecord, InvalidCoupon

Count = Annotated[int, Field(strict=True, ge=1, le=2_000_000_000)]


class AmountIn(MoneyIn):
    """A non-negative amount."""

    @model_validator(mode="after")
    def _not_negative(self) -> Self:
        if self.amount.startswith("-"):
            raise ValueError("the amount cannot be negative")
        return self


class CouponCreate(RequestModel):
    """Exactly one of `percent_off` (0 < p ≤ 100, two decimals at most) and `amount_off`."""

    code: Annotated[str, StringConstraints(min_length=1, max_length=64)] = Field(
        description="1-64 letters, digits, `-` or `_`; stored upper-case.",
        examples=["WELCOME10"],
    )
    percent_off: Decimal | None = Field(
        default=None, gt=0, le=100, max_digits=5, decimal_places=2, examples=["10"]
    )
    amount_off: AmountIn | None = None
    min_subtotal: AmountIn | None = None
    max_redemptions: Count | None = Field(
        default=None, description="How many orders may use it in all."
    )
    per_customer_limit: Count | None = Field(
        default=None, description="How many orders of one customer (user, or guest email)."
    )
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = Field(default=None, description="Exclusive.")

    @model_validator(mode="after")
    def _valid_coupon(self) -> Self:
        try:
            self.to_domain()
        except InvalidCoupon as exc:
            raise ValueError(str(exc)) from exc
        return self

    def to_domain(self) -> Coupon:
        return Coupon(
            code=self.code,
            percent_off=self.percent_off,
            amount_off=None if self.amount_off is None else self.amount_off.to_money(),
            min_subtotal=None if self.min_subtotal is None else self.min_subtotal.to_money(),
            max_redemptions=self.max_redemptions,
            per_customer_limit=self.per_customer_limit,
            starts_at=self.starts_at,
            ends_at=self.ends_at,
        )


class CouponRead(ResponseModel):
    id: UUID
    code: str
    percent_off: str | None
    amount_off: MoneyOut | None
    min_subtotal: MoneyOut | None
    max_redemptions: int | None
    per_customer_limit: int | None
    starts_at: datetime | None
    ends_at: datetime | None
    redemptions: int = Field(
        description="Orders that used it, plus checkouts holding it while they take payment."
    )
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, record: CouponRecord) -> CouponRead:
        coupon = record.coupon
        return cls(
            id=record.id,
            code=coupon.code,
            percent_off=None if coupon.percent_off is None else str(coupon.percent_off),
            amount_off=None if coupon.amount_off is None else MoneyOut.of(coupon.amount_off),
            min_subtotal=None if coupon.min_subtotal is None else MoneyOut.of(coupon.min_subtotal),
            max_redemptions=coupon.max_redemptions,
            per_customer_limit=coupon.per_customer_limit,
            starts_at=coupon.starts_at,
            ends_at=coupon.ends_at,
            redemptions=coupon.redemptions,
            created_at=record.created_at,
            updated_at=record.updated_at,
        )
