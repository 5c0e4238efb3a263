from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

from hypothesis import given
from hypothesis import strategies as st

from congocart.core.money import SUPPORTED_CURRENCIES, Money, amount_text, exponent

BIGINT = st.integers(min_value=-(2**63), max_value=2**63 - 1)
# Every supported currency, plus ones with three decimals (BHD) and none (JPY).
CURRENCIES = st.sampled_from(sorted(SUPPORTED_CURRENCIES | {"BHD", "KWD", "ISK"}))


@given(minor=BIGINT, currency=CURRENCIES)
def test_amount_text_is_the_decimal_string_of_money_from_minor_units(
    minor: int, currency: str
) -> None:
    assert amount_text(minor, currency) == str(Money.from_minor(minor, currency).amount)


def test_amount_text_keeps_every_decimal_of_the_currency() -> None:
    assert amount_text(1999, "USD") == "19.99"
    assert amount_text(5, "USD") == "0.05"
    assert amount_text(-5, "EUR") == "-0.05"
    assert amount_text(1900, "JPY") == "1900"
    assert amount_text(1234, "BHD") == "1.234"


@given(minor=BIGINT, currency=CURRENCIES)
def test_money_from_minor_units_is_already_at_the_minor_unit(minor: int, currency: str) -> None:
    money = Money.from_minor(minor, currency)
    # The very Decimal rounding would give: same digits, same exponent.
    assert money.amount.as_tuple() == money.quantize().amount.as_tuple()
    assert money.to_minor() == minor


@given(
    amount=st.decimals(allow_nan=False, allow_infinity=False, min_value=-(10**9), max_value=10**9),
    currency=CURRENCIES,
)
def test_quantize_rounds_half_even_to_the_currency_minor_unit(
    amount: Decimal, currency: str
) -> None:
    places = exponent(currency)
    expected = amount.quantize(Decimal(10) ** -places, rounding=ROUND_HALF_EVEN)
    assert Money(amount, currency).quantize().amount.as_tuple() == expected.as_tuple()
