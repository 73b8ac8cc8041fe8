"""SPX option price ticks: which prices an order may carry, and snapping to the grid.

Spec: api-walkthrough "Reference: SPX option price ticks" and "Common pitfalls":

| order shape                              | tick  |
|------------------------------------------|-------|
| single-leg SPX option, net price <= 3.00 | 0.05  |
| single-leg SPX option, net price >  3.00 | 0.10  |
| multi-leg SPX option structure           | 0.05  |

So `3.05` is refused for a single leg (the dime tick applies above $3.00; the next valid
price after 3.00 is 3.10) and `3.10` is accepted. (Validation order step 3 writes the
boundary as "< $3 / >= $3"; the two readings agree on every price, because 3.00 is on
both grids.) The limit `price` and the `stop_trigger` must already be on the tick.

Snapping (DESIGN.md "Fills") rounds to the nearest tick; a value exactly between two
ticks -- the mid of a spread that is an odd number of ticks wide -- goes one tick toward
the market maker. Prices here are signed with debits positive, and the market maker
always prefers the higher signed price (a bigger debit, or a smaller credit), so ties
round up: `snap_mid(Decimal("1.025"), 2)` is 1.05, `snap_mid(Decimal("-1.025"), 2)` is
-1.00 (a credit of 1.00).
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

__all__ = [
    "NICKEL",
    "DIME",
    "DIME_ABOVE",
    "tick_for",
    "is_on_tick",
    "snap_mid",
    "floor_to_tick",
    "ceil_to_tick",
]

NICKEL = Decimal("0.05")
DIME = Decimal("0.10")
DIME_ABOVE = Decimal("3.00")
"""Single-leg prices strictly above this use the dime tick."""

_HALF = Decimal("0.5")
_ONE = Decimal(1)


_PER_NICKEL = Decimal(20)
_PER_DIME = Decimal(10)


def tick_for(price: Decimal, legs: int) -> Decimal:
    """The tick of an order with `legs` legs at (unsigned or signed) net `price`."""
    if legs > 1 or abs(price) <= DIME_ABOVE:
        return NICKEL
    return DIME


def is_on_tick(price: Decimal, legs: int) -> bool:
    """True when `price` is a whole number of its tick (`3.05` single-leg is not)."""
    return price % tick_for(price, legs) == 0


def floor_to_tick(price: Decimal, tick: Decimal) -> Decimal:
    """The largest multiple of `tick` not above `price`."""
    return (price / tick).to_integral_value(rounding=ROUND_FLOOR) * tick


def ceil_to_tick(price: Decimal, tick: Decimal) -> Decimal:
    """The smallest multiple of `tick` not below `price`."""
    return (price / tick).to_integral_value(rounding=ROUND_CEILING) * tick


def snap_mid(mid: Decimal, legs: int) -> Decimal:
    """A signed net mid snapped to its order's tick, ties toward the market maker (up).

    The tick of a single leg is decided by the raw mid's size: 3.02 is above 3.00, so it
    snaps on the dime grid, to 3.00.
    """
    if legs > 1 or abs(mid) <= DIME_ABOVE:  # tick_for, inlined: this runs per order per tick
        tick, per = NICKEL, _PER_NICKEL
    else:
        tick, per = DIME, _PER_DIME
    # x / tick == x * per exactly (per is the tick's exact inverse), and cheaper.
    return (mid * per + _HALF).to_integral_value(rounding=ROUND_FLOOR) * tick
