"""Fills: does an order fill against a quote, at what price, and its leg transactions.

Spec: api-walkthrough 6.1 "What happened" (fill at the snapped net mid, slippage worsens
it in the market maker's favour, `execution_price` is the mid the order had to reach,
per-leg transactions with `value = price x quantity`, both legs fill or none), 8.3
(debit stop triggers when mid <= stop_trigger, credit stop when mid >= stop_trigger,
and fills at the mid like a market order), Part 12 (live orders fill on ticks).
DESIGN.md "Fills":

With the user's slippage `s` (a multiple of 0.05) and the snapped net mid `m`:

| order        | fills when          | fill_price | execution_price |
|--------------|---------------------|------------|-----------------|
| debit limit  | m <= limit - s      | m + s      | limit - s       |
| credit limit | m >= limit + s      | m - s      | limit + s       |
| debit stop   | m <= trigger        | m + s      | trigger         |
| credit stop  | m >= trigger        | m - s      | trigger         |
| market       | always (one leg)    | ask to buy, bid to sell; no slippage | = fill_price |

Here every price is signed, debit positive (a credit of 1.50 is -1.50), and then the
whole table is one rule: a limit fills when `m <= L - s` at `m + s`, a stop when
`m <= T` at `m + s` -- which is why a credit order mirrors a debit order exactly. An
order resting exactly at the mid never fills while `s > 0`.

Decisions where the spec is silent:
- `execution_price` of a stop is its trigger (the mid it had to reach); of a market
  order, its fill price.
- Slippage never makes a one-sided structure pay the wrong way: an all-sell order's fill
  is capped at a zero credit, an all-buy order's at a zero debit (only a credit stop with
  a trigger below the slippage can reach that).
- The fill's unsigned `fill_price_effect` is `debit` for a positive net, `credit` for a
  negative one, and the order's own `price_effect` for exactly zero.

Leg prices. Each leg gets one transaction at a per-contract price (option price x 100)
on the $0.01 grid, and the signed values add up exactly to `fill_price x 100 x units`.
Every leg starts at its own mid; the remainder (the half-tick snap plus slippage, at most
a few dollars) goes to one leg whose ratio is 1 and whose price it raises, else to any
leg it keeps non-negative, else it is spread over several legs; a residue that no ratio
divides is solved exactly over the integers (`_split`). A single leg is simply the fill
price x 100.

`decide` is the one fill function. `fill_on_tick` (live: does it fill on this tick?) and
`first_fill` (replay: the first tick of a sequence at which it fills) are built on it.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Sequence
from decimal import ROUND_HALF_EVEN, Decimal
from math import gcd
from uuid import UUID

import msgspec

from odted.domain.chain import OptionQuote, Tick
from odted.domain.fees import FeeSchedule
from odted.domain.ids import fill_transaction_id
from odted.domain.money import HUNDRED, ZERO, dollars, price
from odted.domain.orders import Ticket, TicketLeg
from odted.domain.pricing import ComboQuote, quote_combo
from odted.domain.transactions import Transaction

__all__ = [
    "Fill",
    "decide",
    "is_triggered",
    "fill_on_tick",
    "first_fill",
    "projected_net",
    "split_leg_prices",
    "fill_transactions",
]

_TEN_THOUSAND = Decimal(10_000)


class Fill(msgspec.Struct, frozen=True, gc=False):
    """A fill decision: signed per-unit prices (debit positive) and the leg prices.

    `leg_prices[i]` is leg i's unsigned dollars per contract (option price x 100).
    """

    net: Decimal
    execution: Decimal
    mid: Decimal
    slippage: Decimal
    leg_prices: tuple[Decimal, ...]

    @property
    def fill_price(self) -> Decimal:
        """The unsigned fill price per unit, as the order object shows it."""
        return price(abs(self.net))

    @property
    def execution_price(self) -> Decimal:
        return price(abs(self.execution))

    def effect(self, requested: str) -> str:
        """`fill_price_effect`: the sign of the net, or `requested` when it is zero."""
        if self.net > 0:
            return "debit"
        if self.net < 0:
            return "credit"
        return requested


def is_triggered(ticket: Ticket, combo: ComboQuote) -> bool:
    """True when a stop's trigger is crossed by the mid (signed: `m <= trigger`)."""
    assert ticket.trigger is not None
    return combo.mid <= ticket.trigger


