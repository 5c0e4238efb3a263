"""The orders feature's errors, as clients see them."""

from __future__ import annotations

from congocart.core.errors import CongoError


class OrderNotFound(CongoError):
    # Also what someone else's order answers: existence never leaks.
    status_code = 404
    code = "order_not_found"
    default_detail = "There is no such order."


class InvalidTransition(CongoError):
    status_code = 409
    code = "invalid_transition"
    default_detail = "The order cannot make this change in its current status."


class InvalidRefundAmount(CongoError):
    status_code = 422
    code = "invalid_refund_amount"
    default_detail = "The refund must be more than zero and at most what is still refundable."
