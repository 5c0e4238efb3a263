"""Catalog entities and their rules: slugs, prices in the shop currency, stock lines.

Pure: no framework, driver or I/O. `ProductView` is what the admin's writes
answer; the storefront's reads answer `ProductDocument`s, the same product as
plain JSON-ready dicts; `VariantSnapshot` is what carts and checkout price from.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TypedDict
from uuid import UUID

from congocart.core.money import Money

SLUG_PATTERN = r"^[a-z0-9]+(-[a-z0-9]+)*$"
SKU_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
SLUG_MAX_LENGTH = 100
MAX_STOCK = 1_000_000_000
DEFAULT_VARIANT_NAME = "Default"

_SLUG = re.compile(SLUG_PATTERN)
_SKU = re.compile(SKU_PATTERN)
_NOT_SLUG = re.compile(r"[^a-z0-9]+")
_SEARCH_WORD = re.compile(r"[^\W_]+")
_MAX_SEARCH_WORDS = 8


class ProductSort(StrEnum):
    NEWEST = "newest"
    PRICE_ASC = "price_asc"
    PRICE_DESC = "price_desc"
    NAME = "name"


def slugify(text: str) -> str:
    """`"Café Crème 2-Pack!"` → `"cafe-creme-2-pack"`; empty when nothing is left."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = _NOT_SLUG.sub("-", ascii_text.lower()).strip("-")
    return slug[:SLUG_MAX_LENGTH].rstrip("-")


def is_slug(value: str) -> bool:
    return len(value) <= SLUG_MAX_LENGTH and _SLUG.fullmatch(value) is not None


def is_sku(value: str) -> bool:
    return _SKU.fullmatch(value) is not None


def is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def category_name(slug: str) -> str:
    """The display name given to a category created from its slug alone."""
    return slug.replace("-", " ").title()


def search_prefix_query(q: str) -> str | None:
    """The words of a search box as a tsquery where every word is a prefix.

    Only letters and digits survive, so the result can never carry tsquery
    operators of the user's own; None when no word is left.
    """
    words = _SEARCH_WORD.findall(q.lower())[:_MAX_SEARCH_WORDS]
    if not words:
        return None
    return " & ".join(f"{word[:64]}:*" for word in words)


@dataclass(frozen=True, slots=True)
class NewVariant:
    sku: str
    price: Money
    stock: int
    name: str | None = None


@dataclass(frozen=True, slots=True)
class NewProduct:
    name: str
    variants: Sequence[NewVariant]
    slug: str | None = None
    description: str = ""
    category: str | None = None

    def base_slug(self) -> str:
        if self.slug:
            return self.slug
        derived = slugify(self.name) or "product"
        # A slug must never read as an id in `/products/{id_or_slug}`.
        return f"p-{derived}" if is_uuid(derived) else derived

    def min_price(self) -> Money:
        return min(v.price for v in self.variants)


@dataclass(frozen=True, slots=True)
class ProductChanges:
    """A partial update: only the fields named in `fields` change."""

    fields: frozenset[str]
    name: str | None = None
    slug: str | None = None
    description: str | None = None
    category: str | None = None


@dataclass(frozen=True, slots=True)
class VariantView:
    sku: str
    name: str
    price: Money
    available: int


@dataclass(frozen=True, slots=True)
class ProductView:
    id: UUID
    slug: str
    name: str
    description: str
    category: str | None
    variants: list[VariantView]
    created_at: datetime
    updated_at: datetime
    min_price_minor: int


class MoneyDocument(TypedDict):
    amount: str
    currency: str


class VariantDocument(TypedDict):
    sku: str
    name: str
    price: MoneyDocument
    available: int


class ProductDocument(TypedDict):
    """A product as the storefront answers it: the fields of `ProductRead`, as plain
    dicts that serialise straight to JSON (no model to build per product)."""

    id: str
    slug: str
    name: str
    description: str
    category: str | None
    variants: list[VariantDocument]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Category:
    slug: str
    name: str


@dataclass(frozen=True, slots=True)
class ProductPage:
    items: list[ProductDocument]
    next_cursor: str | None


# Marks, in a rendered page, where a variant's `available` goes. A JSON renderer
# escapes control characters inside strings, so a raw NUL is only ever a hole.
AVAILABLE_HOLE = b"\x00"


@dataclass(frozen=True, slots=True)
class PageTemplate:
    """A rendered page with a hole for each variant's `available`, in page order.

    Everything but stock changes only when the catalog revision moves, so a
    template read at the current revision and filled with live stock is the
    page as it is now.
    """

    revision: int
    skus: tuple[str, ...]
    pieces: tuple[bytes, ...]  # one more than skus: the text around the holes
    size: int  # bytes held, SKUs included

    @classmethod
    def of(cls, rendered: bytes, *, revision: int, skus: Sequence[str]) -> PageTemplate:
        pieces = tuple(rendered.split(AVAILABLE_HOLE))
        if len(pieces) != len(skus) + 1:
            raise ValueError(f"{len(pieces) - 1} holes in the page for {len(skus)} SKUs")
        size = len(rendered) + sum(len(sku) for sku in skus)
        return cls(revision=revision, skus=tuple(skus), pieces=pieces, size=size)

    def fill(self, available: Sequence[int]) -> bytes:
        """The page with these stock counts, one per SKU in `skus` order."""
        if len(available) != len(self.skus):
            raise ValueError(f"{len(available)} stock counts for {len(self.skus)} SKUs")
        parts = [self.pieces[0]]
        for count, piece in zip(available, self.pieces[1:], strict=True):
            parts.append(b"%d" % count)
            parts.append(piece)
        return b"".join(parts)


@dataclass(frozen=True, slots=True)
class ProductFilter:
    """What a storefront listing asks for; prices in minor units of the shop currency."""

    search: str | None = None
    category: str | None = None
    min_price_minor: int | None = None
    max_price_minor: int | None = None


@dataclass(frozen=True, slots=True)
class VariantSnapshot:
    """A variant as carts and checkout see it right now."""

    sku: str
    product_id: UUID
    product_name: str
    variant_name: str
    price: Money
    available: int
    sellable: bool


@dataclass(frozen=True, slots=True)
class StockLevel:
    sku: str
    on_hand: int
    reserved: int

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


def stock_lines(lines: Mapping[str, int]) -> tuple[list[str], list[int]]:
    """SKUs in ascending order (the lock order) with their quantities, all positive."""
    for sku, quantity in lines.items():
        if isinstance(quantity, bool) or not isinstance(quantity, int):
            raise ValueError(f"quantity for {sku!r} must be a positive integer")
        if not 0 < quantity <= MAX_STOCK:
            raise ValueError(f"quantity for {sku!r} must be a positive integer up to {MAX_STOCK}")
    skus = sorted(lines)
    return skus, [lines[sku] for sku in skus]