def decide(ticket: Ticket, combo: ComboQuote, slippage: Decimal) -> Fill | None:
    """The fill of `ticket` against `combo`, or None when it does not fill."""
    m = combo.mid
    kind = ticket.type
    if kind == "limit":
        assert ticket.limit is not None
        execution = ticket.limit - slippage
        if m > execution:
            return None
        net = m + slippage
    elif kind == "stop":
        assert ticket.trigger is not None
        if m > ticket.trigger:
            return None
        net = m + slippage
        execution = ticket.trigger
    else:  # market: one leg, the natural price, no slippage
        net = combo.natural
        execution = net
        slippage = ZERO
    if net < 0 and ticket.all_buys:
        net = ZERO
    elif net > 0 and ticket.all_sells:
        net = ZERO
    return Fill(
        net=net,
        execution=execution,
        mid=m,
        slippage=slippage,
        leg_prices=split_leg_prices(ticket.legs, combo.quotes, net),
    )


def fill_on_tick(ticket: Ticket, tick: Tick, slippage: Decimal) -> Fill | None:
    """Live matching: the fill of `ticket` on `tick`, or None (also when a quote is
    missing: an order never fills against a leg the chain does not quote)."""
    combo = quote_combo(ticket.legs, tick)
    if combo is None:
        return None
    return decide(ticket, combo, slippage)


def first_fill(
    ticket: Ticket, ticks: Iterable[Tick], slippage: Decimal
) -> tuple[Tick, Fill] | None:
    """Replay: the first tick of `ticks` at which `ticket` fills, and the fill."""
    for tick in ticks:
        fill = fill_on_tick(ticket, tick, slippage)
        if fill is not None:
            return tick, fill
    return None


def projected_net(ticket: Ticket, slippage: Decimal, combo: ComboQuote | None = None) -> Decimal:
    """The worst signed net a pending order can fill at: its limit, or a stop's trigger
    plus slippage (a market order's is its natural price in `combo`)."""
    if ticket.type == "limit":
        assert ticket.limit is not None
        return ticket.limit
    if ticket.type == "stop":
        assert ticket.trigger is not None
        net = ticket.trigger + slippage
        return min(net, ZERO) if ticket.all_sells else net
    assert combo is not None
    return combo.natural


def split_leg_prices(
    legs: Sequence[TicketLeg], quotes: Sequence[OptionQuote], net: Decimal
) -> tuple[Decimal, ...]:
    """Per-contract leg prices (dollars, unsigned, $0.01 grid) summing exactly to `net`.

    `sum(sign * ratio * price) == net * 100` per unit of the structure.
    """
    if len(legs) == 1:
        return (dollars(abs(net) * HUNDRED),)
    target = net * _TEN_THOUSAND  # cents per unit
    if target != target.to_integral_value():
        raise ValueError(f"net {net} is not on the cent grid")
    coef = [leg.sign * leg.ratio for leg in legs]
    base = [
        max(0, int(((q.bid + q.ask) * 5000).to_integral_value(rounding=ROUND_HALF_EVEN)))
        for q in quotes
    ]
    cents = _split(coef, base, int(target))
    return tuple(dollars(Decimal(c) / HUNDRED) for c in cents)


