"""Carts: line rules, merging, shipping methods, tax rates and the one pricing function.

Pure. `price_cart` is the only place a cart's money is computed:
`total = subtotal - discount + shipping + tax`, with `0 <= discount <= subtotal`
and `tax = rate * (subtotal - discount + shipping)`, each rounded half-even to
the currency's minor unit by `Money.quantize`.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Protocol
from uuid import UUID

from congocart.core.money import CurrencyMismatch, Money
from congocart.identity.domain import Principal

MIN_QUANTITY = 1
MAX_QUANTITY = 99
MAX_LINES = 100
DEFAULT_TAX_KEY = "*"
_COUNTRY = re.compile(r"^[A-Z]{2}$")


class CartRuleViolation(Exception):
    """A change that would break a cart rule; `str(exc)` is fit for the client."""


class QuantityOutOfRange(CartRuleViolation):
    def __init__(self, quantity: int) -> None:
        self.quantity = quantity
        super().__init__(
            f"A line's quantity must be between {MIN_QUANTITY} and {MAX_QUANTITY}; "
            f"this change would make it {quantity}."
        )


class LineLimitExceeded(CartRuleViolation):
    def __init__(self, lines: int) -> None:
        self.lines = lines
        super().__init__(f"A cart holds at most {MAX_LINES} lines; this would make {lines}.")


class ShippingMethodUnknown(CartRuleViolation):
    def __init__(self, code: str) -> None:
        super().__init__(f"There is no shipping method {code!r}.")


class ShippingNotAvailable(CartRuleViolation):
    def __init__(self, code: str, country: str) -> None:
        super().__init__(f"Shipping method {code!r} does not ship to {country}.")


class InvalidCountry(CartRuleViolation):
    def __init__(self, country: str) -> None:
        super().__init__(f"{country!r} is not an ISO 3166-1 alpha-2 country code.")


# --- lines -----------------------------------------------------------------


def check_quantity(quantity: int) -> int:
    """Return `quantity` if a line may hold it, else raise `QuantityOutOfRange`."""
    if not MIN_QUANTITY <= quantity <= MAX_QUANTITY:
        raise QuantityOutOfRange(quantity)
    return quantity


def quantity_after_add(current: int | None, added: int, *, lines_in_cart: int) -> int:
    """The line's quantity after adding `added` of a sku to a cart.

    `current` is the sku's quantity already in the cart (None: not there yet, so
    a new line is needed and the cart must have room for it). Adding past
    `MAX_QUANTITY` is refused rather than silently capped: the client asked
    for a number it would not get.
    """
    check_quantity(added)
    if current is None:
        if lines_in_cart >= MAX_LINES:
            raise LineLimitExceeded(lines_in_cart + 1)
        return added
    return check_quantity(current + added)


def merge_quantities(target: Mapping[str, int], incoming: Mapping[str, int]) -> dict[str, int]:
    """Merge a guest cart's lines (`incoming`) into a user's cart (`target`), sku → quantity.

    Quantities of the same sku are summed and capped at `MAX_QUANTITY` (the
    user meant "I want these", not "fail my login"). The target's order is
    kept, new skus follow in their own order. A merge that would need more
    than `MAX_LINES` lines raises `LineLimitExceeded` and changes nothing.
    """
    merged = {sku: check_quantity(quantity) for sku, quantity in target.items()}
    for sku, quantity in incoming.items():
        check_quantity(quantity)
        merged[sku] = min(merged.get(sku, 0) + quantity, MAX_QUANTITY)
    if len(merged) > MAX_LINES:
        raise LineLimitExceeded(len(merged))
    return merged


@dataclass(frozen=True, slots=True)
class CartLine:
    """One sku in a cart, at the catalog's current price."""

    sku: str
    name: str
    unit_price: Money
    quantity: int

    def __post_init__(self) -> None:
        check_quantity(self.quantity)
        if self.unit_price.is_negative() or not self.unit_price.is_exact():
            raise ValueError(f"unit price of {self.sku} is not a valid price: {self.unit_price}")

    @property
    def line_total(self) -> Money:
        return (self.unit_price * self.quantity).quantize()


# --- shipping --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ShippingMethod:
    """A way to ship; free once the subtotal reaches `free_from`, when set.

    `countries` limits where it ships (ISO alpha-2 codes); None ships everywhere.
    """

    code: str
    name: str
    price: Money
    min_days: int
    max_days: int
    free_from: Money | None = None
    countries: frozenset[str] | None = None

    def __post_init__(self) -> None:
        if self.price.is_negative() or not self.price.is_exact():
            raise ValueError(f"shipping price of {self.code} is not a valid price")
        if self.free_from is not None and self.free_from.currency != self.price.currency:
            raise CurrencyMismatch(f"{self.price.currency} and {self.free_from.currency}")
        if not 0 < self.min_days <= self.max_days:
            raise ValueError(f"delivery days of {self.code} must satisfy 0 < min <= max")

    @property
    def estimated_days(self) -> str:
        """ "5-7", or "1" when the estimate is a single day."""
        if self.min_days == self.max_days:
            return str(self.min_days)
        return f"{self.min_days}-{self.max_days}"

    def ships_to(self, country: str | None) -> bool:
        """True when it ships to `country`; an unknown country (None) is not excluded yet."""
        return self.countries is None or country is None or country in self.countries

    def price_for(self, subtotal: Money) -> Money:
        """What shipping costs on a cart with this `subtotal` (before any discount)."""
        if self.free_from is not None and self.free_from <= subtotal:
            return Money.zero(self.price.currency)
        return self.price


