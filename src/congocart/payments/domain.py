"""Payments: the gateway port, what it answers, and how it fails.

`charge` both authorises and captures (the order is paid the moment it
exists). Every call carries an idempotency key: repeating a call with the same
key never moves money twice, which is what lets checkout retry and the
sweeper heal a crash between "charged" and "order written".

Failures are exceptions, and they mean different things to the caller:
- `PaymentDeclined`: the card said no; nothing was charged (402).
- `PaymentUnavailable`: the provider failed before charging; nothing was
  charged (502).
- `PaymentTimeout`: no answer in time; the outcome is UNKNOWN. The caller must
  treat the payment as possibly taken and void it later through
  `find_charge` + `void` with the same idempotency key (504).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from congocart.core.money import Money


class PaymentStatus(StrEnum):
    """The life of a payment recorded against an order."""

    AUTHORIZED = "authorized"
    CAPTURED = "captured"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"
    VOIDED = "voided"


@dataclass(frozen=True, slots=True)
class PaymentResult:
    """An approved, captured charge."""

    payment_ref: str
    amount: Money
    last4: str | None = None
    brand: str | None = None


@dataclass(frozen=True, slots=True)
class Reversal:
    """Money given back on a charge: a (partial) refund or a void."""

    ref: str
    payment_ref: str
    amount: Money


class PaymentError(Exception):
    """Base of everything a gateway raises."""


class PaymentDeclined(PaymentError):
    """The card was refused; nothing was charged."""

    def __init__(self, decline_code: str, message: str = "The card was declined.") -> None:
        self.decline_code = decline_code
        super().__init__(message)


class PaymentUnavailable(PaymentError):
    """The provider failed or could not be reached; nothing was charged."""


class PaymentTimeout(PaymentError):
    """No answer in time. The charge may or may not exist: settle it by idempotency key."""


class PaymentNotFound(PaymentError):
    """No charge with that reference."""


class RefundRejected(PaymentError):
    """The provider refused the refund (e.g. more than what is left on the charge)."""


class IdempotencyKeyConflict(PaymentError):
    """The idempotency key was already used for a different request (a bug in the caller)."""


class PaymentGateway(Protocol):
    """The port every payment provider adapter implements."""

    # Recorded with each payment ("sandbox"), so a charge can be traced to its provider.
    name: str

    async def charge(self, *, idempotency_key: str, amount: Money, token: str) -> PaymentResult:
        """Authorise and capture `amount` on the card behind `token`.

        The same key with the same request returns the first result (or raises
        the first decline) without charging again; with a different request it
        raises `IdempotencyKeyConflict`. `amount` must be positive.
        """
        ...

    async def find_charge(self, *, idempotency_key: str) -> PaymentResult | None:
        """The approved charge made under `idempotency_key`, if one exists."""
        ...

    async def refund(self, *, payment_ref: str, amount: Money, idempotency_key: str) -> Reversal:
        """Give back `amount` (at most what is still captured); once per idempotency key."""
        ...

    async def void(self, *, payment_ref: str, idempotency_key: str) -> Reversal:
        """Cancel the whole charge: release what is still captured (zero if nothing is).

        Like a provider's "cancel or refund": safe to call on a charge already
        voided or refunded, and once per idempotency key.
        """
        ...
