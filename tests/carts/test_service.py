"""Cart use cases on real PostgreSQL, each test rolled back."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import uuid4

import pytest

from congocart.carts import service
from congocart.carts.domain import CartOwner, CartStatus
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
from congocart.carts.service import Pricing
from congocart.catalog import service as catalog
from congocart.config import DEFAULT_TAX_RATES
from congocart.core.db import Connection
from congocart.core.money import Money
from congocart.promotions import service as promotions
from congocart.promotions.errors import CouponInvalid, CouponUnavailable
from tests.carts.conftest import (
    guest_owner,
    logged_statements,
    make_product,
    make_skus,
    principal,
    user_owner,
)
from tests.conftest import MakeUser
from tests.promotions.conftest import make_coupon

TAX_RATES = {country: Decimal(rate) for country, rate in DEFAULT_TAX_RATES.items()}
NOW = datetime.now(UTC)


def usd(amount: str) -> Money:
    return Money.of(amount, "USD")


async def new_guest_cart(conn: Connection) -> tuple[service.CartView, CartOwner]:
    cart = await service.create_cart(conn, user=None, currency=None, shop_currency="USD")
    return cart, guest_owner(cart.cart_token)


# ---------------------------------------------------------------- create and reach


async def test_a_guest_cart_gets_a_token_that_is_stored_only_as_its_hash(
    conn: Connection,
) -> None:
    cart, _ = await new_guest_cart(conn)
    assert cart.cart_token is not None
    assert len(cart.cart_token) >= 43
    stored = await conn.fetchrow(
        "SELECT user_id, guest_token_hash FROM carts WHERE id = $1", cart.id
    )
    assert stored["user_id"] is None
    assert stored["guest_token_hash"] == hashlib.sha256(cart.cart_token.encode()).digest()
    assert (cart.status, cart.version, cart.items, cart.totals.total) == (
        CartStatus.OPEN,
        1,
        (),
        usd("0"),
    )


async def test_a_user_cart_belongs_to_the_user_and_has_no_token(
    conn: Connection, make_user: MakeUser
) -> None:
    user = await make_user()
    cart = await service.create_cart(
        conn, user=principal(user), currency="USD", shop_currency="USD"
    )
    assert cart.cart_token is None
    assert await conn.fetchval("SELECT user_id FROM carts WHERE id = $1", cart.id) == user.id


async def test_a_cart_in_another_currency_than_the_shops_is_refused(conn: Connection) -> None:
    with pytest.raises(CurrencyNotSupported):
        await service.create_cart(conn, user=None, currency="EUR", shop_currency="USD")


async def test_a_guest_cart_is_reached_with_its_token_and_by_nobody_else(
    conn: Connection, make_user: MakeUser
) -> None:
    cart, owner = await new_guest_cart(conn)
    other, _ = await new_guest_cart(conn)
    user = await make_user()
    assert (await service.get_cart(conn, cart_id=cart.id, owner=owner)).id == cart.id
    for stranger in (
        CartOwner(),
        guest_owner("not-the-token"),
        guest_owner(other.cart_token),
        user_owner(user),
    ):
        with pytest.raises(CartNotFound):
            await service.get_cart(conn, cart_id=cart.id, owner=stranger)


async def test_a_user_cart_is_reached_only_with_that_users_token(
    conn: Connection, make_user: MakeUser
) -> None:
    user, intruder = await make_user(), await make_user()
    cart = await service.create_cart(conn, user=principal(user), currency=None, shop_currency="USD")
    _, guest = await new_guest_cart(conn)
    assert (await service.get_cart(conn, cart_id=cart.id, owner=user_owner(user))).id == cart.id
    for stranger in (CartOwner(), user_owner(intruder), guest):
        with pytest.raises(CartNotFound):
            await service.get_cart(conn, cart_id=cart.id, owner=stranger)


async def test_a_missing_cart_is_not_found(conn: Connection) -> None:
    with pytest.raises(CartNotFound):
        await service.get_cart(conn, cart_id=uuid4(), owner=guest_owner("x"))


# ---------------------------------------------------------------- lines


async def test_adding_items_prices_them_from_the_catalog(conn: Connection) -> None:
    product = await make_product(
        conn, prices=("12.50", "3.00"), name="Linen Shirt", variant_names=(None, "Large")
    )
    default, large = product.variants
    cart, owner = await new_guest_cart(conn)
    await service.add_item(conn, cart_id=cart.id, owner=owner, sku=default.sku, quantity=2)
    cart = await service.add_item(conn, cart_id=cart.id, owner=owner, sku=large.sku, quantity=3)

    assert [(i.sku, i.name, i.unit_price, i.quantity, i.line_total) for i in cart.items] == [
        (default.sku, "Linen Shirt", usd("12.50"), 2, usd("25.00")),
        (large.sku, "Linen Shirt - Large", usd("3.00"), 3, usd("9.00")),
    ]
    assert (cart.totals.subtotal, cart.totals.total, cart.version) == (
        usd("34.00"),
        usd("34.00"),
        3,
    )
    assert cart == await service.get_cart(conn, cart_id=cart.id, owner=owner, now=NOW)


async def test_adding_a_sku_already_in_the_cart_increases_its_quantity(conn: Connection) -> None:
    [sku] = await make_skus(conn, count=1)
    cart, owner = await new_guest_cart(conn)
    first = await service.add_item(conn, cart_id=cart.id, owner=owner, sku=sku, quantity=2)
    again = await service.add_item(conn, cart_id=cart.id, owner=owner, sku=sku, quantity=5)
    assert [(i.id, i.quantity) for i in again.items] == [(first.items[0].id, 7)]


async def test_a_cart_always_shows_the_current_catalog_price(conn: Connection) -> None:
    [sku] = await make_skus(conn, count=1, price="10.00")
    cart, owner = await new_guest_cart(conn)
    await service.add_item(conn, cart_id=cart.id, owner=owner, sku=sku, quantity=2)
    await catalog.update_variant(conn, sku=sku, currency="USD", price=usd("7.25"))
    cart = await service.get_cart(conn, cart_id=cart.id, owner=owner)
    assert (cart.items[0].unit_price, cart.totals.subtotal) == (usd("7.25"), usd("14.50"))


async def test_an_unknown_sku_is_not_found_and_an_archived_one_unavailable(
    conn: Connection,
) -> None:
    product = await make_product(conn)
    await catalog.archive_product(conn, product_id=product.id)
    cart, owner = await new_guest_cart(conn)
    with pytest.raises(SkuNotFound):
        await service.add_item(conn, cart_id=cart.id, owner=owner, sku="NO-SUCH-SKU", quantity=1)
    with pytest.raises(SkuNotFound):
        await service.add_item(conn, cart_id=cart.id, owner=owner, sku="bad sku\x00", quantity=1)
    with pytest.raises(SkuUnavailable):
        await service.add_item(
            conn, cart_id=cart.id, owner=owner, sku=product.variants[0].sku, quantity=1
        )


async def test_a_line_cannot_go_past_ninety_nine(conn: Connection) -> None:
    [sku] = await make_skus(conn, count=1)
    cart, owner = await new_guest_cart(conn)
    await service.add_item(conn, cart_id=cart.id, owner=owner, sku=sku, quantity=90)
    with pytest.raises(InvalidQuantity):
        await service.add_item(conn, cart_id=cart.id, owner=owner, sku=sku, quantity=10)
    with pytest.raises(InvalidQuantity):
        await service.add_item(conn, cart_id=cart.id, owner=owner, sku=sku, quantity=0)
    cart = await service.get_cart(conn, cart_id=cart.id, owner=owner)
    assert cart.items[0].quantity == 90


async def test_a_cart_holds_at_most_one_hundred_lines(conn: Connection) -> None:
    skus = await make_skus(conn, count=101)
    cart, owner = await new_guest_cart(conn)
    for sku in skus[:100]:
        await service.add_item(conn, cart_id=cart.id, owner=owner, sku=sku, quantity=1)
    with pytest.raises(TooManyLines):
        await service.add_item(conn, cart_id=cart.id, owner=owner, sku=skus[100], quantity=1)
    # More of a sku already there needs no new line.
    full = await service.add_item(conn, cart_id=cart.id, owner=owner, sku=skus[0], quantity=1)
    assert (len(full.items), full.items[0].quantity) == (100, 2)


async def test_updating_a_line_sets_its_quantity_and_zero_removes_it(conn: Connection) -> None:
    a, b = await make_skus(conn, count=2)
    cart, owner = await new_guest_cart(conn)
    await service.add_item(conn, cart_id=cart.id, owner=owner, sku=a, quantity=1)
    cart = await service.add_item(conn, cart_id=cart.id, owner=owner, sku=b, quantity=1)
    line_a, line_b = cart.items
    cart = await service.update_item(
        conn, cart_id=cart.id, owner=owner, item_id=line_a.id, quantity=4
    )
    assert [(i.sku, i.quantity) for i in cart.items] == [(a, 4), (b, 1)]
    cart = await service.update_item(
        conn, cart_id=cart.id, owner=owner, item_id=line_b.id, quantity=0
    )
    assert [(i.sku, i.quantity) for i in cart.items] == [(a, 4)]
    assert cart == await service.get_cart(conn, cart_id=cart.id, owner=owner)
    with pytest.raises(InvalidQuantity):
        await service.update_item(
            conn, cart_id=cart.id, owner=owner, item_id=line_a.id, quantity=100
        )


async def test_removing_a_line_and_missing_lines(conn: Connection) -> None:
    [sku] = await make_skus(conn, count=1)
    cart, owner = await new_guest_cart(conn)
    cart = await service.add_item(conn, cart_id=cart.id, owner=owner, sku=sku, quantity=1)
    item_id = cart.items[0].id
    cart = await service.remove_item(conn, cart_id=cart.id, owner=owner, item_id=item_id)
    assert (cart.items, cart.totals.total) == ((), usd("0"))
    with pytest.raises(CartItemNotFound):
        await service.remove_item(conn, cart_id=cart.id, owner=owner, item_id=item_id)
    with pytest.raises(CartItemNotFound):
        await service.update_item(conn, cart_id=cart.id, owner=owner, item_id=item_id, quantity=2)


async def test_an_archived_line_can_be_lowered_or_removed_but_not_raised(
    conn: Connection,
) -> None:
    product = await make_product(conn)
    sku = product.variants[0].sku
    cart, owner = await new_guest_cart(conn)
    cart = await service.add_item(conn, cart_id=cart.id, owner=owner, sku=sku, quantity=3)
    await catalog.archive_product(conn, product_id=product.id)
    item_id = cart.items[0].id
    with pytest.raises(SkuUnavailable):
        await service.update_item(conn, cart_id=cart.id, owner=owner, item_id=item_id, quantity=4)
    cart = await service.update_item(
        conn, cart_id=cart.id, owner=owner, item_id=item_id, quantity=1
    )
    assert cart.items[0].quantity == 1


async def test_someone_elses_cart_cannot_be_changed(conn: Connection) -> None:
    [sku] = await make_skus(conn, count=1)
    cart, _ = await new_guest_cart(conn)
    with pytest.raises(CartNotFound):
        await service.add_item(
            conn, cart_id=cart.id, owner=guest_owner("wrong"), sku=sku, quantity=1
        )


async def test_every_change_bumps_the_version_and_a_stale_if_match_is_refused(
    conn: Connection,
) -> None:
    [sku] = await make_skus(conn, count=1)
    cart, owner = await new_guest_cart(conn)
    cart = await service.add_item(
        conn, cart_id=cart.id, owner=owner, sku=sku, quantity=1, expected_version=1
    )
    assert cart.version == 2
    with pytest.raises(VersionMismatch):
        await service.add_item(
            conn, cart_id=cart.id, owner=owner, sku=sku, quantity=1, expected_version=1
        )
    cart = await service.update_item(
        conn, cart_id=cart.id, owner=owner, item_id=cart.items[0].id, quantity=5, expected_version=2
    )
    assert (cart.version, cart.items[0].quantity) == (3, 5)


# ---------------------------------------------------------------- shipping and tax


async def test_a_destination_adds_default_shipping_and_the_countrys_tax(
    conn: Connection,
) -> None:
    [sku] = await make_skus(conn, count=1, price="20.00")
    cart, owner = await new_guest_cart(conn)
    await service.add_item(conn, cart_id=cart.id, owner=owner, sku=sku, quantity=1)
    pricing = Pricing(
        destination=service.resolve_destination(country="gb", shipping_method=None, currency="USD"),
        tax_rates=TAX_RATES,
    )
    cart = await service.get_cart(conn, cart_id=cart.id, owner=owner, pricing=pricing)
    # Standard shipping 5.00; tax 20 % of 25.00.
    assert (cart.country, cart.totals.shipping, cart.totals.tax, cart.totals.total) == (
        "GB",
        usd("5.00"),
        usd("5.00"),
        usd("30.00"),
    )
    assert cart.totals.shipping_method == "standard"


async def test_unknown_country_or_shipping_method_is_refused() -> None:
    with pytest.raises(InvalidCountry):
        service.resolve_destination(country="Narnia", shipping_method=None, currency="USD")
    with pytest.raises(ShippingMethodInvalid):
        service.resolve_destination(country="US", shipping_method="teleport", currency="USD")
    with pytest.raises(ShippingMethodInvalid):
        service.resolve_destination(country="DE", shipping_method="overnight", currency="USD")


# ---------------------------------------------------------------- coupons


async def test_applying_a_coupon_discounts_the_cart_and_removing_it_restores(
    conn: Connection,
) -> None:
    [sku] = await make_skus(conn, count=1, price="40.00")
    coupon = await make_coupon(conn, percent_off=Decimal(25))
    cart, owner = await new_guest_cart(conn)
    await service.add_item(conn, cart_id=cart.id, owner=owner, sku=sku, quantity=1)
    cart = await service.apply_coupon(
        conn, cart_id=cart.id, owner=owner, code=coupon.coupon.code.lower()
    )
    assert (cart.coupon, cart.totals.discount, cart.totals.total) == (
        coupon.coupon.code,
        usd("10.00"),
        usd("30.00"),
    )
    assert cart == await service.get_cart(conn, cart_id=cart.id, owner=owner)
    cart = await service.remove_coupon(conn, cart_id=cart.id, owner=owner)
    assert (cart.coupon, cart.totals.discount, cart.totals.total) == (
        None,
        usd("0"),
        usd("40.00"),
    )


async def test_a_coupon_below_its_minimum_is_refused(conn: Connection) -> None:
    [sku] = await make_skus(conn, count=1, price="10.00")
    coupon = await make_coupon(conn, amount_off=usd("5.00"), min_subtotal=usd("50.00"))
    cart, owner = await new_guest_cart(conn)
    await service.add_item(conn, cart_id=cart.id, owner=owner, sku=sku, quantity=1)
    with pytest.raises(CouponInvalid):
        await service.apply_coupon(conn, cart_id=cart.id, owner=owner, code=coupon.coupon.code)


# ---------------------------------------------------------------- merge


async def test_merging_sums_quantities_caps_them_and_closes_the_guest_cart(
    conn: Connection, make_user: MakeUser
) -> None:
    a, b, c = await make_skus(conn, count=3)
    user = await make_user()
    mine = await service.create_cart(conn, user=principal(user), currency=None, shop_currency="USD")
    owner = user_owner(user)
    await service.add_item(conn, cart_id=mine.id, owner=owner, sku=a, quantity=60)
    await service.add_item(conn, cart_id=mine.id, owner=owner, sku=b, quantity=1)
    guest, guest_token = await new_guest_cart(conn)
    await service.add_item(conn, cart_id=guest.id, owner=guest_token, sku=a, quantity=50)
    await service.add_item(conn, cart_id=guest.id, owner=guest_token, sku=c, quantity=2)
    assert guest.cart_token is not None

    merged = await service.merge_carts(
        conn, cart_id=mine.id, user=principal(user), cart_token=guest.cart_token
    )
    assert [(i.sku, i.quantity) for i in merged.items] == [(a, 99), (b, 1), (c, 2)]
    assert merged == await service.get_cart(conn, cart_id=mine.id, owner=owner)
    closed = await service.get_cart(conn, cart_id=guest.id, owner=guest_token)
    assert closed.status == CartStatus.MERGED
    with pytest.raises(CartClosed):
        await service.add_item(conn, cart_id=guest.id, owner=guest_token, sku=a, quantity=1)
    with pytest.raises(CartClosed):
        await service.merge_carts(
            conn, cart_id=mine.id, user=principal(user), cart_token=guest.cart_token
        )


async def test_merging_into_someone_elses_cart_or_with_a_wrong_token_is_not_found(
    conn: Connection, make_user: MakeUser
) -> None:
    user, other = await make_user(), await make_user()
    theirs = await service.create_cart(
        conn, user=principal(other), currency=None, shop_currency="USD"
    )
    mine = await service.create_cart(conn, user=principal(user), currency=None, shop_currency="USD")
    guest, _ = await new_guest_cart(conn)
    assert guest.cart_token is not None
    with pytest.raises(CartNotFound):
        await service.merge_carts(
            conn, cart_id=theirs.id, user=principal(user), cart_token=guest.cart_token
        )
    with pytest.raises(CartNotFound):
        await service.merge_carts(
            conn, cart_id=mine.id, user=principal(user), cart_token="not-a-token"
        )


async def test_a_merge_past_one_hundred_lines_changes_nothing(
    conn: Connection, make_user: MakeUser
) -> None:
    skus = await make_skus(conn, count=101)
    user = await make_user()
    mine = await service.create_cart(conn, user=principal(user), currency=None, shop_currency="USD")
    for sku in skus[:100]:
        await service.add_item(conn, cart_id=mine.id, owner=user_owner(user), sku=sku, quantity=1)
    guest, guest_owner_ = await new_guest_cart(conn)
    await service.add_item(conn, cart_id=guest.id, owner=guest_owner_, sku=skus[100], quantity=1)
    assert guest.cart_token is not None
    with pytest.raises(TooManyLines):
        await service.merge_carts(
            conn, cart_id=mine.id, user=principal(user), cart_token=guest.cart_token
        )


# ---------------------------------------------------------------- checkout


async def test_lock_cart_for_checkout_returns_a_priced_snapshot(
    conn: Connection, make_user: MakeUser
) -> None:
    a, b = await make_skus(conn, count=2, price="30.00")
    coupon = await make_coupon(conn, percent_off=Decimal(10))
    user = await make_user()
    cart = await service.create_cart(conn, user=principal(user), currency=None, shop_currency="USD")
    owner = user_owner(user)
    await service.add_item(conn, cart_id=cart.id, owner=owner, sku=a, quantity=1)
    await service.add_item(conn, cart_id=cart.id, owner=owner, sku=b, quantity=2)
    await service.apply_coupon(conn, cart_id=cart.id, owner=owner, code=coupon.coupon.code)

    snapshot = await service.lock_cart_for_checkout(
        conn,
        cart_id=cart.id,
        owner=owner,
        country="us",
        shipping_method="express",
        now=NOW,
        tax_rates=TAX_RATES,
    )
    assert (snapshot.cart_id, snapshot.user_id, snapshot.currency, snapshot.version) == (
        cart.id,
        user.id,
        "USD",
        4,
    )
    assert [(line.sku, line.unit_price, line.quantity) for line in snapshot.lines] == [
        (a, usd("30.00"), 1),
        (b, usd("30.00"), 2),
    ]
    assert snapshot.quantities == {a: 1, b: 2}
    assert snapshot.coupon is not None
    assert snapshot.coupon.code == coupon.coupon.code
    assert (snapshot.shipping_method.code, snapshot.country) == ("express", "US")
    totals = snapshot.totals
    # 90.00 - 9.00 + 15.00 = 96.00; tax 7.25 % = 6.96.
    assert (totals.subtotal, totals.discount, totals.shipping, totals.tax, totals.total) == (
        usd("90.00"),
        usd("9.00"),
        usd("15.00"),
        usd("6.96"),
        usd("102.96"),
    )
    assert totals.tax_rate == Decimal("0.0725")


async def test_lock_cart_for_checkout_defaults_to_standard_shipping_and_configured_taxes(
    conn: Connection,
) -> None:
    [sku] = await make_skus(conn, count=1, price="10.00")
    cart, owner = await new_guest_cart(conn)
    await service.add_item(conn, cart_id=cart.id, owner=owner, sku=sku, quantity=1)
    snapshot = await service.lock_cart_for_checkout(
        conn, cart_id=cart.id, owner=owner, country="CA", shipping_method=None, now=NOW
    )
    assert (snapshot.user_id, snapshot.shipping_method.code, snapshot.totals.tax_rate) == (
        None,
        "standard",
        Decimal("0.13"),
    )


async def test_lock_cart_for_checkout_refuses_what_cannot_become_an_order(
    conn: Connection,
) -> None:
    product = await make_product(conn)
    empty, empty_owner = await new_guest_cart(conn)
    with pytest.raises(CartEmpty):
        await service.lock_cart_for_checkout(
            conn, cart_id=empty.id, owner=empty_owner, country="US", shipping_method=None, now=NOW
        )
    with pytest.raises(CartNotFound):
        await service.lock_cart_for_checkout(
            conn,
            cart_id=empty.id,
            owner=guest_owner("nope"),
            country="US",
            shipping_method=None,
            now=NOW,
        )
    cart, owner = await new_guest_cart(conn)
    await service.add_item(
        conn, cart_id=cart.id, owner=owner, sku=product.variants[0].sku, quantity=1
    )
    await catalog.archive_product(conn, product_id=product.id)
    with pytest.raises(SkuUnavailable):
        await service.lock_cart_for_checkout(
            conn, cart_id=cart.id, owner=owner, country="US", shipping_method=None, now=NOW
        )


async def test_lock_cart_for_checkout_rechecks_the_coupon(conn: Connection) -> None:
    [sku] = await make_skus(conn, count=1, price="10.00")
    ending = await make_coupon(conn, percent_off=Decimal(10), ends_at=NOW + timedelta(hours=1))
    single = await make_coupon(conn, percent_off=Decimal(10), max_redemptions=1)
    cart, owner = await new_guest_cart(conn)
    await service.add_item(conn, cart_id=cart.id, owner=owner, sku=sku, quantity=1)

    await service.apply_coupon(conn, cart_id=cart.id, owner=owner, code=ending.coupon.code)
    with pytest.raises(CouponInvalid, match="expired"):
        await service.lock_cart_for_checkout(
            conn,
            cart_id=cart.id,
            owner=owner,
            country="US",
            shipping_method=None,
            now=NOW + timedelta(hours=2),
        )

    await service.apply_coupon(conn, cart_id=cart.id, owner=owner, code=single.coupon.code)
    await promotions.reserve_redemption(conn, code=single.coupon.code)  # another order took it
    with pytest.raises(CouponUnavailable):
        await service.lock_cart_for_checkout(
            conn, cart_id=cart.id, owner=owner, country="US", shipping_method=None, now=NOW
        )


async def test_a_checked_out_cart_is_closed_to_every_change(conn: Connection) -> None:
    [sku] = await make_skus(conn, count=1)
    cart, owner = await new_guest_cart(conn)
    cart = await service.add_item(conn, cart_id=cart.id, owner=owner, sku=sku, quantity=1)
    await service.mark_checked_out(conn, cart_id=cart.id, expected_version=cart.version)

    shown = await service.get_cart(conn, cart_id=cart.id, owner=owner)
    assert (shown.status, shown.version) == (CartStatus.CHECKED_OUT, cart.version + 1)
    item_id = cart.items[0].id
    changes = [
        service.add_item(conn, cart_id=cart.id, owner=owner, sku=sku, quantity=1),
        service.update_item(conn, cart_id=cart.id, owner=owner, item_id=item_id, quantity=2),
        service.remove_item(conn, cart_id=cart.id, owner=owner, item_id=item_id),
        service.apply_coupon(conn, cart_id=cart.id, owner=owner, code="ANY"),
        service.remove_coupon(conn, cart_id=cart.id, owner=owner),
        service.lock_cart_for_checkout(
            conn, cart_id=cart.id, owner=owner, country="US", shipping_method=None, now=NOW
        ),
        service.mark_checked_out(conn, cart_id=cart.id),
    ]
    for change in changes:
        with pytest.raises(CartClosed):
            await change


async def test_mark_checked_out_refuses_a_cart_changed_since_the_snapshot(
    conn: Connection,
) -> None:
    [sku] = await make_skus(conn, count=1)
    cart, owner = await new_guest_cart(conn)
    cart = await service.add_item(conn, cart_id=cart.id, owner=owner, sku=sku, quantity=1)
    await service.add_item(conn, cart_id=cart.id, owner=owner, sku=sku, quantity=1)
    with pytest.raises(VersionMismatch):
        await service.mark_checked_out(conn, cart_id=cart.id, expected_version=cart.version)
    with pytest.raises(CartNotFound):
        await service.mark_checked_out(conn, cart_id=uuid4())


# ---------------------------------------------------------------- expiry


async def test_idle_guest_carts_expire_and_user_or_recent_carts_do_not(
    conn: Connection, make_user: MakeUser
) -> None:
    user = await make_user()
    idle, idle_owner = await new_guest_cart(conn)
    recent, _ = await new_guest_cart(conn)
    users = await service.create_cart(
        conn, user=principal(user), currency=None, shop_currency="USD"
    )
    await conn.execute(
        "UPDATE carts SET updated_at = now() - interval '31 days' WHERE id = ANY($1::uuid[])",
        [idle.id, users.id],
    )
    expired = await service.expire_idle_guest_carts(conn, idle_for=timedelta(days=30))
    assert expired >= 1
    statuses = dict(
        await conn.fetch(
            "SELECT id, status FROM carts WHERE id = ANY($1::uuid[])",
            [idle.id, recent.id, users.id],
        )
    )
    assert statuses == {idle.id: "expired", recent.id: "open", users.id: "open"}
    [sku] = await make_skus(conn, count=1)
    with pytest.raises(CartClosed):
        await service.add_item(conn, cart_id=idle.id, owner=idle_owner, sku=sku, quantity=1)


# ---------------------------------------------------------------- statements


@pytest.mark.parametrize("lines", [1, 40])
async def test_reading_and_changing_a_cart_take_a_fixed_number_of_statements(
    conn: Connection, lines: int
) -> None:
    skus = await make_skus(conn, count=lines + 1)
    cart, owner = await new_guest_cart(conn)
    for sku in skus[:lines]:
        await service.add_item(conn, cart_id=cart.id, owner=owner, sku=sku, quantity=1)

    async with logged_statements(conn) as reads:
        await service.get_cart(conn, cart_id=cart.id, owner=owner)
    async with logged_statements(conn) as adds:
        view = await service.add_item(conn, cart_id=cart.id, owner=owner, sku=skus[-1], quantity=1)
    async with logged_statements(conn) as updates:
        await service.update_item(
            conn, cart_id=cart.id, owner=owner, item_id=view.items[0].id, quantity=2
        )
    async with logged_statements(conn) as checkouts:
        await service.lock_cart_for_checkout(
            conn, cart_id=cart.id, owner=owner, country="US", shipping_method=None, now=NOW
        )
    async with logged_statements(conn) as creates:
        await new_guest_cart(conn)
    assert (len(creates), len(reads), len(adds), len(updates), len(checkouts)) == (1, 2, 2, 3, 2)
