"""The promotions feature's errors, as clients see them."""

from __future__ import annotations

from congocart.core.errors import CongoError


class CouponInvalid(CongoError):
    """Unknown, not started, expired, used up, limit reached or minimum not met."""

    status_code = 422
    code = "coupon_invalid"
    default_detail = "This coupon cannot be used on this cart."


class CouponUnavailable(CongoError):
    """Used up by a concurrent checkout between applying it and paying."""

    status_code = 409
    code = "coupon_unavailable"
    default_detail = "This coupon was used up by another order; nothing was charged."


class CouponCodeTaken(CongoError):
    status_code = 409
    code = "coupon_code_taken"
    default_detail = "A coupon with this code already exists."
