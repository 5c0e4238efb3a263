"""Checkout's request body (the answer is the order: `orders.schemas.OrderRead`)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints

from congocart.checkout.domain import ShippingAddress
from congocart.core.schemas import RequestModel
from congocart.identity.schemas import Email

# One line of text: no control characters (PostgreSQL text cannot even hold NUL).
_ONE_LINE = r"^[^\x00-\x1f\x7f]+$"


def _line(max_length: int) -> object:
    return StringConstraints(min_length=1, max_length=max_length, pattern=_ONE_LINE)


Country = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z]{2}$"),
    AfterValidator(str.upper),
    Field(description="ISO 3166-1 alpha-2 code.", examples=["US"]),
]


class ShippingAddressIn(RequestModel):
    name: Annotated[str, _line(200)] = Field(examples=["Ann Lee"])
    line1: Annotated[str, _line(200)] = Field(examples=["1 Main St"])
    line2: Annotated[str, _line(200)] | None = None
    city: Annotated[str, _line(100)] = Field(examples=["Springfield"])
    postal_code: Annotated[str, _line(20)] = Field(examples=["12345"])
    country: Country

    def to_domain(self) -> ShippingAddress:
        return ShippingAddress(
            name=self.name,
            line1=self.line1,
            line2=self.line2,
            city=self.city,
            postal_code=self.postal_code,
            country=self.country,
        )


class PaymentIn(RequestModel):
    token: Annotated[str, _line(255)] = Field(
        description="A payment token from the provider's client (sandbox: `tok_visa`, ...).",
        examples=["tok_visa"],
    )


class CheckoutCreate(RequestModel):
    email: Email | None = Field(
        default=None,
        description="Where the receipt goes. Required for guests; defaults to the account's.",
    )
    shipping_address: ShippingAddressIn
    shipping_method: Annotated[str, _line(50)] | None = Field(
        default=None,
        description="A code from `GET /shipping-methods`; the default method when absent.",
        examples=["standard"],
    )
    payment: PaymentIn
