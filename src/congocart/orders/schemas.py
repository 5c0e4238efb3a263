"""Orders request and response bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Self
from uuid import UUID

from pydantic import Field, StringConstraints, model_validator

from congocart.core.schemas import MoneyIn, MoneyOut, RequestModel, ResponseModel
from congocart.orders.domain import Order, OrderEvent, Refund, order_document

# One line of text: no control characters (PostgreSQL text cannot even hold NUL).
_ONE_LINE = r"^[^\x00-\x1f\x7f]+$"
Reason = Annotated[
    str,
    StringConstraints(min_length=1, max_length=500, pattern=_ONE_LINE),
    Field(examples=["damaged in transit"]),
]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=_ONE_LINE)]


class OrderItemRead(ResponseModel):
    sku: str
    name: str
    unit_price: MoneyOut
    quantity: int
    line_total: MoneyOut


class OrderPaymentRead(ResponseModel):
    status: str = Field(
        examples=["captured"],
        description="captured, partially_refunded, refunded or voided.",
    )
    last4: str | None = Field(default=None, examples=["4242"])


class OrderRead(ResponseModel):
    id: UUID
    number: str = Field(examples=["CC-000123"])
    status: str = Field(examples=["paid"])
    email: str
    items: list[OrderItemRead]
    subtotal: MoneyOut
    discount: MoneyOut
    shipping: MoneyOut
    tax: MoneyOut
    total: MoneyOut
    refunded: MoneyOut
    shipping_method: str
    shipping_address: dict[str, str]
    carrier: str | None = None
    tracking_number: str | None = None
    payment: OrderPaymentRead | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, order: Order) -> OrderRead:
        return cls.model_validate(order_document(order))


def order_to_response(order: Order) -> dict[str, Any]:
    """The order as a JSON-ready dict, exactly as `GET /orders/{id}` returns it."""
    return OrderRead.of(order).model_dump(mode="json", exclude_none=False)


class OrderList(ResponseModel):
    items: list[OrderRead]
    next_cursor: str | None = None


class OrderEventRead(ResponseModel):
    """One change of the order: who (actor), when, from, to, why."""

    id: UUID
    action: str = Field(examples=["ship"])
    actor_id: UUID | None
    actor_role: str = Field(examples=["staff"])
    from_status: str | None = Field(examples=["paid"])
    to_status: str = Field(examples=["shipped"])
    reason: str | None
    created_at: datetime

    @classmethod
    def of(cls, event: OrderEvent) -> OrderEventRead:
        return cls(
            id=event.id,
            action=event.action,
            actor_id=event.actor_id,
            actor_role=event.actor_role.value,
            from_status=None if event.from_status is None else event.from_status.value,
            to_status=event.to_status.value,
            reason=event.reason,
            created_at=event.created_at,
        )


class OrderEventList(ResponseModel):
    items: list[OrderEventRead]
    next_cursor: str | None = None


class CancelRequest(RequestModel):
    reason: Reason | None = None


class ShipRequest(RequestModel):
    carrier: ShortText | None = None
    tracking_number: ShortText | None = None


class RefundCreate(RequestModel):
    amount: MoneyIn | None = Field(
        default=None, description="What to give back; everything still refundable when absent."
    )
    reason: Reason

    @model_validator(mode="after")
    def _positive(self) -> Self:
        if self.amount is not None and (
            self.amount.amount.startswith("-") or self.amount.to_money().is_zero()
        ):
            raise ValueError("a refund amount must be more than zero")
        return self


class RefundRead(ResponseModel):
    id: UUID
    order_id: UUID
    amount: MoneyOut
    reason: str
    status: str = Field(examples=["succeeded"], description="pending, succeeded or failed.")
    created_at: datetime

    @classmethod
    def of(cls, refund: Refund) -> RefundRead:
        return cls(
            id=refund.id,
            order_id=refund.order_id,
            amount=MoneyOut.of(refund.amount),
            reason=refund.reason,
            status=refund.status,
            created_at=refund.created_at,
        )
