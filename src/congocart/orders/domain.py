"""Orders: the status machine, who may move it, refunds, and order numbers.

Every status change goes through `next_status` (or `plan_refund`), which read
the tables below; nothing else decides whether an order may move.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from congocart.core.money import Money


class OrderStatus(StrEnum):
    PAID = "paid"
    FULFILLING = "fulfilling"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"


class OrderAction(StrEnum):
    FULFILL = "fulfill"
    SHIP = "ship"
    DELIVER = "deliver"
    CANCEL = "cancel"
    REFUND = "refund"


class Actor(StrEnum):
    """Who asks: the order's owner, staff, an admin, or the system (jobs)."""

    OWNER = "owner"
    STAFF = "staff"
    ADMIN = "admin"
    SYSTEM = "system"


S = OrderStatus
A = OrderAction

# The whole state machine (api-contract.md, "Orders"). A refund moves the order
# to REFUNDED only once refunds reach the total; a partial one keeps the status.
TRANSITIONS: Mapping[tuple[OrderStatus, OrderAction], OrderStatus] = {
    (S.PAID, A.FULFILL): S.FULFILLING,
    (S.PAID, A.SHIP): S.SHIPPED,
    (S.FULFILLING, A.SHIP): S.SHIPPED,
    (S.SHIPPED, A.DELIVER): S.DELIVERED,
    (S.PAID, A.CANCEL): S.CANCELLED,
    (S.FULFILLING, A.CANCEL): S.CANCELLED,
    (S.PAID, A.REFUND): S.REFUNDED,
    (S.FULFILLING, A.REFUND): S.REFUNDED,
    (S.SHIPPED, A.REFUND): S.REFUNDED,
    (S.DELIVERED, A.REFUND): S.REFUNDED,
}

_BACK_OFFICE = frozenset({Actor.STAFF, Actor.ADMIN, Actor.SYSTEM})
# Who may ask for each action at all (a refusal here is a 403, not a 409).
PERMITTED_ACTORS: Mapping[OrderAction, frozenset[Actor]] = {
    A.FULFILL: _BACK_OFFICE,
    A.SHIP: _BACK_OFFICE,
    A.DELIVER: _BACK_OFFICE,
    A.CANCEL: _BACK_OFFICE | {Actor.OWNER},
    A.REFUND: _BACK_OFFICE,
}
# An owner may cancel only before the order ships.
OWNER_CANCELLABLE: frozenset[OrderStatus] = frozenset({S.PAID, S.FULFILLING})

REFUNDABLE: frozenset[OrderStatus] = frozenset(
    status for (status, action) in TRANSITIONS if action is A.REFUND
)


class OrderRuleViolation(Exception):
    """A change the order's rules refuse; `str(exc)` is fit for the client."""


class TransitionNotAllowed(OrderRuleViolation):
    def __init__(self, status: OrderStatus, action: OrderAction) -> None:
        self.status = status
        self.action = action
        super().__init__(f"An order that is {status} cannot be {_past(action)}.")


class ActorNotPermitted(OrderRuleViolation):
    def __init__(self, actor: Actor, action: OrderAction) -> None:
        self.actor = actor
        self.action = action
        super().__init__(f"Only staff may {action} an order.")


class InvalidRefundAmount(OrderRuleViolation):
    def __init__(self, amount: Money, refundable: Money) -> None:
        self.amount = amount
        self.refundable = refundable
        super().__init__(
            f"A refund must be more than zero and at most the {refundable} still refundable; "
            f"got {amount}."
        )


def _past(action: OrderAction) -> str:
    return {
        A.FULFILL: "fulfilled",
        A.SHIP: "shipped",
        A.DELIVER: "delivered",
        A.CANCEL: "cancelled",
        A.REFUND: "refunded",
    }[action]


def next_status(status: OrderStatus, action: OrderAction, *, actor: Actor) -> OrderStatus:
    """The status after `action`, or `ActorNotPermitted` / `TransitionNotAllowed`.

    For REFUND this is the status of a full refund; partial refunds go through
    `plan_refund`, which keeps the status until refunds reach the total.
    """
    if actor not in PERMITTED_ACTORS[action]:
        raise ActorNotPermitted(actor, action)
    if actor is Actor.OWNER and action is A.CANCEL and status not in OWNER_CANCELLABLE:
        raise TransitionNotAllowed(status, action)
    try:
        return TRANSITIONS[(status, action)]
    except KeyError:
        raise TransitionNotAllowed(status, action) from None


@dataclass(frozen=True, slots=True)
class RefundPlan:
    """What a refund does: give back `amount`, and leave the order in `status`."""

    amount: Money
    status: OrderStatus
    refunded_total: Money
    remaining: Money

    @property
    def completes(self) -> bool:
        return self.remaining.is_zero()


def plan_refund(
    *,
    status: OrderStatus,
    total: Money,
    already_refunded: Money,
    amount: Money | None,
    actor: Actor,
) -> RefundPlan:
    """Check a refund of `amount` (None: everything still refundable) and say what follows.

    Refunds accumulate; once they reach `total` the order becomes REFUNDED,
    before that its status is kept. A cancelled or refunded order cannot be
    refunded (`TransitionNotAllowed`); an amount that is not positive, not a
    whole minor unit, or above what remains raises `InvalidRefundAmount`.
    """
    full_refund_status = next_status(status, A.REFUND, actor=actor)
    remaining = (total - already_refunded).quantize()
    if remaining.is_negative():
        raise ValueError(f"already refunded {already_refunded} exceeds total {total}")
    if amount is None:
        amount = remaining
    if amount.currency != total.currency:
        raise InvalidRefundAmount(amount, remaining)
    if amount.amount <= 0 or not amount.is_exact() or remaining < amount:
        raise InvalidRefundAmount(amount, remaining)
    left = remaining - amount
    return RefundPlan(
        amount=amount,
        status=full_refund_status if left.is_zero() else status,
        refunded_total=already_refunded + amount,
        remaining=left,
    )


ORDER_NUMBER_PREFIX = "CC-"
_ORDER_NUMBER = re.compile(r"^CC-(\d{6,})$")


def format_order_number(sequence_value: int) -> str:
    """`CC-000123`: at least six digits, more when the sequence outgrows them."""
    if sequence_value < 1:
        raise ValueError("order numbers start at 1")
    return f"{ORDER_NUMBER_PREFIX}{sequence_value:06d}"


def parse_order_number(number: str) -> int | None:
    """The sequence value behind `CC-000123`, or None when it is not an order number."""
    match = _ORDER_NUMBER.match(number.strip().upper())
    if match is None:
        return None
    digits = match.group(1)
    if len(digits) > 6 and digits.startswith("0"):
        return None
    value = int(digits)
    return value if value >= 1 else None
