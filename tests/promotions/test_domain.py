"""Coupon rules: definition, discount and applicability. Pure, no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from congocart.core.money import Money
from congocart.promotions.domain import (
    Coupon,
    CouponCurrencyMismatch,
    CouponCustomerLimitReached,
    CouponExpired,
    CouponMinimumNotMet,
    CouponNotApplicable,
    CouponNotStarted,
    CouponUnknown,
    CouponUsedUp,
    InvalidCoupon,
    normalize_code,
)

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def usd(amount: str) -> Money:
    return Money.of(amount, "USD")


def test_codes_are_stored_upper_case_without_outer_spaces() -> None:
    assert Coupon(code="  summer-10 ", percent_off=Decimal(10)).code == "SUMMER-10"
    assert normalize_code(" welcome_5 ") == "WELCOME_5"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "exactly one"),
        ({"percent_off": Decimal(10), "amount_off": usd("5.00")}, "exactly one"),
        ({"percent_off": Decimal(0)}, "percent_off"),
        ({"percent_off": Decimal("100.01")}, "percent_off"),
        ({"percent_off": Decimal(-5)}, "percent_off"),
        ({"percent_off": Decimal("NaN")}, "percent_off"),
        ({"percent_off": Decimal("12.345")}, "two decimals"),
        ({"amount_off": usd("0")}, "positive"),
        ({"amount_off": usd("-1.00")}, "positive"),
        ({"amount_off": Money(Decimal("1.005"), "USD")}, "decimals"),
        ({"percent_off": Decimal(5), "min_subtotal": usd("-1.00")}, "min_subtotal"),
        ({"amount_off": usd("5"), "min_subtotal": Money.of("10", "EUR")}, "same currency"),
        ({"percent_off": Decimal(5), "max_redemptions": 0}, "max_redemptions"),
        ({"percent_off": Decimal(5), "per_customer_limit": 0}, "per_customer_limit"),
        ({"percent_off": Decimal(5), "starts_at": datetime(2026, 1, 1)}, "time zone"),
        ({"percent_off": Decimal(5), "starts_at": NOW, "ends_at": NOW}, "after starts_at"),
    ],
)
def test_coupon_definitions_that_break_the_rules_are_refused(
    fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidCoupon, match=message):
        Coupon(code="BAD", **fields)


@pytest.mark.parametrize("code", ["", "   ", "-LEADING", "HAS SPACE", "X" * 65, "ÉTÉ", "A;DROP"])
def test_malformed_codes_are_refused(code: str) -> None:
    with pytest.raises(InvalidCoupon, match="code"):
        Coupon(code=code, percent_off=Decimal(5))


def test_100_percent_is_a_valid_coupon_taking_the_whole_subtotal() -> None:
    assert Coupon(code="FREE", percent_off=Decimal(100)).discount_for(usd("12.34")) == usd("12.34")


def test_percent_discount_is_rounded_half_even() -> None:
    coupon = Coupon(code="TEN", percent_off=Decimal(10))
    assert coupon.discount_for(usd("0.25")) == usd("0.02")
    assert coupon.discount_for(usd("0.35")) == usd("0.04")
    assert coupon.discount_for(usd("19.99")) == usd("2.00")


def test_amount_discount_is_capped_at_the_subtotal() -> None:
    coupon = Coupon(code="FIVE", amount_off=usd("5.00"))
    assert coupon.discount_for(usd("20.00")) == usd("5.00")
    assert coupon.discount_for(usd("3.10")) == usd("3.10")
    assert coupon.discount_for(usd("0")).is_zero()


def test_no_discount_below_the_minimum_subtotal() -> None:
    coupon = Coupon(code="BIG", amount_off=usd("10.00"), min_subtotal=usd("100.00"))
    assert coupon.discount_for(usd("99.99")).is_zero()
    assert coupon.discount_for(usd("100.00")) == usd("10.00")


def test_an_amount_coupon_in_another_currency_gives_nothing_and_says_so() -> None:
    coupon = Coupon(code="EURO", amount_off=Money.of("5", "EUR"))
    with pytest.raises(CouponCurrencyMismatch):
        coupon.discount_for(usd("20.00"))
    with pytest.raises(CouponCurrencyMismatch):
        coupon.ensure_applicable(subtotal=usd("20.00"), now=NOW)


def test_a_percent_coupon_without_money_fields_works_in_any_currency() -> None:
    coupon = Coupon(code="TEN", percent_off=Decimal(10))
    assert coupon.currency is None
    assert coupon.discount_for(Money.of("1000", "JPY")) == Money.of("100", "JPY")


def test_a_valid_coupon_is_applicable() -> None:
    coupon = Coupon(
        code="OK",
        percent_off=Decimal(10),
        min_subtotal=usd("10.00"),
        max_redemptions=5,
        per_customer_limit=1,
        starts_at=NOW - timedelta(days=1),
        ends_at=NOW + timedelta(days=1),
        redemptions=4,
    )
    coupon.ensure_applicable(subtotal=usd("10.00"), now=NOW, customer_redemptions=0)


def test_a_coupon_is_valid_from_its_start_inclusive() -> None:
    coupon = Coupon(code="SOON", percent_off=Decimal(10), starts_at=NOW)
    coupon.ensure_applicable(subtotal=usd("1.00"), now=NOW)
    with pytest.raises(CouponNotStarted):
        coupon.ensure_applicable(subtotal=usd("1.00"), now=NOW - timedelta(microseconds=1))


def test_a_coupon_expires_at_its_end_exclusive() -> None:
    coupon = Coupon(code="LATE", percent_off=Decimal(10), ends_at=NOW)
    coupon.ensure_applicable(subtotal=usd("1.00"), now=NOW - timedelta(microseconds=1))
    with pytest.raises(CouponExpired):
        coupon.ensure_applicable(subtotal=usd("1.00"), now=NOW)


def test_a_coupon_at_its_redemption_limit_is_used_up() -> None:
    coupon = Coupon(code="ONCE", percent_off=Decimal(10), max_redemptions=1, redemptions=1)
    assert coupon.is_used_up()
    with pytest.raises(CouponUsedUp):
        coupon.ensure_applicable(subtotal=usd("1.00"), now=NOW)


def test_a_customer_at_the_per_customer_limit_cannot_use_it_again() -> None:
    coupon = Coupon(code="TWICE", percent_off=Decimal(10), per_customer_limit=2)
    coupon.ensure_applicable(subtotal=usd("1.00"), now=NOW, customer_redemptions=1)
    with pytest.raises(CouponCustomerLimitReached):
        coupon.ensure_applicable(subtotal=usd("1.00"), now=NOW, customer_redemptions=2)


def test_a_subtotal_below_the_minimum_makes_the_coupon_inapplicable() -> None:
    coupon = Coupon(code="MIN", percent_off=Decimal(10), min_subtotal=usd("25.00"))
    with pytest.raises(CouponMinimumNotMet, match=r"25\.00 USD"):
        coupon.ensure_applicable(subtotal=usd("24.99"), now=NOW)


def test_applicability_needs_an_aware_time() -> None:
    with pytest.raises(ValueError, match="time zone"):
        Coupon(code="X", percent_off=Decimal(1)).ensure_applicable(
            subtotal=usd("1"),
            now=datetime(2026, 1, 1),
        )


def test_every_refusal_is_a_coupon_not_applicable_with_a_client_message() -> None:
    refusals = [
        CouponUnknown("NOPE"),
        CouponNotStarted("X"),
        CouponExpired("X"),
        CouponUsedUp("X"),
        CouponCustomerLimitReached("X"),
        CouponMinimumNotMet("X", usd("5")),
        CouponCurrencyMismatch("X", "EUR"),
    ]
    for refusal in refusals:
        assert isinstance(refusal, CouponNotApplicable)
        assert str(refusal)


percent = st.decimals(min_value="0.01", max_value="100", places=2)
minor = st.integers(0, 10**12)


@given(
    coupon=st.one_of(
        st.builds(lambda p: Coupon(code="P", percent_off=p), percent),
        st.builds(
            lambda m: Coupon(code="A", amount_off=Money.from_minor(m, "USD")), minor.filter(bool)
        ),
    ),
    subtotal=minor,
)
def test_a_discount_is_never_negative_never_above_the_subtotal_and_in_whole_cents(
    coupon: Coupon, subtotal: int
) -> None:
    amount = Money.from_minor(subtotal, "USD")
    discount = coupon.discount_for(amount)
    assert not discount.is_negative()
    assert discount <= amount
    assert discount.is_exact()
