"""Buying power: the maintenance requirement of a book of options, and an order's effect.

Spec: api-walkthrough 6.0/6.1 (the `buying-power-effect` block and its field names),
6.2 ("Credit verticals require margin equal to the spread width x 100; iron condors use
the max of the two sides; naked shorts use strike x 0.20 x qty x 100"; a debit
vertical's maintenance stays 0), 8.1 (a pending order's block is the projected impact
as if filled: margin fields cover maintenance only, buying-power fields fold in the
projected debit/credit and estimated fees; buying power is reserved at placement and
released when the order is deleted), Part 4 and "Common pitfalls" (naked 5950 x 1 ->
$119,000). DESIGN.md "Buying power".

Rules
-----
Buying power is cash: `available = cash - maintenance - reserved`, where `reserved` is
the sum of the reservations of pending orders. Long options and debit spreads need no
maintenance (their cost already left the cash). An order's effect on buying power is

    change = (maintenance after - maintenance before) + net debit - net credit + fees

(positive: buying power goes down). Examples from the spec: a debit call vertical at
1.05 with 3.44 fees changes buying power by 108.44; a credit put vertical 20 wide at
1.50 needs 2,000 maintenance and changes it by 2000 - 150 + 3.44 = 1853.44.

The maintenance requirement of a book is computed per expiry (a long of one expiry never
covers a short of another), from the positions' net quantity per instrument:

1. Per right, the short quantity not matched by long quantity of the same right is
   *uncovered* and is margined as naked: strike x 0.20 x 100 per contract.
2. Everything else is *covered* and needs its largest possible loss at expiration,
   over every underlying price, calls and puts together -- which is the width x 100 of a
   credit vertical, the larger side of an iron condor, 0 for a debit spread, and the
   honest worst case of any butterfly, broken wing or box.
3. Which short contracts count as uncovered (in a ratio spread, say long 1 x short 2)
   is chosen to make the total largest: of all the ways to pick them, odted charges the
   most expensive. This is conservative on purpose (a broker pairs legs to charge the
   least); it never under-margins a ratio or mixed structure. Computing it exactly is
   cheap because max over choices and max over prices commute: at each price the best
   choice is the contracts with the largest `naked charge - their covered loss`.

Pending orders reserve their projected effect at placement (the limit price, or for a
stop the trigger plus slippage -- the worst the fill can be), computed against the
filled positions; an order that would free buying power reserves nothing. A fill
re-checks against the book as it is then.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from decimal import Decimal

import msgspec

from odted.domain.money import ZERO, dollars
from odted.domain.payoff import extremes

__all__ = [
    "MarginHolding",
    "NAKED_RATE",
    "maintenance_requirement",
    "BuyingPowerEffect",
    "buying_power_effect",
    "debit_credit_label",
    "balance_label",
]

MarginHolding = tuple[date, str, int, int]
"""`(expiry, right, strike_milli, signed_quantity)` of one instrument in a book."""

NAKED_RATE = Decimal("0.20")
"""The naked-short requirement as a fraction of strike x 100 per contract."""

# Internally amounts are integers in fiftieths of a dollar: a payoff of one milli-point
# on one contract is $0.10 = 5/50, and the naked charge of a contract, strike x 20
# dollars, is strike_milli / 50 dollars = strike_milli fiftieths. Everything is exact.


def maintenance_requirement(holdings: Iterable[MarginHolding]) -> Decimal:
    """The maintenance requirement, in dollars, of net holdings (see "Rules")."""
    by_expiry: dict[date, tuple[dict[int, int], dict[int, int]]] = {}
    for expiry, right, strike, qty in holdings:
        if not qty:
            continue
        group = by_expiry.get(expiry)
        if group is None:
            group = by_expiry[expiry] = ({}, {})
        side = group[0] if right == "C" else group[1]
        side[strike] = side.get(strike, 0) + qty
    total = 0
    for calls, puts in by_expiry.values():
        total += _requirement(calls, puts)  # zero quantities weigh nothing anywhere
    if not total:
        return ZERO
    whole, rest = divmod(total, 50)
    if not rest:
        return Decimal(whole)
    return Decimal(total * 2).scaleb(-2)  # a fiftieth of a dollar is two cents


def _requirement(calls: dict[int, int], puts: dict[int, int]) -> int:
    """One expiry's requirement in fiftieths of a dollar."""
    net_calls = sum(calls.values())
    net_puts = sum(puts.values())
    uncovered_calls = -net_calls if net_calls < 0 else 0
    uncovered_puts = -net_puts if net_puts < 0 else 0
    if not uncovered_calls and not uncovered_puts:
        worst = _max_loss(calls, puts)
        return 5 * worst if worst > 0 else 0
    return _requirement_with_naked(calls, puts, uncovered_calls, uncovered_puts)


