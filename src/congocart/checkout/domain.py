"""Checkout: what a checkout holds while the payment is taken.

A checkout attempt reserves the cart's stock (and its coupon's redemption)
for `RESERVATION_TTL`, under a payment key of its own that the gateway
dedupes on. It ends `confirmed` (an order exists) or `released` (stock and
coupon given back, any charge under its key voided); a `reserved` attempt
past its expiry is released by the sweeper.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from uuid import UUID

from congocart.core.money import Money

# How long a checkout's idempotency key is leased, which bounds how long a
# checkout may take from reservation to confirmation (the gateway's timeout is
# far shorter), and how long a crashed checkout holds stock before the sweeper
# frees it. The reservation expires `RESERVATION_MARGIN` before the key's lease
# ends, so a retry can take a crashed request's key over only once its
# reservation may be released.
RESERVATION_TTL = timedelta(minutes=3)
RESERVATION_MARGIN = timedelta(seconds=1)


class AttemptStatus(StrEnum):
    RESERVED = "reserved"
    CONFIRMED = "confirmed"
    RELEASED = "released"


@dataclass(frozen=True, slots=True)
class ShippingAddress:
    name: str
    line1: str
    city: str
    postal_code: str
    # ISO 3166-1 alpha-2, upper case.
    country: str
    line2: str | None = None

    def as_document(self) -> dict[str, str]:
        """The address as the order keeps it (absent fields left out)."""
        document = {
            "name": self.name,
            "line1": self.line1,
            "city": self.city,
            "postal_code": self.postal_code,
            "country": self.country,
        }
        if self.line2:
            document["line2"] = self.line2
        return document


def payment_key_for(attempt_id: UUID) -> str:
    """The gateway idempotency key of an attempt: one charge per attempt, ever."""
    return f"checkout:{attempt_id}"


@dataclass(frozen=True, slots=True)
class ReservedAttempt:
    """An attempt's reservation: what to give back if it never becomes an order."""

    id: UUID
    cart_id: UUID
    payment_key: str
    # sku -> quantity
    lines: Mapping[str, int]
    amount: Money
    coupon_code: str | None


@dataclass(frozen=True, slots=True)
class NewAttempt:
    """An attempt as it is inserted: its reservation, who checks out (a coupon
    limited per customer counts their live attempts), the request's key and
    when the reservation expires."""

    reservation: ReservedAttempt
    user_id: UUID | None
    email: str
    idempotency_key: str
    expires_at: datetime


def merge_lines(attempts: list[ReservedAttempt]) -> dict[str, int]:
    """The reserved quantities of several attempts, summed per SKU."""
    merged: dict[str, int] = {}
    for attempt in attempts:
        for sku, quantity in attempt.lines.items():
            merged[sku] = merged.get(sku, 0) + quantity
    return merged
