"""Coupons: what a code is worth on a subtotal, and whether it may be used now.

Pure rules. The service looks a coupon up, counts its redemptions and calls
`Coupon.ensure_applicable`; any `CouponNotApplicable` becomes 422
`coupon_invalid`. Redeeming is a guarded counter in the database (see the
commerce migration), so a race past `max_redemptions` is impossible there,
not here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID

from congocart.core.money import Money

CODE_PATTERN = re.compile(r"^[A-Z0-9][A-Z0-9_-]{0,63}$")
HUNDRED = Decimal(100)
# A time window's bounds stay a day inside the calendar's ends: the very first
# and last instants are stored as -infinity/infinity, and an offset past an end
# names no date at all.
EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
LATEST = datetime(9999, 12, 30, tzinfo=UTC)


def _within_calendar(moment: datetime) -> bool:
    try:
        return EARLIEST <= moment.astimezone(UTC) <= LATEST
    except OverflowError:
        return False


class InvalidCoupon(ValueError):
    """A coupon definition that breaks the rules (raised while building one)."""


class CouponNotApplicable(Exception):
    """The coupon cannot be used on this cart now; `str(exc)` says why, for the client."""


class CouponUnknown(CouponNotApplicable):
    def __init__(self, code: str) -> None:
        super().__init__(f"There is no coupon {code!r}.")


class CouponNotStarted(CouponNotApplicable):
    def __init__(self, code: str) -> None:
        super().__init__(f"Coupon {code!r} is not valid yet.")


class CouponExpired(CouponNotApplicable):
    def __init__(self, code: str) -> None:
        super().__init__(f"Coupon {code!r} has expired.")


class CouponUsedUp(CouponNotApplicable):
    def __init__(self, code: str) -> None:
        super().__init__(f"Coupon {code!r} has been used up.")


class CouponCustomerLimitReached(CouponNotApplicable):
    def __init__(self, code: str) -> None:
        super().__init__(f"You have already used coupon {code!r} as often as it allows.")


class CouponMinimumNotMet(CouponNotApplicable):
    def __init__(self, code: str, minimum: Money) -> None:
        super().__init__(f"Coupon {code!r} needs a subtotal of at least {minimum}.")


class CouponCurrencyMismatch(CouponNotApplicable):
    def __init__(self, code: str, currency: str) -> None:
        super().__init__(f"Coupon {code!r} cannot be used on a {currency} cart.")


def normalize_code(code: str) -> str:
    """Codes are case-insensitive: stored and compared upper-case, without outer spaces."""
    return code.strip().upper()


@dataclass(frozen=True, slots=True)
class Coupon:
    """A discount code: exactly one of `percent_off` (0 < p ≤ 100) or `amount_off`.

    `redemptions` is how many orders have used it so far. Windows are half-open:
    valid from `starts_at` (inclusive) until `ends_at` (exclusive).
    """

    code: str
    percent_off: Decimal | None = None
    amount_off: Money | None = None
    min_subtotal: Money | None = None
    max_redemptions: int | None = None
    per_customer_limit: int | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    redemptions: int = 0

    def __post_init__(self) -> None:
        # Frozen, so the normalised code is written through object.__setattr__.
        object.__setattr__(self, "code", normalize_code(self.code))
        if not CODE_PATTERN.match(self.code):
            raise InvalidCoupon(
                "code must be 1-64 letters, digits, '-' or '_', starting with a letter or digit"
            )
        if (self.percent_off is None) == (self.amount_off is None):
            raise InvalidCoupon("exactly one of percent_off and amount_off is required")
        if self.percent_off is not None:
            if not self.percent_off.is_finite() or not 0 < self.percent_off <= HUNDRED:
                raise InvalidCoupon("percent_off must be greater than 0 and at most 100")
            if self.percent_off != self.percent_off.quantize(Decimal("0.01")):
                raise InvalidCoupon("percent_off has at most two decimals")
        if self.amount_off is not None:
            if not self.amount_off.amount.is_finite() or self.amount_off.amount <= 0:
                raise InvalidCoupon("amount_off must be positive")
            if not self.amount_off.is_exact():
                raise InvalidCoupon("amount_off has more decimals than its currency allows")
        if self.min_subtotal is not None:
            if not self.min_subtotal.amount.is_finite() or self.min_subtotal.is_negative():
                raise InvalidCoupon("min_subtotal must not be negative")
            if not self.min_subtotal.is_exact():
                raise InvalidCoupon("min_subtotal has more decimals than its currency allows")
        if (
            self.amount_off is not None
            and self.min_subtotal is not None
            and self.amount_off.currency != self.min_subtotal.currency
        ):
            raise InvalidCoupon("amount_off and min_subtotal must be in the same currency")
        if self.max_redemptions is not None and self.max_redemptions < 1:
            raise InvalidCoupon("max_redemptions must be at least 1")
        if self.per_customer_limit is not None and self.per_customer_limit < 1:
            raise InvalidCoupon("per_customer_limit must be at least 1")
        if self.redemptions < 0:
            raise InvalidCoupon("redemptions cannot be negative")
        for name in ("starts_at", "ends_at"):
            moment: datetime | None = getattr(self, name)
            if moment is not None and moment.utcoffset() is None:
                raise InvalidCoupon(f"{name} must carry a time zone")
            if moment is not None and not _within_calendar(moment):
                raise InvalidCoupon(f"{name} must lie between years 1 and 9999 (UTC)")
        if (
            self.starts_at is not None
            and self.ends_at is not None
            and self.ends_at <= self.starts_at
        ):
            raise InvalidCoupon("ends_at must be after starts_at")

    @property
    def currency(self) -> str | None:
        """The currency its money fields are in; None for a percentage without a minimum."""
        if self.amount_off is not None:
            return self.amount_off.currency
        if self.min_subtotal is not None:
            return self.min_subtotal.currency
        return None

    def is_active(self, now: datetime) -> bool:
        """True inside its time window (the window alone; limits are not looked at)."""
        return (self.starts_at is None or self.starts_at <= now) and (
            self.ends_at is None or now < self.ends_at
        )

    def is_used_up(self) -> bool:
        return self.max_redemptions is not None and self.redemptions >= self.max_redemptions

    def meets_minimum(self, subtotal: Money) -> bool:
        return self.min_subtotal is None or self.min_subtotal <= subtotal

    def discount_for(self, subtotal: Money) -> Money:
        """What this coupon takes off `subtotal`: rounded half-even, never above it.

        Zero when the subtotal is below `min_subtotal` (a cart whose items were
        removed after the coupon was applied simply stops getting the discount).
        The time window and redemption limits are `ensure_applicable`'s business.
        """
        if self.currency is not None and self.currency != subtotal.currency:
            raise CouponCurrencyMismatch(self.code, subtotal.currency)
        if subtotal.amount <= 0 or not self.meets_minimum(subtotal):
            return Money.zero(subtotal.currency)
        if self.percent_off is not None:
            discount = (subtotal * (self.percent_off / HUNDRED)).quantize()
        else:
            assert self.amount_off is not None
            discount = self.amount_off.quantize()
        return discount.min(subtotal.quantize())

    def ensure_applicable(
        self,
        *,
        subtotal: Money,
        now: datetime,
        customer_redemptions: int = 0,
    ) -> None:
        """Raise the `CouponNotApplicable` that says why this coupon cannot be used now.

        `customer_redemptions` is how many of this customer's orders already
        used the coupon (0 when the customer is not known yet).
        """
        if now.utcoffset() is None:
            raise ValueError("now must carry a time zone")
        if self.currency is not None and self.currency != subtotal.currency:
            raise CouponCurrencyMismatch(self.code, subtotal.currency)
        if self.starts_at is not None and now < self.starts_at:
            raise CouponNotStarted(self.code)
        if self.ends_at is not None and now >= self.ends_at:
            raise CouponExpired(self.code)
        if self.is_used_up():
            raise CouponUsedUp(self.code)
        if self.per_customer_limit is not None and customer_redemptions >= self.per_customer_limit:
            raise CouponCustomerLimitReached(self.code)
        if not self.meets_minimum(subtotal):
            assert self.min_subtotal is not None
            raise CouponMinimumNotMet(self.code, self.min_subtotal)


@dataclass(frozen=True, slots=True)
class CouponRecord:
    """A stored coupon: its rules, and when it was made (what the admin list shows)."""

    id: UUID
    coupon: Coupon
    created_at: datetime
    updated_at: datetime
