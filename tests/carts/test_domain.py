"""Cart rules, shipping, tax and pricing: pure, no database."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from congocart.carts.domain import (
    MAX_LINES,
    MAX_QUANTITY,
    SHIPPING_TABLE,
    CartLine,
    InvalidCountry,
    LineLimitExceeded,
    QuantityOutOfRange,
    ShippingMethod,
    ShippingMethodUnknown,
    ShippingNotAvailable,
    check_quantity,
    find_shipping_method,
    merge_quantities,
    price_cart,
    quantity_after_add,
    shipping_methods,
    tax_rate_for,
)
from congocart.config import DEFAULT_TAX_RATES, Settings
from congocart.core.money import CurrencyMismatch, Money
from congocart.promotions.domain import Coupon


def usd(amount: str) -> Money:
    return Money.of(amount, "USD")


def line(sku: str, price: str, quantity: int, currency: str = "USD") -> CartLine:
    return CartLine(
        sku=sku, name=f"Item {sku}", unit_price=Money.of(price, currency), quantity=quantity
    )


STANDARD = find_shipping_method("standard", currency="USD")
EXPRESS = find_shipping_method("express", currency="USD")
DEFAULT_RATES = {k: Decimal(v) for k, v in DEFAULT_TAX_RATES.items()}


# --- lines ------------------------------------------------------------------


@pytest.mark.parametrize("quantity", [1, 2, 50, 99])
def test_quantities_from_1_to_99_are_accepted(quantity: int) -> None:
    assert check_quantity(quantity) == quantity
    assert line("A", "1.00", quantity).quantity == quantity


@pytest.mark.parametrize("quantity", [-1, 0, 100, 1000])
def test_quantities_outside_1_to_99_are_refused(quantity: int) -> None:
    with pytest.raises(QuantityOutOfRange):
        check_quantity(quantity)
    with pytest.raises(QuantityOutOfRange):
        line("A", "1.00", quantity)


def test_a_line_with_a_negative_or_sub_cent_price_is_refused() -> None:
    with pytest.raises(ValueError, match="not a valid price"):
        CartLine(sku="A", name="A", unit_price=usd("-1.00"), quantity=1)
    with pytest.raises(ValueError, match="not a valid price"):
        CartLine(sku="A", name="A", unit_price=Money(Decimal("1.005"), "USD"), quantity=1)


def test_line_total_is_unit_price_times_quantity() -> None:
    assert line("A", "19.99", 3).line_total == usd("59.97")


def test_adding_a_sku_already_in_the_cart_increases_its_quantity() -> None:
    assert quantity_after_add(2, 3, lines_in_cart=5) == 5


def test_adding_past_99_of_a_sku_is_refused_not_capped() -> None:
    assert quantity_after_add(90, 9, lines_in_cart=1) == 99
    with pytest.raises(QuantityOutOfRange) as raised:
        quantity_after_add(90, 10, lines_in_cart=1)
    assert raised.value.quantity == 100


def test_adding_a_new_sku_needs_room_for_another_line() -> None:
    assert quantity_after_add(None, 4, lines_in_cart=MAX_LINES - 1) == 4
    with pytest.raises(LineLimitExceeded):
        quantity_after_add(None, 1, lines_in_cart=MAX_LINES)
    # A sku already in a full cart only changes its quantity.
    assert quantity_after_add(1, 1, lines_in_cart=MAX_LINES) == 2


@pytest.mark.parametrize("added", [0, -2, 100])
def test_adding_an_invalid_quantity_is_refused(added: int) -> None:
    with pytest.raises(QuantityOutOfRange):
        quantity_after_add(None, added, lines_in_cart=0)


# --- merge on login ---------------------------------------------------------


def test_merge_sums_shared_skus_and_appends_new_ones_in_order() -> None:
    merged = merge_quantities({"A": 2, "B": 1}, {"C": 5, "A": 3})
    assert merged == {"A": 5, "B": 1, "C": 5}
    assert list(merged) == ["A", "B", "C"]


def test_merge_caps_a_shared_sku_at_99() -> None:
    assert merge_quantities({"A": 60}, {"A": 60}) == {"A": MAX_QUANTITY}


def test_merge_into_an_empty_cart_takes_the_guest_lines() -> None:
    assert merge_quantities({}, {"A": 1, "B": 2}) == {"A": 1, "B": 2}


def test_merge_that_would_exceed_100_lines_is_refused() -> None:
    target = {f"U{i}": 1 for i in range(60)}
    incoming = {f"G{i}": 1 for i in range(41)}
    with pytest.raises(LineLimitExceeded) as raised:
        merge_quantities(target, incoming)
    assert raised.value.lines == 101
    assert len(merge_quantities(target, {f"G{i}": 1 for i in range(40)})) == MAX_LINES


skus = st.sampled_from([f"SKU-{i}" for i in range(130)])
carts = st.dictionaries(skus, st.integers(1, MAX_QUANTITY), max_size=MAX_LINES)


@given(target=carts, incoming=carts)
def test_merge_keeps_every_sku_with_the_capped_sum_or_refuses(
    target: dict[str, int], incoming: dict[str, int]
) -> None:
    union = set(target) | set(incoming)
    if len(union) > MAX_LINES:
        with pytest.raises(LineLimitExceeded):
            merge_quantities(target, incoming)
        return
    merged = merge_quantities(target, incoming)
    assert set(merged) == union
    for sku, quantity in merged.items():
        assert quantity == min(target.get(sku, 0) + incoming.get(sku, 0), MAX_QUANTITY)
        assert 1 <= quantity <= MAX_QUANTITY
    assert list(merged)[: len(target)] == list(target)


# --- shipping ---------------------------------------------------------------


def test_standard_shipping_costs_5_and_is_free_from_a_50_subtotal() -> None:
    assert STANDARD.price_for(usd("49.99")) == usd("5.00")
    assert STANDARD.price_for(usd("50.00")).is_zero()
    assert STANDARD.estimated_days == "5-7"


def test_express_shipping_costs_15_whatever_the_subtotal() -> None:
    assert EXPRESS.price_for(usd("1000.00")) == usd("15.00")
    assert EXPRESS.estimated_days == "1-2"


def test_every_method_ships_while_the_country_is_unknown() -> None:
    assert [m.code for m in shipping_methods("USD")] == [r.code for r in SHIPPING_TABLE]


def test_country_restricted_methods_are_listed_only_for_their_countries() -> None:
    assert "overnight" in [m.code for m in shipping_methods("USD", country="us")]
    assert [m.code for m in shipping_methods("USD", country="DE")] == ["standard", "express"]


def test_choosing_a_method_that_does_not_ship_there_is_refused() -> None:
    with pytest.raises(ShippingNotAvailable):
        find_shipping_method("overnight", currency="USD", country="FR")
    assert find_shipping_method("overnight", currency="USD", country="US").code == "overnight"


def test_an_unknown_shipping_method_is_refused() -> None:
    with pytest.raises(ShippingMethodUnknown):
        find_shipping_method("teleport", currency="USD")


def test_shipping_prices_are_in_the_shop_currency() -> None:
    (standard, *_) = shipping_methods("EUR")
    assert standard.price == Money.of("5.00", "EUR")
    assert standard.free_from == Money.of("50.00", "EUR")


def test_a_shipping_method_with_an_impossible_estimate_is_refused() -> None:
    with pytest.raises(ValueError, match="delivery days"):
        ShippingMethod(code="x", name="X", price=usd("1.00"), min_days=3, max_days=2)


# --- tax --------------------------------------------------------------------


def test_tax_rate_comes_from_the_country_entry() -> None:
    assert tax_rate_for("US", DEFAULT_RATES) == Decimal("0.0725")
    assert tax_rate_for(" gb ", DEFAULT_RATES) == Decimal("0.20")


def test_tax_rate_falls_back_to_the_star_entry_then_zero() -> None:
    assert tax_rate_for("JP", {"*": Decimal("0.05")}) == Decimal("0.05")
    assert tax_rate_for("JP", {"US": Decimal("0.0725")}) == Decimal(0)


def test_tax_rates_parsed_from_settings_are_used_as_is() -> None:
    settings = Settings(_env_file=None, tax_rates='{"us": "0.1", "*": "0.02"}')  # type: ignore[call-arg]
    assert tax_rate_for("US", settings.tax_rates) == Decimal("0.1")
    assert tax_rate_for("NZ", settings.tax_rates) == Decimal("0.02")


@pytest.mark.parametrize("country", ["", "USA", "U1", "ü"])
def test_a_country_that_is_not_an_alpha2_code_is_refused(country: str) -> None:
    with pytest.raises(InvalidCountry):
        tax_rate_for(country, DEFAULT_RATES)


# --- pricing ----------------------------------------------------------------


def test_pricing_a_cart_with_coupon_shipping_and_tax() -> None:
    lines = [line("A", "19.99", 2), line("B", "5.00", 1)]
    totals = price_cart(
        lines,
        currency="USD",
        coupon=Coupon(code="TEN", percent_off=Decimal(10)),
        shipping=STANDARD,
        tax_rate=Decimal("0.0725"),
    )
    assert totals.line_totals == (usd("39.98"), usd("5.00"))
    assert totals.subtotal == usd("44.98")
    assert totals.discount == usd("4.50")  # 4.498
    assert totals.shipping == usd("5.00")
    assert totals.tax == usd("3.30")  # 0.0725 * 45.48 = 3.2973
    assert totals.total == usd("48.78")
    assert totals.tax_rate == Decimal("0.0725")
    assert totals.shipping_method == "standard"


def test_tax_applies_to_subtotal_minus_discount_plus_shipping() -> None:
    totals = price_cart(
        [line("A", "100.00", 1)],
        currency="USD",
        coupon=Coupon(code="OFF20", amount_off=usd("20.00")),
        shipping=EXPRESS,
        tax_rate=Decimal("0.20"),
    )
    assert totals.tax == usd("19.00")  # 0.20 * (100 - 20 + 15)
    assert totals.total == usd("114.00")


@pytest.mark.parametrize(
    ("price", "expected_tax"),
    [("0.25", "0.02"), ("0.35", "0.04"), ("0.45", "0.04"), ("0.55", "0.06")],
)
def test_tax_is_rounded_half_even(price: str, expected_tax: str) -> None:
    totals = price_cart([line("A", price, 1)], currency="USD", tax_rate=Decimal("0.1"))
    assert totals.tax == usd(expected_tax)


def test_discount_is_rounded_half_even() -> None:
    coupon = Coupon(code="HALF", percent_off=Decimal(50))
    assert price_cart([line("A", "0.05", 1)], currency="USD", coupon=coupon).discount == usd("0.02")
    assert price_cart([line("A", "0.07", 1)], currency="USD", coupon=coupon).discount == usd("0.04")


def test_rounding_uses_the_currency_minor_unit() -> None:
    totals = price_cart([line("A", "999", 1, "JPY")], currency="JPY", tax_rate=Decimal("0.1"))
    assert totals.tax == Money.of("100", "JPY")  # 99.9
    assert totals.total == Money.of("1099", "JPY")


def test_an_amount_off_larger_than_the_subtotal_takes_it_to_zero_not_below() -> None:
    totals = price_cart(
        [line("A", "3.00", 1)],
        currency="USD",
        coupon=Coupon(code="BIG", amount_off=usd("10.00")),
        shipping=STANDARD,
        tax_rate=Decimal("0.1"),
    )
    assert totals.discount == usd("3.00")
    assert totals.tax == usd("0.50")  # only shipping is left to tax
    assert totals.total == usd("5.50")


def test_a_coupon_below_its_minimum_gives_no_discount() -> None:
    coupon = Coupon(code="MIN", percent_off=Decimal(10), min_subtotal=usd("50.00"))
    assert price_cart([line("A", "49.99", 1)], currency="USD", coupon=coupon).discount.is_zero()
    assert price_cart([line("A", "50.00", 1)], currency="USD", coupon=coupon).discount == usd(
        "5.00"
    )


def test_free_shipping_threshold_looks_at_the_subtotal_before_discount() -> None:
    totals = price_cart(
        [line("A", "50.00", 1)],
        currency="USD",
        coupon=Coupon(code="TEN", percent_off=Decimal(10)),
        shipping=STANDARD,
    )
    assert totals.shipping.is_zero()


def test_an_empty_cart_costs_nothing_even_with_a_shipping_method() -> None:
    totals = price_cart([], currency="USD", shipping=EXPRESS, tax_rate=Decimal("0.2"))
    assert (totals.subtotal, totals.shipping, totals.tax, totals.total) == (Money.zero("USD"),) * 4
    assert totals.line_totals == ()


def test_without_a_known_country_tax_shows_as_zero() -> None:
    totals = price_cart([line("A", "10.00", 1)], currency="USD", shipping=EXPRESS)
    assert totals.tax.is_zero()
    assert totals.tax_rate is None
    assert totals.total == usd("25.00")


def test_lines_in_another_currency_are_refused() -> None:
    with pytest.raises(CurrencyMismatch):
        price_cart([line("A", "1.00", 1, "EUR")], currency="USD")


def test_a_tax_rate_outside_0_to_1_is_refused() -> None:
    with pytest.raises(ValueError, match="tax rate"):
        price_cart([line("A", "1.00", 1)], currency="USD", tax_rate=Decimal("1.5"))


class _Generous:
    """A discount rule that misbehaves, to prove the pricing function clamps it."""

    def __init__(self, amount: str) -> None:
        self.amount = amount

    def discount_for(self, subtotal: Money) -> Money:
        return Money(Decimal(self.amount), subtotal.currency)


@pytest.mark.parametrize(
    ("rule_amount", "expected"), [("-5.00", "0.00"), ("1000.00", "10.00"), ("1.005", "1.00")]
)
def test_whatever_a_discount_rule_says_discount_stays_within_0_and_subtotal(
    rule_amount: str, expected: str
) -> None:
    totals = price_cart([line("A", "10.00", 1)], currency="USD", coupon=_Generous(rule_amount))
    assert totals.discount == usd(expected)
    assert totals.total == totals.subtotal - totals.discount


# --- pricing properties -----------------------------------------------------

CURRENCIES = {"USD": 2, "JPY": 0, "KWD": 3}


@st.composite
def priced_carts(draw: st.DrawFn) -> dict[str, object]:
    currency = draw(st.sampled_from(sorted(CURRENCIES)))
    lines = [
        CartLine(
            sku=f"S{i}",
            name=f"S{i}",
            unit_price=Money.from_minor(draw(st.integers(0, 10_000_000)), currency),
            quantity=draw(st.integers(1, MAX_QUANTITY)),
        )
        for i in range(draw(st.integers(0, 12)))
    ]
    coupon = draw(
        st.one_of(
            st.none(),
            st.builds(
                lambda p: Coupon(code="P", percent_off=p),
                st.decimals(min_value="0.01", max_value="100", places=2),
            ),
            st.builds(
                lambda m: Coupon(code="A", amount_off=Money.from_minor(m, currency)),
                st.integers(1, 50_000_000),
            ),
        )
    )
    shipping = draw(st.one_of(st.none(), st.sampled_from(shipping_methods(currency))))
    rate = draw(st.one_of(st.none(), st.decimals(min_value=0, max_value="0.9999", places=4)))
    return {
        "lines": lines,
        "currency": currency,
        "coupon": coupon,
        "shipping": shipping,
        "rate": rate,
    }


def _minor(money: Money) -> int:
    assert money.is_exact()
    return money.to_minor()


@given(priced_carts())
def test_totals_are_never_negative_and_add_up_exactly(cart: dict[str, object]) -> None:
    lines = cart["lines"]
    assert isinstance(lines, list)
    currency = str(cart["currency"])
    totals = price_cart(
        lines,
        currency=currency,
        coupon=cart["coupon"],  # type: ignore[arg-type]
        shipping=cart["shipping"],  # type: ignore[arg-type]
        tax_rate=cart["rate"],  # type: ignore[arg-type]
    )
    amounts = [totals.subtotal, totals.discount, totals.shipping, totals.tax, totals.total]
    assert all(a.currency == currency and a.is_exact() and not a.is_negative() for a in amounts)
    assert totals.discount <= totals.subtotal
    assert _minor(totals.total) == (
        _minor(totals.subtotal)
        - _minor(totals.discount)
        + _minor(totals.shipping)
        + _minor(totals.tax)
    )
    assert _minor(totals.subtotal) == sum(_minor(t) for t in totals.line_totals)
    assert [_minor(t) for t in totals.line_totals] == [
        _minor(ln.unit_price) * ln.quantity for ln in lines
    ]


@given(priced_carts())
def test_tax_and_percent_discount_match_an_exact_half_even_oracle(
    cart: dict[str, object],
) -> None:
    lines = cart["lines"]
    assert isinstance(lines, list)
    coupon = cart["coupon"]
    rate = cart["rate"]
    totals = price_cart(
        lines,
        currency=str(cart["currency"]),
        coupon=coupon,  # type: ignore[arg-type]
        shipping=cart["shipping"],  # type: ignore[arg-type]
        tax_rate=rate,  # type: ignore[arg-type]
    )
    subtotal = _minor(totals.subtotal)
    # Python's round() on a Fraction is exact and rounds half to even.
    if isinstance(coupon, Coupon) and coupon.percent_off is not None:
        expected = round(Fraction(subtotal) * Fraction(coupon.percent_off) / 100)
        assert _minor(totals.discount) == min(expected, subtotal)
    taxable = subtotal - _minor(totals.discount) + _minor(totals.shipping)
    expected_tax = 0 if rate is None else round(Fraction(taxable) * Fraction(str(rate)))
    assert _minor(totals.tax) == expected_tax