@dataclass(frozen=True, slots=True)
class ShippingRate:
    """A row of the shipping table, in amounts of the shop's currency."""

    code: str
    name: str
    price: Decimal
    min_days: int
    max_days: int
    free_from: Decimal | None = None
    countries: frozenset[str] | None = None

    def in_currency(self, currency: str) -> ShippingMethod:
        return _method_in(self, currency)


@functools.lru_cache(maxsize=256)
def _method_in(rate: ShippingRate, currency: str) -> ShippingMethod:
    # Both are immutable, and every cart price and checkout looks the table up
    # twice: each rate is converted once per currency.
    return ShippingMethod(
        code=rate.code,
        name=rate.name,
        price=Money.of(rate.price, currency),
        min_days=rate.min_days,
        max_days=rate.max_days,
        free_from=None if rate.free_from is None else Money.of(rate.free_from, currency),
        countries=rate.countries,
    )


SHIPPING_TABLE: tuple[ShippingRate, ...] = (
    ShippingRate("standard", "Standard", Decimal("5.00"), 5, 7, free_from=Decimal("50.00")),
    ShippingRate("express", "Express", Decimal("15.00"), 1, 2),
    ShippingRate("overnight", "Overnight", Decimal("25.00"), 1, 1, countries=frozenset({"US"})),
)
DEFAULT_SHIPPING_METHOD = "standard"


def shipping_methods(
    currency: str,
    *,
    country: str | None = None,
    table: Iterable[ShippingRate] = SHIPPING_TABLE,
) -> tuple[ShippingMethod, ...]:
    """The methods that ship to `country` (all of them while it is unknown), in table order."""
    country = None if country is None else normalize_country(country)
    methods = (rate.in_currency(currency) for rate in table)
    return tuple(method for method in methods if method.ships_to(country))


def find_shipping_method(
    code: str,
    *,
    currency: str,
    country: str | None = None,
    table: Iterable[ShippingRate] = SHIPPING_TABLE,
) -> ShippingMethod:
    """The method `code`, checked against `country`; raises when unknown or not shipping there."""
    for rate in table:
        if rate.code == code:
            method = rate.in_currency(currency)
            if country is not None and not method.ships_to(normalize_country(country)):
                raise ShippingNotAvailable(code, normalize_country(country))
            return method
    raise ShippingMethodUnknown(code)


# --- tax -------------------------------------------------------------------


def normalize_country(country: str) -> str:
    """Upper-case ISO 3166-1 alpha-2 code, or `InvalidCountry`."""
    code = country.strip().upper()
    if not _COUNTRY.match(code):
        raise InvalidCountry(country)
    return code


def tax_rate_for(country: str, rates: Mapping[str, Decimal]) -> Decimal:
    """The rate for `country` from `rates` (settings.tax_rates), else its "*" entry, else 0."""
    code = normalize_country(country)
    if code in rates:
        return rates[code]
    return rates.get(DEFAULT_TAX_KEY, Decimal(0))


# --- pricing ---------------------------------------------------------------


class DiscountRule(Protocol):
    """Anything that knows what it takes off a subtotal (a promotions `Coupon`)."""

    def discount_for(self, subtotal: Money) -> Money: ...


@dataclass(frozen=True, slots=True)
class CartTotals:
    """A priced cart. `line_totals[i]` belongs to the i-th line given to `price_cart`."""

    currency: str
    line_totals: tuple[Money, ...]
    subtotal: Money
    discount: Money
    shipping: Money
    tax: Money
    total: Money
    tax_rate: Decimal | None
    shipping_method: str | None


def price_cart(
    lines: Sequence[CartLine],
    *,
    currency: str,
    coupon: DiscountRule | None = None,
    shipping: ShippingMethod | None = None,
    tax_rate: Decimal | None = None,
) -> CartTotals:
    """Price a cart. The single place where a cart or order total is computed.

    `shipping` None means no method is chosen yet (shipping shows as zero), and
    an empty cart ships for nothing. `tax_rate` None means the destination is
    not known yet: tax shows as zero until it is.
    """
    for line in lines:
        if line.unit_price.currency != currency:
            raise CurrencyMismatch(f"{line.sku} is priced in {line.unit_price.currency}")
    if tax_rate is not None and not (tax_rate.is_finite() and 0 <= tax_rate < 1):
        raise ValueError(f"tax rate must be in [0, 1), got {tax_rate}")
    zero = Money.zero(currency)

    line_totals = tuple(line.line_total for line in lines)
    subtotal = sum(line_totals, zero)

    discount = zero if coupon is None else coupon.discount_for(subtotal).quantize()
    # Whatever a discount rule says, the invariant 0 <= discount <= subtotal holds here.
    if discount.is_negative():
        discount = zero
    discount = discount.min(subtotal)

    shipping_price = zero
    if shipping is not None and lines:
        shipping_price = shipping.price_for(subtotal).quantize()
        if shipping_price.currency != currency:
            raise CurrencyMismatch(f"shipping is priced in {shipping_price.currency}")

    taxable = subtotal - discount + shipping_price
    tax = zero if tax_rate is None else (taxable * tax_rate).quantize()

    return CartTotals(
        currency=currency,
        line_totals=line_totals,
        subtotal=subtotal,
        discount=discount,
        shipping=shipping_price,
        tax=tax,
        total=subtotal - discount + shipping_price + tax,
        tax_rate=tax_rate,
        shipping_method=None if shipping is None else shipping.code,
    )


