"""Decimal money: the canonical forms odted puts on the wire.

Spec: api-walkthrough "Conventions" (monetary fields are JSON strings such as
`"500000"`, `"1.45"`), Parts 4, 6 and 8 (the strings the examples show: `"430"`,
`"-325"`, `"3.44"`, `"99891.56"`, `"10.45"`, `"4.35"`). DESIGN.md "Money is
`decimal.Decimal` end to end".

msgspec encodes a `Decimal` with `str()`, so the value itself decides the string. Two
canonical forms keep the wire stable whatever arithmetic produced a number:

- `dollars(x)`: an amount of money. Whole dollars print without a fraction (`"430"`,
  `"100000"`, `"0"`); otherwise at least two places (`"3.44"`, `"1.70"`, `"0.0008"`).
- `price(x)`: an option price per share. Always at least two places (`"10.45"`,
  `"0.05"`, `"4.325"`).

Neither ever prints an exponent or a negative zero.
"""

from __future__ import annotations

from decimal import Decimal

__all__ = ["ZERO", "ONE", "HUNDRED", "CENT", "dollars", "price", "is_whole"]

ZERO = Decimal(0)
ONE = Decimal(1)
HUNDRED = Decimal(100)
CENT = Decimal("0.01")


def is_whole(x: Decimal) -> bool:
    """True when `x` is a finite whole number (`1`, `2.0`, `1E+1`)."""
    return x.is_finite() and x == x.to_integral_value()


def dollars(x: Decimal) -> Decimal:
    """`x` in the canonical form of a money amount (see the module docstring)."""
    if not x:
        return ZERO
    whole = x.quantize(ONE)
    if whole == x:
        return whole
    cents = x.quantize(CENT)
    if cents == x:
        return cents
    return x.normalize()


def price(x: Decimal) -> Decimal:
    """`x` in the canonical form of a per-share option price (two places or more)."""
    cents = x.quantize(CENT)
    if cents == x:
        return cents if x else Decimal("0.00")
    return x.normalize()
