"""Pydantic building blocks every feature's `schemas.py` uses."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Generic, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from congocart.core.money import SUPPORTED_CURRENCIES, Money


class RequestModel(BaseModel):
    """A request body: unknown fields are rejected, so no mass assignment."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


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
