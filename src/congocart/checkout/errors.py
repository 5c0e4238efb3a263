"""The checkout feature's errors, as clients see them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from congocart.core.errors import CongoError
from congocart.core.idempotency import (
    IdempotencyKeyInFlight,
    IdempotencyKeyInvalid,
    IdempotencyKeyMissing,
    IdempotencyKeyReused,
)

__all__ = [
    "CheckoutInProgress",
    "IdempotencyKeyInFlight",
    "IdempotencyKeyInvalid",
    "IdempotencyKeyMissing",
    "IdempotencyKeyReused",
    "PaymentDeclined",
    "PaymentTimeout",
    "PaymentUnavailable",
]


class CheckoutInProgress(CongoError):
    """Another checkout of the same cart (another Idempotency-Key) holds its stock."""

    status_code = 409
    code = "checkout_in_progress"
    default_detail = "This cart is being checked out by another request; retry shortly."

    def __init__(
        self,
        detail: str | None = None,
        *,
        retry_after: int = 1,
        errors: Sequence[Mapping[str, str]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(
            detail, errors=errors, headers={"Retry-After": str(retry_after), **(headers or {})}
        )


class PaymentDeclined(CongoError):
    status_code = 402
    code = "payment_declined"
    default_detail = "The payment was declined; nothing was charged."


class PaymentUnavailable(CongoError):
    status_code = 502
    code = "payment_unavailable"
    default_detail = "The payment provider failed; nothing was charged. Try again shortly."


class PaymentTimeout(CongoError):
    status_code = 504
    code = "payment_timeout"
    default_detail = (
        "The payment provider did not answer in time; nothing was reserved, "
        "and any charge it made will be reversed."
    )
