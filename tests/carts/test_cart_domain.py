"""Pure rules added for stored carts: who owns a cart, which shipping a destination gets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import uuid4

import pytest

from congocart.carts.domain import (
    Cart,
    CartItem,
    CartOwner,
    CartStatus,
    Destination,
    ShippingMethodUnknown,
    ShippingNotAvailable,
    ShippingRate,
    choose_shipping,
    hash_cart_token,
)
from congocart.identity.domain import Principal
from congocart.promotions.domain import Coupon

NOW = datetime(2026, 11, 24, tzinfo=UTC)


def someone() -> Principal:
    return Principal(id=uuid4(), email="someone@example.com", roles=frozenset({"customer"}))


def cart(*, user: Principal | None = None, token: str | None = None) -> Cart:
    return Cart(
        id=uuid4(),
        user_id=None if user is None else user.id,
        guest_token_hash=None if token is None else hash_cart_token(token),
        currency="USD",
        coupon_code=None,
        status=CartStatus.OPEN,
        version=1,
        updated_at=NOW,
        items=(),
    )


def test_a_guest_cart_is_owned_by_the_holder_of_its_token_only() -> None:
    guest = cart(token="s3cret")
    assert guest.is_owned_by(CartOwner(cart_token="s3cret"))
    assert guest.is_owned_by(CartOwner(user=someone(), cart_token="s3cret"))
    for stranger in (CartOwner(), CartOwner(cart_token="s3cret "), CartOwner(user=someone())):
        assert not guest.is_owned_by(stranger)


def test_a_user_cart_is_owned_by_its_user_only_whatever_token_is_sent() -> None:
    user = someone()
    owned = cart(user=user)
    assert owned.is_owned_by(CartOwner(user=user))
    assert not owned.is_owned_by(CartOwner(user=someone()))
    assert not owned.is_owned_by(CartOwner(cart_token="anything"))


def test_lines_are_replaced_in_place_or_appended() -> None:
    first, second = CartItem(uuid4(), "A", 1), CartItem(uuid4(), "B", 2)
    base = cart(token="t")
    grown = base.with_item(first, version=2, updated_at=NOW).with_item(
        second, version=3, updated_at=NOW
    )
    changed = grown.with_item(CartItem(first.id, "A", 5), version=4, updated_at=NOW)
    assert [(i.sku, i.quantity) for i in changed.items] == [("A", 5), ("B", 2)]
    assert changed.without_item(first.id, version=5, updated_at=NOW).skus == ["B"]
    assert (changed.version, changed.quantities()) == (4, {"A": 5, "B": 2})


TABLE = (
    ShippingRate("standard", "Standard", Decimal("5.00"), 5, 7, countries=frozenset({"US", "CA"})),
    ShippingRate("sea", "Sea", Decimal("2.00"), 20, 40, countries=frozenset({"JP"})),
)


def test_no_destination_means_no_shipping_yet() -> None:
    assert choose_shipping(Destination(), currency="USD", table=TABLE) is None


def test_a_country_gets_the_default_method_or_the_first_that_ships_there() -> None:
    us = choose_shipping(Destination(country="US"), currency="USD", table=TABLE)
    jp = choose_shipping(Destination(country="JP"), currency="USD", table=TABLE)
    assert (us and us.code, jp and jp.code) == ("standard", "sea")
    with pytest.raises(ShippingNotAvailable):
        choose_shipping(Destination(country="FR"), currency="USD", table=TABLE)


def test_a_named_method_must_exist_and_ship_to_the_country() -> None:
    sea = choose_shipping(Destination(shipping_method="sea"), currency="USD", table=TABLE)
    assert sea is not None
    assert sea.code == "sea"
    with pytest.raises(ShippingNotAvailable):
        choose_shipping(
            Destination(country="US", shipping_method="sea"), currency="USD", table=TABLE
        )
    with pytest.raises(ShippingMethodUnknown):
        choose_shipping(Destination(shipping_method="drone"), currency="USD", table=TABLE)


def test_a_coupon_is_active_from_its_start_until_before_its_end() -> None:
    coupon = Coupon(
        code="WINDOW", percent_off=Decimal(5), starts_at=NOW, ends_at=NOW + timedelta(days=1)
    )
    assert not coupon.is_active(NOW - timedelta(microseconds=1))
    assert coupon.is_active(NOW)
    assert not coupon.is_active(NOW + timedelta(days=1))
    assert Coupon(code="ALWAYS", percent_off=Decimal(5)).is_active(NOW)
