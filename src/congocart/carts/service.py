"""Cart use cases: guest and user carts, their lines and coupon, merging, and the
snapshot checkout takes.

A cart stores skus and quantities only; prices and names are read from the
catalog each time a cart is shown (`catalog.service.get_variants`, one query for
all its lines), and every total comes from `carts.domain.price_cart`.

Each change locks the cart row first (`repository.get_cart_for_update`), so the
line rules (quantity 1..99, at most 100 lines) are checked against lines no
concurrent change can alter until commit, and bumps `version`, which clients
may send back in `If-Match` to make a change conditional.

Adding a line, the storefront's most frequent change, is instead optimistic
(see `add_item`): a read, then a write conditional on the version read, with
no transaction and no lock held between the two.

Statements per call (besides the caller's BEGIN/COMMIT, and one more when a
coupon is applied): create 1; get 2; add a line 2 (no transaction needed);
change or remove a line 3.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from congocart.carts import domain, repository
from congocart.carts.domain import (
    Cart,
    CartItem,
    CartLine,
    CartOwner,
    CartRuleViolation,
    CartStatus,
    CartTotals,
    CartView,
    Destination,
    PricedItem,
    ShippingMethod,
    choose_shipping,
    hash_cart_token,
    merge_quantities,
    normalize_country,
    price_cart,
    quantity_after_add,
    shipping_methods,
    tax_rate_for,
)
from congocart.carts.errors import (
    CartClosed,
    CartEmpty,
    CartItemNotFound,
    CartNotFound,
    CurrencyNotSupported,
    InvalidCountry,
    InvalidQuantity,
    ShippingMethodInvalid,
    SkuNotFound,
    SkuUnavailable,
    TooManyLines,
    VersionMismatch,
)
from congocart.catalog import service as catalog
from congocart.catalog.domain import DEFAULT_VARIANT_NAME, VariantSnapshot, is_sku
from congocart.config import get_settings
from congocart.core.db import Connection, Params
from congocart.core.errors import CongoError
from congocart.identity.domain import Principal
from congocart.promotions import service as promotions
from congocart.promotions.domain import Coupon

__all__ = [
    "CartOwner",
    "CartView",
    "CheckoutCart",
    "Destination",
    "Pricing",
    "add_item",
    "apply_coupon",
    "cart_for_checkout",
    "checked_out_or_raise",
    "checked_out_sql",
    "checkout_read_sql",
    "create_cart",
    "expire_idle_guest_carts",
    "get_cart",
    "list_shipping_methods",
    "lock_cart_for_checkout",
    "mark_checked_out",
    "merge_carts",
    "remove_coupon",
    "remove_item",
    "resolve_destination",
    "unchanged_sql",
    "update_item",
]

TaxRates = Mapping[str, Decimal]
_TOKEN_BYTES = 32


@dataclass(frozen=True, slots=True)
class Pricing:
    """How a cart is shown priced: where it would ship (checked by
    `resolve_destination`) and the tax rate table (`settings.tax_rates`)."""

    destination: Destination = field(default_factory=Destination)
    tax_rates: TaxRates = field(default_factory=dict)


# No destination yet: shipping and tax show as zero.
NOWHERE = Pricing()


# ---------------------------------------------------------------- rules → client errors


def _client_error(exc: CartRuleViolation) -> CongoError:
    if isinstance(exc, domain.QuantityOutOfRange):
        return InvalidQuantity(str(exc))
    if isinstance(exc, domain.LineLimitExceeded):
        return TooManyLines(str(exc))
    if isinstance(exc, domain.InvalidCountry):
        return InvalidCountry(str(exc))
    return ShippingMethodInvalid(str(exc))


def resolve_destination(
    *, country: str | None, shipping_method: str | None, currency: str
) -> Destination:
    """A checked destination: the country normalised (422 `invalid_country`) and the
    shipping method known and shipping there (422 `shipping_method_invalid`)."""
    try:
        destination = Destination(
            country=None if country is None else normalize_country(country),
            shipping_method=shipping_method,
        )
        choose_shipping(destination, currency=currency)
    except CartRuleViolation as exc:
        raise _client_error(exc) from exc
    return destination


def list_shipping_methods(*, currency: str, country: str | None) -> tuple[ShippingMethod, ...]:
    """The shipping methods for `country` (all while it is unknown)."""
    try:
        return shipping_methods(currency, country=country)
    except CartRuleViolation as exc:
        raise _client_error(exc) from exc


# ---------------------------------------------------------------- reading


def _line_name(variant: VariantSnapshot) -> str:
    if variant.variant_name == DEFAULT_VARIANT_NAME:
        return variant.product_name
    return f"{variant.product_name} - {variant.variant_name}"


def _lines(cart: Cart, variants: Mapping[str, VariantSnapshot]) -> list[CartLine]:
    # The foreign key keeps every line's variant in the catalog (archived, at worst).
    return [
        CartLine(
            sku=item.sku,
            name=_line_name(variants[item.sku]),
            unit_price=variants[item.sku].price,
            quantity=item.quantity,
        )
        for item in cart.items
    ]


def _shipping_and_tax(
    destination: Destination, *, currency: str, tax_rates: TaxRates
) -> tuple[ShippingMethod | None, Decimal | None]:
    try:
        shipping = choose_shipping(destination, currency=currency)
        rate = None if destination.country is None else tax_rate_for(destination.country, tax_rates)
    except CartRuleViolation as exc:
        raise _client_error(exc) from exc
    return shipping, rate


async def _read_view(
    conn: Connection, cart: Cart, *, pricing: Pricing, now: datetime | None
) -> CartView:
    """`_view` of a cart whose variants were not read yet: reads them first."""
    variants = await catalog.get_variants(conn, skus=cart.skus) if cart.items else {}
    return await _view(conn, cart, variants, pricing=pricing, now=now or datetime.now(UTC))


async def _view(
    conn: Connection,
    cart: Cart,
    variants: Mapping[str, VariantSnapshot],
    *,
    pricing: Pricing = NOWHERE,
    now: datetime,
    cart_token: str | None = None,
) -> CartView:
    """The cart priced now. An applied coupon discounts while it is inside its time
    window and the subtotal meets its minimum; checkout re-checks everything."""
    coupon: Coupon | None = None
    if cart.coupon_code is not None:
        coupon = await promotions.get_coupon(conn, code=cart.coupon_code)
        if coupon is not None and not coupon.is_active(now):
            coupon = None
    lines = _lines(cart, variants)
    shipping, rate = _shipping_and_tax(
        pricing.destination, currency=cart.currency, tax_rates=pricing.tax_rates
    )
    totals = price_cart(
        lines, currency=cart.currency, coupon=coupon, shipping=shipping, tax_rate=rate
    )
    items = tuple(
        PricedItem(
            id=item.id,
            sku=line.sku,
            name=line.name,
            unit_price=line.unit_price,
            quantity=line.quantity,
            line_total=line_total,
        )
        for item, line, line_total in zip(cart.items, lines, totals.line_totals, strict=True)
    )
    return CartView(
        id=cart.id,
        currency=cart.currency,
        status=cart.status,
        items=items,
        coupon=cart.coupon_code,
        totals=totals,
        country=pricing.destination.country,
        version=cart.version,
        updated_at=cart.updated_at,
        cart_token=cart_token,
    )


def _owned(cart: Cart | None, owner: CartOwner) -> Cart:
    # Someone else's cart is answered exactly like a missing one: existence never leaks.
    if cart is None or not cart.is_owned_by(owner):
        raise CartNotFound()
    return cart


async def create_cart(
    conn: Connection,
    *,
    user: Principal | None,
    currency: str | None,
    shop_currency: str,
) -> CartView:
    """A new empty cart: the user's, or a guest cart with a fresh token (shown only here).

    Only the stored SHA-256 of the token is kept. One statement.
    """
    if currency is not None and currency != shop_currency:
        raise CurrencyNotSupported(f"The shop sells in {shop_currency} only.")
    token = None if user is not None else secrets.token_urlsafe(_TOKEN_BYTES)
    cart = await repository.insert_cart(
        conn,
        user_id=None if user is None else user.id,
        guest_token_hash=None if token is None else hash_cart_token(token),
        currency=shop_currency,
    )
    return await _view(
        conn,
        cart,
        {},
        pricing=NOWHERE,
        now=datetime.now(UTC),
        cart_token=token,
    )


async def get_cart(
    conn: Connection,
    *,
    cart_id: UUID,
    owner: CartOwner,
    pricing: Pricing = NOWHERE,
    now: datetime | None = None,
) -> CartView:
    """The owner's cart at current prices, with shipping and tax for `pricing`'s destination."""
    cart = _owned(await repository.get_cart(conn, cart_id), owner)
    return await _read_view(conn, cart, pricing=pricing, now=now)


# ---------------------------------------------------------------- changing


async def _lock_open_cart(
    tx: Connection, *, cart_id: UUID, owner: CartOwner, expected_version: int | None
) -> Cart:
    cart = _owned(await repository.get_cart_for_update(tx, cart_id), owner)
    _require_open(cart)
    _require_version(cart, expected_version)
    return cart


def _require_version(cart: Cart, expected_version: int | None) -> None:
    if expected_version is not None and expected_version != cart.version:
        raise VersionMismatch(
            f"The cart is at version {cart.version}, not {expected_version}; "
            "read it again and retry."
        )


def _require_open(cart: Cart) -> None:
    if cart.status is not CartStatus.OPEN:
        reason = {
            CartStatus.CHECKED_OUT: "has been checked out",
            CartStatus.MERGED: "was merged into another cart",
            CartStatus.EXPIRED: "expired after a long time unused",
        }[cart.status]
        raise CartClosed(f"This cart {reason} and can no longer change.")


# Reads of a cart that changed before add_item could write (someone else's
# change came first) before it takes the cart's lock instead.
OPTIMISTIC_TRIES = 3


async def add_item(
    conn: Connection,
    *,
    cart_id: UUID,
    owner: CartOwner,
    sku: str,
    quantity: int,
    expected_version: int | None = None,
    pricing: Pricing = NOWHERE,
    now: datetime | None = None,
) -> CartView:
    """Add `quantity` of `sku`; a sku already in the cart has its quantity increased.

    404 `sku_not_found`, 409 `sku_unavailable` (archived), 422 `invalid_quantity`
    past 99, 422 `too_many_lines` past 100 lines.

    `conn` needs no transaction: two statements, each atomic. The first reads
    the cart, its lines and their variants; the rules are checked against that
    read; the second writes the line only if the cart is still at the version
    read (every change of its lines bumps it), else nothing and the read starts
    again. After `OPTIMISTIC_TRIES` such races it locks the cart (`FOR UPDATE`)
    in a transaction of its own (a savepoint in the caller's), where no race is
    left to lose.
    """
    for _ in range(OPTIMISTIC_TRIES):
        found = await repository.get_cart_and_variants(
            conn,
            cart_id,
            # Not a SKU at all (say, with a NUL): looked up as nothing, so not found.
            adding=sku if is_sku(sku) else "",
            variants_sql=catalog.variant_snapshots_sql,
        )
        cart = _owned(None if found is None else found[0], owner)
        _require_open(cart)
        _require_version(cart, expected_version)
        assert found is not None
        variants = catalog.variant_snapshots(found[1])
        new_quantity = _quantity_after_add(cart, variants, sku=sku, quantity=quantity)
        written = await repository.upsert_item_if_unchanged(
            conn, cart_id=cart.id, seen_version=cart.version, sku=sku, quantity=new_quantity
        )
        if written is not None:
            return await _with_line(
                conn, cart, variants, sku, new_quantity, written, pricing=pricing, now=now
            )
    async with conn.transaction():
        cart = await _lock_open_cart(
            conn, cart_id=cart_id, owner=owner, expected_version=expected_version
        )
        variants = await catalog.get_variants(conn, skus=[*cart.skus, sku])
        new_quantity = _quantity_after_add(cart, variants, sku=sku, quantity=quantity)
        written = await repository.upsert_item(
            conn, cart_id=cart.id, sku=sku, quantity=new_quantity
        )
        return await _with_line(
            conn, cart, variants, sku, new_quantity, written, pricing=pricing, now=now
        )


def _quantity_after_add(
    cart: Cart, variants: Mapping[str, VariantSnapshot], *, sku: str, quantity: int
) -> int:
    variant = variants.get(sku)
    if variant is None:
        raise SkuNotFound(f"There is no product variant with SKU {sku!r}.")
    if not variant.sellable:
        raise SkuUnavailable(f"{sku} is no longer sold.")
    existing = cart.find_sku(sku)
    try:
        return quantity_after_add(
            None if existing is None else existing.quantity,
            quantity,
            lines_in_cart=len(cart.items),
        )
    except CartRuleViolation as exc:
        raise _client_error(exc) from exc


async def _with_line(
    conn: Connection,
    cart: Cart,
    variants: Mapping[str, VariantSnapshot],
    sku: str,
    quantity: int,
    written: tuple[UUID, int, datetime],
    *,
    pricing: Pricing,
    now: datetime | None,
) -> CartView:
    item_id, version, updated_at = written
    cart = cart.with_item(
        CartItem(id=item_id, sku=sku, quantity=quantity), version=version, updated_at=updated_at
    )
    return await _view(conn, cart, variants, pricing=pricing, now=now or datetime.now(UTC))


async def update_item(
    tx: Connection,
    *,
    cart_id: UUID,
    owner: CartOwner,
    item_id: UUID,
    quantity: int,
    expected_version: int | None = None,
    pricing: Pricing = NOWHERE,
    now: datetime | None = None,
) -> CartView:
    """Set a line's quantity (0 removes it). Raising the quantity of a sku that is
    no longer sold is 409 `sku_unavailable`; lowering it is always allowed."""
    if quantity == 0:
        return await remove_item(
            tx,
            cart_id=cart_id,
            owner=owner,
            item_id=item_id,
            expected_version=expected_version,
            pricing=pricing,
            now=now,
        )
    cart = await _lock_open_cart(
        tx, cart_id=cart_id, owner=owner, expected_version=expected_version
    )
    item = cart.find_item(item_id)
    if item is None:
        raise CartItemNotFound()
    try:
        domain.check_quantity(quantity)
    except CartRuleViolation as exc:
        raise _client_error(exc) from exc
    variants = await catalog.get_variants(tx, skus=cart.skus)
    if quantity > item.quantity and not variants[item.sku].sellable:
        raise SkuUnavailable(f"{item.sku} is no longer sold.")
    version, updated_at = await repository.set_item_quantity(
        tx, cart_id=cart.id, item_id=item.id, quantity=quantity
    )
    cart = cart.with_item(
        CartItem(id=item.id, sku=item.sku, quantity=quantity),
        version=version,
        updated_at=updated_at,
    )
    return await _view(
        tx,
        cart,
        variants,
        pricing=pricing,
        now=now or datetime.now(UTC),
    )


async def remove_item(
    tx: Connection,
    *,
    cart_id: UUID,
    owner: CartOwner,
    item_id: UUID,
    expected_version: int | None = None,
    pricing: Pricing = NOWHERE,
    now: datetime | None = None,
) -> CartView:
    """Remove a line. 404 `cart_item_not_found` when the cart has no such line."""
    cart = await _lock_open_cart(
        tx, cart_id=cart_id, owner=owner, expected_version=expected_version
    )
    if cart.find_item(item_id) is None:
        raise CartItemNotFound()
    version, updated_at = await repository.delete_item(tx, cart_id=cart.id, item_id=item_id)
    cart = cart.without_item(item_id, version=version, updated_at=updated_at)
    return await _read_view(tx, cart, pricing=pricing, now=now)


def _customer(cart: Cart, owner: CartOwner) -> UUID | None:
    """The customer a coupon's per-customer limit counts: the cart's user, else the caller."""
    if cart.user_id is not None:
        return cart.user_id
    return None if owner.user is None else owner.user.id


async def apply_coupon(
    tx: Connection,
    *,
    cart_id: UUID,
    owner: CartOwner,
    code: str,
    expected_version: int | None = None,
    pricing: Pricing = NOWHERE,
    now: datetime | None = None,
) -> CartView:
    """Apply a coupon (replacing any other). 422 `coupon_invalid` when it is unknown,
    not started, expired, used up, the customer's limit is reached or the
    subtotal is below its minimum."""
    now = now or datetime.now(UTC)
    cart = await _lock_open_cart(
        tx, cart_id=cart_id, owner=owner, expected_version=expected_version
    )
    variants = await catalog.get_variants(tx, skus=cart.skus) if cart.items else {}
    subtotal = price_cart(_lines(cart, variants), currency=cart.currency).subtotal
    coupon = await promotions.get_applicable_coupon(
        tx,
        code=code,
        subtotal=subtotal,
        user_id=_customer(cart, owner),
        email=None if owner.user is None else owner.user.email,
        now=now,
    )
    version, updated_at = await repository.set_coupon(tx, cart_id=cart.id, code=coupon.code)
    cart = replace(cart, coupon_code=coupon.code, version=version, updated_at=updated_at)
    return await _view(tx, cart, variants, pricing=pricing, now=now)


async def remove_coupon(
    tx: Connection,
    *,
    cart_id: UUID,
    owner: CartOwner,
    expected_version: int | None = None,
    pricing: Pricing = NOWHERE,
    now: datetime | None = None,
) -> CartView:
    """Take the coupon off the cart (nothing happens to a cart without one)."""
    cart = await _lock_open_cart(
        tx, cart_id=cart_id, owner=owner, expected_version=expected_version
    )
    version, updated_at = await repository.set_coupon(tx, cart_id=cart.id, code=None)
    cart = replace(cart, coupon_code=None, version=version, updated_at=updated_at)
    return await _read_view(tx, cart, pricing=pricing, now=now)


async def merge_carts(
    tx: Connection,
    *,
    cart_id: UUID,
    user: Principal,
    cart_token: str,
    expected_version: int | None = None,
    pricing: Pricing = NOWHERE,
    now: datetime | None = None,
) -> CartView:
    """Merge the guest cart holding `cart_token` into the user's cart `cart_id`.

    Quantities of the same sku are summed and capped at 99; a merge that would
    need more than 100 lines is 422 `too_many_lines` and changes nothing. The
    user's cart keeps its coupon, or takes the guest cart's. The guest cart
    becomes `merged`: it can be read with its token but never changed again.
    Both carts are locked in id order, so concurrent merges cannot deadlock.
    """
    owner = CartOwner(user=user)
    guest_id = await repository.find_guest_cart_id(tx, hash_cart_token(cart_token))
    if guest_id is None:
        raise CartNotFound("No guest cart has this token.")
    locked = {cart.id: cart for cart in await repository.lock_carts(tx, [cart_id, guest_id])}
    target = _owned(locked.get(cart_id), owner)
    guest = locked.get(guest_id)
    if guest is None or not guest.is_owned_by(CartOwner(cart_token=cart_token)):
        raise CartNotFound("No guest cart has this token.")
    _require_open(target)
    if expected_version is not None and expected_version != target.version:
        raise VersionMismatch(
            f"The cart is at version {target.version}, not {expected_version}; "
            "read it again and retry."
        )
    _require_open(guest)
    if guest.currency != target.currency:
        raise CurrencyNotSupported("The two carts are in different currencies.")
    try:
        merged = merge_quantities(target.quantities(), guest.quantities())
    except CartRuleViolation as exc:
        raise _client_error(exc) from exc
    current = target.quantities()
    changed = {sku: qty for sku, qty in merged.items() if current.get(sku) != qty}
    await repository.merge_into(
        tx,
        target_id=target.id,
        source_id=guest.id,
        lines=changed,
        coupon_code=guest.coupon_code,
    )
    merged_cart = await repository.get_cart(tx, target.id)
    assert merged_cart is not None
    return await _read_view(tx, merged_cart, pricing=pricing, now=now)


# ---------------------------------------------------------------- checkout


@dataclass(frozen=True, slots=True)
class CheckoutCart:
    """A locked, checked cart as checkout prices the order: a frozen snapshot.

    `user_id` is the customer: the cart's user, else the authenticated caller
    checking out a guest cart, else None (a guest).
    """

    cart_id: UUID
    user_id: UUID | None
    currency: str
    version: int
    lines: tuple[CartLine, ...]
    coupon: Coupon | None
    shipping_method: ShippingMethod
    country: str | None
    totals: CartTotals

    @property
    def quantities(self) -> dict[str, int]:
        """sku → quantity, the shape `catalog.service.reserve_stock` takes."""
        return {line.sku: line.quantity for line in self.lines}


async def lock_cart_for_checkout(
    tx: Connection,
    *,
    cart_id: UUID,
    owner: CartOwner,
    country: str | None,
    shipping_method: str | None,
    now: datetime,
    email: str | None = None,
    tax_rates: TaxRates | None = None,
) -> CheckoutCart:
    """Lock the cart (`FOR UPDATE`) and check it can become an order, as of now.

    404 `cart_not_found` (missing or not the owner's), 409 `cart_closed`, 409
    `cart_empty`, 409 `sku_unavailable` (a line's sku is no longer sold), 422
    `invalid_country` / `shipping_method_invalid`, and the applied coupon
    re-checked: 422 `coupon_invalid` when it no longer applies (expired,
    minimum not met, the customer's limit reached, counting guests by `email`),
    409 `coupon_unavailable` when it was used up meanwhile. Without a
    `shipping_method` the default one for the country is used. `tax_rates`
    defaults to the configured rate table. Runs 2 statements (3 with a coupon).
    """
    cart = _owned(await repository.get_cart_for_update(tx, cart_id), owner)
    return await _checkout_cart(
        tx,
        cart,
        None,
        owner=owner,
        country=country,
        shipping_method=shipping_method,
        now=now,
        email=email,
        tax_rates=tax_rates,
    )


def checkout_read_sql(p: Params, *, cart_id: UUID) -> str:
    """The cart with its lines and their variants, read without a lock, as a
    subquery of checkout's first statement (a round trip saved); hand the
    statement's row to `cart_for_checkout`."""
    return repository.read_for_checkout_sql(p, cart_id, variants_sql=catalog.variant_snapshots_sql)


async def cart_for_checkout(
    conn: Connection,
    read: Any,
    *,
    owner: CartOwner,
    country: str | None,
    shipping_method: str | None,
    now: datetime,
    email: str | None = None,
    tax_rates: TaxRates | None = None,
) -> CheckoutCart:
    """`lock_cart_for_checkout`'s checks on the cart as a `checkout_read_sql` row
    read it, without a lock: the caller must make sure it is still at
    `CheckoutCart.version` when it acts on it (`unchanged_sql`). No statement
    (one to re-check an applied coupon)."""
    found = repository.read_for_checkout(read)
    cart = _owned(None if found is None else found[0], owner)
    return await _checkout_cart(
        conn,
        cart,
        None if found is None else found[1],
        owner=owner,
        country=country,
        shipping_method=shipping_method,
        now=now,
        email=email,
        tax_rates=tax_rates,
    )


def unchanged_sql(p: Params, *, cart_id: UUID, version: int) -> str:
    """A subquery of another feature's statement that locks the cart (`FOR
    UPDATE`, for that statement only) and returns its id only if it is still
    open at `version`: what `cart_for_checkout` checked still holds."""
    return repository.lock_if_unchanged_sql(p, cart_id, version)


async def _checkout_cart(
    conn: Connection,
    cart: Cart,
    snapshots: Any,
    *,
    owner: CartOwner,
    country: str | None,
    shipping_method: str | None,
    now: datetime,
    email: str | None,
    tax_rates: TaxRates | None,
) -> CheckoutCart:
    if tax_rates is None:
        tax_rates = get_settings().tax_rates
    _require_open(cart)
    if not cart.items:
        raise CartEmpty()
    destination = resolve_destination(
        country=country, shipping_method=shipping_method, currency=cart.currency
    )
    shipping, rate = _shipping_and_tax(destination, currency=cart.currency, tax_rates=tax_rates)
    if shipping is None:
        # No country and no method named: the default method ships anywhere.
        shipping = choose_shipping(
            Destination(shipping_method=domain.DEFAULT_SHIPPING_METHOD), currency=cart.currency
        )
    assert shipping is not None
    if snapshots is None:
        variants = await catalog.get_variants(conn, skus=cart.skus)
    else:
        variants = catalog.variant_snapshots(snapshots)
    unsellable = sorted(item.sku for item in cart.items if not variants[item.sku].sellable)
    if unsellable:
        raise SkuUnavailable(
            f"No longer sold: {', '.join(unsellable)}. Remove them from the cart to check out."
        )
    lines = _lines(cart, variants)
    user_id = _customer(cart, owner)
    coupon = None
    if cart.coupon_code is not None:
        subtotal = price_cart(lines, currency=cart.currency).subtotal
        coupon = await promotions.get_applicable_coupon(
            conn,
            code=cart.coupon_code,
            subtotal=subtotal,
            user_id=user_id,
            email=email,
            now=now,
            used_up_is_conflict=True,
        )
    totals = price_cart(
        lines, currency=cart.currency, coupon=coupon, shipping=shipping, tax_rate=rate
    )
    return CheckoutCart(
        cart_id=cart.id,
        user_id=user_id,
        currency=cart.currency,
        version=cart.version,
        lines=tuple(lines),
        coupon=coupon,
        shipping_method=shipping,
        country=destination.country,
        totals=totals,
    )


async def mark_checked_out(
    tx: Connection, *, cart_id: UUID, expected_version: int | None = None
) -> None:
    """Close an open cart as checked out (version + 1).

    409 `cart_closed` when it is no longer open (checked out, merged or expired
    meanwhile). With `expected_version` (the snapshot's), 412 `version_mismatch`
    when the cart changed since `lock_cart_for_checkout`, so an order is never
    made from lines the customer has since edited.
    """
    closed = await repository.close_cart(
        tx, cart_id=cart_id, status=CartStatus.CHECKED_OUT, expected_version=expected_version
    )
    await checked_out_or_raise(tx, cart_id=cart_id, closed=closed)


def checked_out_sql(p: Params, *, cart_id: UUID, expected_version: int | None = None) -> str:
    """`mark_checked_out` as the body of a CTE of another feature's statement
    (a round trip saved): it returns a row when it closed the cart. Pass whether
    it did to `checked_out_or_raise`."""
    return repository.close_cart_sql(
        p, cart_id=cart_id, status=CartStatus.CHECKED_OUT, expected_version=expected_version
    )


async def checked_out_or_raise(tx: Connection, *, cart_id: UUID, closed: bool) -> None:
    """Nothing when the cart was closed; otherwise the reason it was not:
    404 `cart_not_found`, 409 `cart_closed` or 412 `version_mismatch`."""
    if closed:
        return
    cart = await repository.get_cart(tx, cart_id)
    if cart is None:
        raise CartNotFound()
    _require_open(cart)
    raise VersionMismatch("The cart changed while the order was being placed.")


# ---------------------------------------------------------------- housekeeping

EXPIRY_BATCH = 10_000


async def expire_idle_guest_carts(tx: Connection, *, idle_for: timedelta) -> int:
    """Open guest carts untouched for `idle_for` become `expired`; returns how many.

    At most `EXPIRY_BATCH` per call, so one run never holds many locks; the next
    run takes the rest. User carts are never expired: the user can come back.
    """
    return await repository.expire_idle_guest_carts(tx, idle_for=idle_for, limit=EXPIRY_BATCH)