def _split(coef: list[int], base: list[int], target: int) -> list[int]:
    """Non-negative integers `p` near `base` with `sum(coef[i] * p[i]) == target`.

    The ratios (|coef|) have greatest common divisor 1, so an integer solution exists;
    non-negativity is restored along the null space of `coef` (raise one leg, and another
    of opposite sign by the matching amount; or shift between legs of the same sign).
    """
    p = list(base)
    rest = target - sum(c * x for c, x in zip(coef, p, strict=True))
    if not rest:
        return p
    n = len(p)
    order = sorted(range(n), key=lambda i: (abs(coef[i]) != 1, coef[i] * rest <= 0, -p[i], i))
    for j in order:
        if rest % coef[j] == 0 and p[j] + rest // coef[j] >= 0:
            p[j] += rest // coef[j]
            return p
    # No single leg can take it: spread it, each leg taking whole multiples of its
    # ratio as far as its price allows (lowering prices to zero at most).
    for j in order:
        c = coef[j]
        d = abs(rest) // abs(c) * (1 if rest * c > 0 else -1)
        if p[j] + d < 0:
            d = -p[j]
        p[j] += d
        rest -= c * d
        if not rest:
            return p
    # What remains is a residue no ratio divides: a Bezout solution, then repairs that
    # keep the sum.
    bez = _bezout([abs(c) for c in coef])
    for i in range(n):
        p[i] += (1 if coef[i] > 0 else -1) * bez[i] * rest
    for i in range(n):
        if p[i] >= 0:
            continue
        # Opposite signs: raise i by |coef[k]|*t and k by |coef[i]|*t.
        k = next((k for k in range(n) if coef[k] * coef[i] < 0), None)
        if k is not None:
            t = -(p[i] // abs(coef[k]))  # ceil(-p[i] / |coef[k]|)
            p[i] += abs(coef[k]) * t
            p[k] += abs(coef[i]) * t
            continue
        # Same signs only: raise i by |coef[k]|*t, lower k by |coef[i]|*t.
        for k in sorted(range(n), key=lambda k: -p[k]):
            if k == i:
                continue
            t = -(p[i] // abs(coef[k]))
            if p[k] - abs(coef[i]) * t >= 0:
                p[i] += abs(coef[k]) * t
                p[k] -= abs(coef[i]) * t
                break
        else:
            raise ValueError(f"cannot split {target} over {coef} without a negative price")
    if sum(c * x for c, x in zip(coef, p, strict=True)) != target or min(p) < 0:
        raise AssertionError("leg price split lost its balance")
    return p


def _bezout(values: list[int]) -> list[int]:
    """Integers `x` with `sum(x[i] * values[i]) == gcd(values)` (extended Euclid)."""
    coefs = [0] * len(values)
    g = 0
    for i, v in enumerate(values):
        if g == 0:
            g, coefs[i] = v, 1
            continue
        # g' = a*g + b*v
        a, b, g2 = _egcd(g, v)
        coefs = [c * a for c in coefs]
        coefs[i] = b
        g = g2
    assert g == gcd(*values)
    return coefs


def _egcd(a: int, b: int) -> tuple[int, int, int]:
    x0, x1, y0, y1 = 1, 0, 0, 1
    while b:
        q, a, b = a // b, b, a % b
        x0, x1 = x1, x0 - q * x1
        y0, y1 = y1, y0 - q * y1
    return x0, y0, a


def fill_transactions(
    ticket: Ticket,
    fill: Fill,
    *,
    order_id: UUID,
    ts: _dt.datetime,
    fees: FeeSchedule,
) -> tuple[Transaction, ...]:
    """One transaction per leg (spec 6.1): signed `value`, fees from the schedule."""
    out = []
    for leg, leg_price in zip(ticket.legs, fill.leg_prices, strict=True):
        qty = Decimal(leg.quantity)
        value = leg_price * qty
        out.append(
            Transaction(
                id=fill_transaction_id(order_id, leg.index),
                datetime=ts,
                instrument=leg.instrument.symbol,
                type=leg.action,
                quantity=qty,
                price=leg_price,
                value=dollars(value if leg.sign > 0 else -value),
                effect="debit" if leg.sign > 0 else "credit",
                fees=dollars(fees.leg_fee(leg.action, qty)),
                order_id=order_id,
            )
        )
    return tuple(out)
