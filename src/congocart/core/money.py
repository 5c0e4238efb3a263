"""Money: `Decimal` amounts with a currency; integer minor units in storage.

Rounding is half-even to the currency's minor unit, and happens only in
`_rounded` (behind `Money.quantize`, `Money.of` and `to_minor`) — never
anywhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

# ISO 4217 minor-unit exponents for the currencies that are not 2.
_EXPONENTS = {"JPY": 0, "KRW": 0, "VND": 0, "CLP": 0, "ISK": 0, "BHD": 3, "KWD": 3, "JOD": 3}
SUPPORTED_CURRENCIES = frozenset(
    {"USD", "EUR", "GBP", "CAD", "AUD", "CHF", "SEK", "NOK", "DKK", "PLN", "JPY", "KRW", "NZD"}
)


def exponent(currency: str) -> int:
    return _EXPONENTS.get(currency, 2)


# The minor unit of each exponent, as `quantize` steps to it (computed once:
# every price, line and total of a request is quantized).
_STEPS = {places: Decimal(1).scaleb(-places) for places in {2, *_EXPONENTS.values()}}
# Minor-unit amounts below this many units become Decimals exactly (far inside
# the default context's 28 digits), so `from_minor` needs no rounding step.
_EXACT_MINOR = 10**18


def amount_text(minor: int, currency: str) -> str:
    """The decimal string of `minor` units: `amount_text(1999, "USD") == "19.99"`.

    Exactly `str(Money.from_minor(minor, currency).amount)` (no rounding is
    involved), without Decimal arithmetic: JSON read models format thousands
    of prices a second with it.
    """
    places = _EXPONENTS.get(currency, 2)
    if places == 0:
        return str(minor)
    units, cents = divmod(abs(minor), 10**places)
    return f"{'-' if minor < 0 else ''}{units}.{cents:0{places}d}"


def _rounded(amount: Decimal, places: int) -> Decimal:
    """The one rounding: half-even to `places` decimal places."""
    return amount.quantize(_STEPS[places], rounding=ROUND_HALF_EVEN)


class CurrencyMismatch(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Money:
    amount: Decimal
    currency: str

    @classmethod
    def of(cls, amount: Decimal | int | str, currency: str) -> Money:
        """Rounded (half-even) to the currency's minor unit."""
        try:
            value = Decimal(amount)
        except InvalidOperation as exc:
            raise ValueError(f"not a decimal amount: {amount!r}") from exc
        return cls(_rounded(value, exponent(currency)), currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls.from_minor(0, currency)

    @classmethod
    def from_minor(cls, minor: int, currency: str) -> Money:
        amount = Decimal(minor).scaleb(-exponent(currency))
        if -_EXACT_MINOR < minor < _EXACT_MINOR:
            return cls(amount, currency)  # already at the minor unit
        return cls(_rounded(amount, exponent(currency)), currency)

    def to_minor(self) -> int:
        places = exponent(self.currency)
        return int(_rounded(self.amount, places).scaleb(places))

    def quantize(self) -> Money:
        return Money(_rounded(self.amount, exponent(self.currency)), self.currency)

    def is_exact(self) -> bool:
        """True when the amount needs no rounding to the currency's minor unit."""
        return _rounded(self.amount, exponent(self.currency)) == self.amount

    def _same(self, other: Money) -> None:
        if other.currency != self.currency:
            raise CurrencyMismatch(f"{self.currency} and {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def __mul__(self, factor: int | Decimal) -> Money:
        return Money(self.amount * factor, self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount < other.amount

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.amount <= other.amount

    def min(self, other: Money) -> Money:
        return self if self <= other else other

    def is_zero(self) -> bool:
        return self.amount == 0

    def is_negative(self) -> bool:
        return self.amount < 0

    def __str__(self) -> str:
        return f"{_rounded(self.amount, exponent(self.currency))} {self.currency}"