def _max_loss(calls: dict[int, int], puts: dict[int, int]) -> int:
    """The largest loss (negated payoff) at expiration over S in {0} + strikes, in milli."""
    return -extremes(calls, puts)[0]


def _top(values: list[tuple[int, int]], count: int) -> int:
    """The sum of the `count` largest values of a multiset of `(value, multiplicity)`."""
    total = 0
    for value, n in sorted(values, reverse=True):
        take = n if n < count else count
        total += value * take
        count -= take
        if not count:
            break
    return total


def _requirement_with_naked(
    calls: dict[int, int], puts: dict[int, int], uncovered_calls: int, uncovered_puts: int
) -> int:
    """Naked charge plus covered worst loss, maximised over the choice of naked shorts."""
    short_calls = [(k, -q) for k, q in calls.items() if q < 0]
    short_puts = [(k, -q) for k, q in puts.items() if q < 0]
    # Choosing the naked contracts with the covered part's loss floored at zero: the
    # best is the highest strikes, naked, with nothing owed on the rest.
    best = _top(short_calls, uncovered_calls) + _top(short_puts, uncovered_puts)
    for s in (0, *calls, *puts):
        loss = 0
        for k, q in calls.items():
            if s > k:
                loss -= q * (s - k)
        for k, q in puts.items():
            if k > s:
                loss -= q * (k - s)
        gain = 0
        if uncovered_calls:
            gain += _top(
                [(k - 5 * (s - k if s > k else 0), n) for k, n in short_calls], uncovered_calls
            )
        if uncovered_puts:
            gain += _top(
                [(k - 5 * (k - s if k > s else 0), n) for k, n in short_puts], uncovered_puts
            )
        total = 5 * loss + gain
        if total > best:
            best = total
    return best


def debit_credit_label(amount: Decimal) -> str:
    """`Debit` for a positive change (buying power goes down), `Credit` negative, `None` 0."""
    if amount > 0:
        return "Debit"
    if amount < 0:
        return "Credit"
    return "None"


def balance_label(amount: Decimal) -> str:
    """`Credit` for a positive balance, `Debit` for a negative one, `None` for zero."""
    if amount > 0:
        return "Credit"
    if amount < 0:
        return "Debit"
    return "None"


class BuyingPowerEffect(msgspec.Struct, frozen=True, rename="kebab"):
    """The `buying-power-effect` block: unsigned amounts, each with its effect."""

    change_in_margin_requirement: Decimal
    change_in_margin_requirement_effect: str
    change_in_buying_power: Decimal
    change_in_buying_power_effect: str
    current_buying_power: Decimal
    current_buying_power_effect: str
    new_buying_power: Decimal
    new_buying_power_effect: str
    value: Decimal
    effect: str

    @property
    def change(self) -> Decimal:
        """The signed change in buying power (positive: it goes down)."""
        if self.change_in_buying_power_effect == "Credit":
            return -self.change_in_buying_power
        return self.change_in_buying_power

    @property
    def new(self) -> Decimal:
        """The signed buying power after the order."""
        if self.new_buying_power_effect == "Debit":
            return -self.new_buying_power
        return self.new_buying_power


def buying_power_effect(
    *, current: Decimal, margin_change: Decimal, change: Decimal
) -> BuyingPowerEffect:
    """The block for an order that changes maintenance by `margin_change` and buying
    power by `change` (both signed, positive = a debit), from `current` buying power."""
    new = current - change
    change_value = dollars(abs(change))
    change_label = debit_credit_label(change)
    return BuyingPowerEffect(
        change_in_margin_requirement=dollars(abs(margin_change)),
        change_in_margin_requirement_effect=debit_credit_label(margin_change),
        change_in_buying_power=change_value,
        change_in_buying_power_effect=change_label,
        current_buying_power=dollars(abs(current)),
        current_buying_power_effect=balance_label(current),
        new_buying_power=dollars(abs(new)),
        new_buying_power_effect=balance_label(new),
        value=change_value,
        effect=change_label,
    )
