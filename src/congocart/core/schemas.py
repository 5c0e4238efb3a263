"""Pydantic building blocks every feature's `schemas.py` uses."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Generic, Self, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from congocart.core.money import SUPPORTED_CURRENCIES, Money


class RequestModel(BaseModel):
    """A request body: unknown fields are rejected, so no mass assignment."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul_characters(cls, value: object) -> object:
        # PostgreSQL text cannot hold NUL: refuse it here as a 422, not a 500 later.
        if _contains_nul(value):
            raise ValueError("must not contain NUL characters")
        return value


def _contains_nul(value: object) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, list | tuple | set | frozenset):
        return any(_contains_nul(item) for item in value)
    if isinstance(value, dict):
        return any(_contains_nul(k) or _contains_nul(v) for k, v in value.items())
    return False


class ResponseModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]


class MoneyIn(RequestModel):
    """`{"amount": "19.99", "currency": "USD"}`; never a float."""

    amount: Annotated[str, StringConstraints(pattern=r"^-?\d{1,12}(\.\d{1,4})?$")] = Field(
        examples=["19.99"]
    )
    currency: Currency = Field(examples=["USD"])

    @model_validator(mode="after")
    def _exact_and_supported(self) -> Self:
        if self.currency not in SUPPORTED_CURRENCIES:
            raise ValueError(f"unsupported currency {self.currency}")
        if not Money(Decimal(self.amount), self.currency).is_exact():
            raise ValueError(f"amount has more decimals than {self.currency} allows")
        return self

    def to_money(self) -> Money:
        return Money.of(self.amount, self.currency)


class MoneyOut(ResponseModel):
    amount: str = Field(examples=["19.99"])
    currency: str = Field(examples=["USD"])

    @classmethod
    def of(cls, money: Money) -> MoneyOut:
        return cls(amount=str(money.quantize().amount), currency=money.currency)


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


class FieldErrorRead(ResponseModel):
    field: str = Field(examples=["variants.0.price.amount"])
    message: str


class Problem(ResponseModel):
    """RFC 9457 problem details: the body of every error response."""

    type: str = Field(examples=["https://congocart.dev/problems/out-of-stock"])
    title: str = Field(examples=["Conflict"])
    status: int = Field(description="Always the response's HTTP status.", examples=[409])
    detail: str
    code: str = Field(description="Stable and machine-readable.", examples=["out_of_stock"])
    request_id: str = Field(description="Equals the response's `X-Request-ID` header.")
    errors: list[FieldErrorRead] | None = Field(
        default=None, description="The fields that failed validation (422), when any."
    )
