"""The checkout feature's errors, as clients see them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from congocart.core.errors import CongoError


class IdempotencyKeyMissing(CongoError):
    status_code = 400
    code = "idempotency_key_missing"
    default_detail = "Checkout requires an Idempotency-Key header."


class IdempotencyKeyInvalid(CongoError):
    status_code = 400
    code = "idempotency_key_invalid"
    default_detail = "The Idempotency-Key header must be 1-255 printable ASCII characters."


class IdempotencyKeyReused(CongoError):
    status_code = 422
    code = "idempotency_key_reused"
    default_detail = "This Idempotency-Key was already used with a different request body."


class IdempotencyKeyInFlight(CongoError):
    status_code = 409
    code = "idempotency_key_in_flight"
    default_detail = "A request with this Idempotency-Key is still being processed; retry shortly."

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