# --- carts as stored, and who may reach them --------------------------------


class CartStatus(StrEnum):
    OPEN = "open"
    CHECKED_OUT = "checked_out"
    MERGED = "merged"
    EXPIRED = "expired"


def hash_cart_token(token: str) -> bytes:
    """What is stored of a guest cart's token: its SHA-256 (the token has 256 random bits)."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


@dataclass(frozen=True, slots=True)
class CartOwner:
    """Who is asking for a cart: the authenticated user and/or a guest cart's token."""

    user: Principal | None = None
    cart_token: str | None = None


@dataclass(frozen=True, slots=True)
class CartItem:
    """A line as stored: which sku and how many. Its price is the catalog's, read when shown."""

    id: UUID
    sku: str
    quantity: int


@dataclass(frozen=True, slots=True)
class Cart:
    """A cart as stored, with its lines in the order they were added."""

    id: UUID
    user_id: UUID | None
    guest_token_hash: bytes | None
    currency: str
    coupon_code: str | None
    status: CartStatus
    version: int
    updated_at: datetime
    items: tuple[CartItem, ...]

    def is_owned_by(self, owner: CartOwner) -> bool:
        """A user cart answers only its user's token; a guest cart only its own cart token.

        The token is compared by hash in constant time, so response timing says
        nothing about how close a guess was.
        """
        if self.user_id is not None:
            return owner.user is not None and owner.user.id == self.user_id
        if self.guest_token_hash is None or owner.cart_token is None:
            return False
        return hmac.compare_digest(hash_cart_token(owner.cart_token), self.guest_token_hash)

    @property
    def skus(self) -> list[str]:
        return [item.sku for item in self.items]

    def quantities(self) -> dict[str, int]:
        return {item.sku: item.quantity for item in self.items}

    def find_sku(self, sku: str) -> CartItem | None:
        return next((item for item in self.items if item.sku == sku), None)

    def find_item(self, item_id: UUID) -> CartItem | None:
        return next((item for item in self.items if item.id == item_id), None)

    def with_item(self, item: CartItem, *, version: int, updated_at: datetime) -> Cart:
        """This cart after `item` was set (replaced in place, or added at the end)."""
        if any(existing.id == item.id for existing in self.items):
            items = tuple(item if existing.id == item.id else existing for existing in self.items)
        else:
            items = (*self.items, item)
        return replace(self, items=items, version=version, updated_at=updated_at)

    def without_item(self, item_id: UUID, *, version: int, updated_at: datetime) -> Cart:
        items = tuple(item for item in self.items if item.id != item_id)
        return replace(self, items=items, version=version, updated_at=updated_at)


@dataclass(frozen=True, slots=True)
class Destination:
    """Where a cart would ship: decides its shipping and tax. Unknown parts are None."""

    country: str | None = None
    shipping_method: str | None = None


def choose_shipping(
    destination: Destination, *, currency: str, table: Iterable[ShippingRate] = SHIPPING_TABLE
) -> ShippingMethod | None:
    """The method a cart is priced with for `destination`.

    The named method when there is one (checked against the country); else,
    once the country is known, the default method if it ships there, or the
    first that does. None while neither is known: shipping shows as zero.
    """
    rates = tuple(table)
    if destination.shipping_method is not None:
        return find_shipping_method(
            destination.shipping_method,
            currency=currency,
            country=destination.country,
            table=rates,
        )
    if destination.country is None:
        return None
    available = shipping_methods(currency, country=destination.country, table=rates)
    if not available:
        raise ShippingNotAvailable(DEFAULT_SHIPPING_METHOD, normalize_country(destination.country))
    return next((m for m in available if m.code == DEFAULT_SHIPPING_METHOD), available[0])


@dataclass(frozen=True, slots=True)
class PricedItem:
    id: UUID
    sku: str
    name: str
    unit_price: Money
    quantity: int
    line_total: Money


@dataclass(frozen=True, slots=True)
class CartView:
    """A cart as its owner sees it: current catalog prices, totals from `price_cart`."""

    id: UUID
    currency: str
    status: CartStatus
    items: tuple[PricedItem, ...]
    coupon: str | None
    totals: CartTotals
    country: str | None
    version: int
    updated_at: datetime
    # Only when a guest cart was just created: the one time its token is shown.
    cart_token: str | None = None
