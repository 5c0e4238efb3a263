"""Catalog request and response bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Self
from uuid import UUID

from pydantic import AfterValidator, Field, StringConstraints, model_validator

from congocart.catalog.domain import (
    MAX_STOCK,
    SKU_PATTERN,
    SLUG_MAX_LENGTH,
    SLUG_PATTERN,
    Category,
    NewProduct,
    NewVariant,
    ProductChanges,
    ProductView,
    StockLevel,
    is_uuid,
)
from congocart.core.schemas import MoneyIn, MoneyOut, RequestModel, ResponseModel


def _not_a_uuid(slug: str) -> str:
    # `GET /products/{id_or_slug}` reads a UUID as an id, so a slug may not look like one.
    if is_uuid(slug):
        raise ValueError("a slug may not have the form of a UUID")
    return slug


Slug = Annotated[
    str,
    StringConstraints(pattern=SLUG_PATTERN, max_length=SLUG_MAX_LENGTH),
    AfterValidator(_not_a_uuid),
    Field(examples=["linen-shirt"]),
]
Sku = Annotated[str, StringConstraints(pattern=SKU_PATTERN), Field(examples=["SHIRT-LINEN-M"])]
# One line of text: no control characters (PostgreSQL text cannot even hold NUL).
_ONE_LINE = r"^[^\x00-\x1f\x7f]+$"
Name = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=_ONE_LINE)]
VariantName = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=_ONE_LINE)]
Description = Annotated[str, StringConstraints(max_length=5000, pattern=r"^[^\x00]*$")]
Reason = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=_ONE_LINE)]
Stock = Annotated[int, Field(strict=True, ge=0, le=MAX_STOCK, examples=[25])]


class PriceIn(MoneyIn):
    """A price: a non-negative amount in the shop currency."""

    @model_validator(mode="after")
    def _not_negative(self) -> Self:
        if self.amount.startswith("-"):
            raise ValueError("a price cannot be negative")
        return self


class VariantCreate(RequestModel):
    sku: Sku
    name: VariantName | None = None
    price: PriceIn
    stock: Stock

    def to_domain(self) -> NewVariant:
        return NewVariant(
            sku=self.sku, name=self.name, price=self.price.to_money(), stock=self.stock
        )


class ProductCreate(RequestModel):
    name: Name = Field(examples=["Linen Shirt"])
    slug: Slug | None = None
    description: Description = ""
    category: Slug | None = Field(default=None, examples=["apparel"])
    variants: list[VariantCreate] = Field(min_length=1, max_length=100)

    @model_validator(mode="after")
    def _distinct_skus(self) -> Self:
        skus = [v.sku for v in self.variants]
        if len(set(skus)) != len(skus):
            raise ValueError("each variant needs its own SKU")
        return self

    def to_domain(self) -> NewProduct:
        return NewProduct(
            name=self.name,
            slug=self.slug,
            description=self.description,
            category=self.category,
            variants=[v.to_domain() for v in self.variants],
        )


class ProductUpdate(RequestModel):
    """Only the fields sent change; `category: null` takes the product out of its category."""

    name: Name | None = None
    slug: Slug | None = None
    description: Description | None = None
    category: Slug | None = None

    @model_validator(mode="after")
    def _no_null_for_required_fields(self) -> Self:
        for field in ("name", "slug", "description"):
            if field in self.model_fields_set and getattr(self, field) is None:
                raise ValueError(f"{field} cannot be null")
        return self

    def to_domain(self) -> ProductChanges:
        return ProductChanges(
            fields=frozenset(self.model_fields_set),
            name=self.name,
            slug=self.slug,
            description=self.description,
            category=self.category,
        )


class VariantUpdate(RequestModel):
    name: VariantName | None = None
    price: PriceIn | None = None

    @model_validator(mode="after")
    def _no_nulls(self) -> Self:
        for field in ("name", "price"):
            if field in self.model_fields_set and getattr(self, field) is None:
                raise ValueError(f"{field} cannot be null")
        return self


class AdjustmentCreate(RequestModel):
    delta: int = Field(
        strict=True, ge=-MAX_STOCK, le=MAX_STOCK, examples=[12], description="Units, not 0."
    )
    reason: Reason = Field(examples=["delivery from supplier"])

    @model_validator(mode="after")
    def _nonzero(self) -> Self:
        if self.delta == 0:
            raise ValueError("delta cannot be 0")
        return self


class VariantRead(ResponseModel):
    sku: str
    name: str
    price: MoneyOut
    available: int


class ProductRead(ResponseModel):
    id: UUID
    slug: str
    name: str
    description: str
    category: str | None
    variants: list[VariantRead]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, product: ProductView) -> ProductRead:
        return cls(
            id=product.id,
            slug=product.slug,
            name=product.name,
            description=product.description,
            category=product.category,
            variants=[
                VariantRead(
                    sku=v.sku, name=v.name, price=MoneyOut.of(v.price), available=v.available
                )
                for v in product.variants
            ],
            created_at=product.created_at,
            updated_at=product.updated_at,
        )


class ProductList(ResponseModel):
    items: list[ProductRead]
    next_cursor: str | None


class CategoryRead(ResponseModel):
    slug: str
    name: str


class CategoryList(ResponseModel):
    items: list[CategoryRead]
    next_cursor: None = None

    @classmethod
    def of(cls, categories: list[Category]) -> CategoryList:
        return cls(items=[CategoryRead(slug=c.slug, name=c.name) for c in categories])


class StockLevelRead(ResponseModel):
    sku: str
    on_hand: int
    reserved: int
    available: int

    @classmethod
    def of(cls, level: StockLevel) -> StockLevelRead:
        return cls(
            sku=level.sku,
            on_hand=level.on_hand,
            reserved=level.reserved,
            available=level.available,
        )
