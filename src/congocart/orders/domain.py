"""Orders: the status machine, who may move it, refunds, and order numbers.

Every status change goes through `next_status` (or `plan_refund`), which read
the tables below; nothing else decides whether an order may move.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any
from uuid import UUID

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


# --------------------------------------------------------------- what an order is made of


@dataclass(frozen=True, slots=True)
class OrderLineDraft:
    """A line as checkout freezes it: the name and price the SKU had at that moment."""

    sku: str
    name: str
    unit_price: Money
    quantity: int

    @property
    def line_total(self) -> Money:
        return self.unit_price * self.quantity


@dataclass(frozen=True, slots=True)
class PaymentRecord:
    """The captured charge behind a new order, as the gateway reported it."""

    gateway: str
    # The provider's charge id; None only when there was nothing to charge.
    gateway_ref: str | None
    amount: Money
    brand: str | None = None
    last4: str | None = None


@dataclass(frozen=True, slots=True)
class OrderLine:
    sku: str
    name: str
    unit_price: Money
    quantity: int
    line_total: Money


@dataclass(frozen=True, slots=True)
class OrderPayment:
    """The order's payment as the customer sees it (`payments.status` values)."""

    status: str
    amount: Money
    refunded: Money
    brand: str | None
    last4: str | None


@dataclass(frozen=True, slots=True)
class Order:
    """The read model of an order: what the API shows and what events carry."""

    id: UUID
    number: str
    status: OrderStatus
    user_id: UUID | None
    email: str
    currency: str
    items: tuple[OrderLine, ...]
    subtotal: Money
    discount: Money
    shipping: Money
    tax: Money
    total: Money
    refunded: Money
    tax_rate: Decimal | None
    coupon_code: str | None
    shipping_method: str
    shipping_address: Mapping[str, str]
    payment: OrderPayment | None
    carrier: str | None
    tracking_number: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class OrderEvent:
    """One entry of an order's audit trail: who, when, from, to, why."""

    id: UUID
    action: str
    actor_id: UUID | None
    actor_role: Actor
    from_status: OrderStatus | None
    to_status: OrderStatus
    reason: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Refund:
    """Money given back on an order; `pending` until the gateway has confirmed it."""

    id: UUID
    order_id: UUID
    amount: Money
    reason: str
    status: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Caller:
    """Who asks for something on an order, as the verified token says."""

    id: UUID
    is_staff: bool = False
    is_admin: bool = False

    def actor_on(self, owner_id: UUID | None) -> Actor | None:
        """The role the caller acts in on an order; None when they may not see it at all.

        Back-office roles win over ownership: an admin cancelling their own order
        acts as admin (and is not bound by the owner's before-shipping rule).
        """
        if self.is_admin:
            return Actor.ADMIN
        if self.is_staff:
            return Actor.STAFF
        if owner_id is not None and owner_id == self.id:
            return Actor.OWNER
        return None


def money_document(money: Money) -> dict[str, str]:
    return {"amount": str(money.quantize().amount), "currency": money.currency}


def order_document(order: Order) -> dict[str, Any]:
    """The order as the API and webhooks show it (api-contract.md, "Orders").

    JSON-ready: money as `{"amount": "19.99", "currency": "USD"}`, ids as strings,
    times as RFC 3339 UTC strings.
    """
    payment: dict[str, Any] | None = None
    if order.payment is not None:
        payment = {"status": order.payment.status}
        if order.payment.last4 is not None:
            payment["last4"] = order.payment.last4
    return {
        "id": str(order.id),
        "number": order.number,
        "status": order.status.value,
        "email": order.email,
        "items": [
            {
                "sku": line.sku,
                "name": line.name,
                "unit_price": money_document(line.unit_price),
                "quantity": line.quantity,
                "line_total": money_document(line.line_total),
            }
            for line in order.items
        ],
        "subtotal": money_document(order.subtotal),
        "discount": money_document(order.discount),
        "shipping": money_document(order.shipping),
        "tax": money_document(order.tax),
        "total": money_document(order.total),
        "refunded": money_document(order.refunded),
        "shipping_method": order.shipping_method,
        "shipping_address": dict(order.shipping_address),
        "carrier": order.carrier,
        "tracking_number": order.tracking_number,
        "payment": payment,
        "created_at": _rfc3339(order.created_at),
        "updated_at": _rfc3339(order.updated_at),
    }


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
