"""Payoff at expiration of a set of options on one underlying and one expiry.

Spec: api-walkthrough 6.1 validation step 4 (a limit price cannot exceed the
structure's maximum profit -- a $5-wide vertical caps at $5.00; skipped when the maximum
is unbounded) and the Buying power rules of 6.2/8.1 (credit verticals margin the width,
iron condors the larger side). Both reduce to the same question: what is the largest
and the smallest the structure can be worth at expiration?

A holding is `(right, strike_milli, quantity)`: `right` "C" or "P", the strike times
1000 (exact integers, as the OSI symbol encodes it) and a signed quantity (long
positive). The payoff at underlying price S, in milli-points x contracts, is
`sum(q * max(S - K, 0))` over calls plus `sum(q * max(K - S, 0))` over puts. It is
piecewise linear with kinks at the strikes, constant or linear beyond them, so its
extremes over S >= 0 lie at S = 0, at a strike, or at infinity -- and it is unbounded at
infinity exactly when the net call quantity is not zero.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

__all__ = ["Holding", "payoff_at", "payoff_range", "net_by_strike"]

Holding = tuple[str, int, int]
"""`(right, strike_milli, signed_quantity)`."""


def net_by_strike(holdings: Iterable[Holding]) -> tuple[dict[int, int], dict[int, int]]:
    """Net call and put quantities per strike, zeros dropped."""
    calls: dict[int, int] = {}
    puts: dict[int, int] = {}
    for right, strike, qty in holdings:
        side = calls if right == "C" else puts
        side[strike] = side.get(strike, 0) + qty
    return (
        {k: q for k, q in calls.items() if q},
        {k: q for k, q in puts.items() if q},
    )


def payoff_at(holdings: Sequence[Holding], s_milli: int) -> int:
    """The payoff at underlying price `s_milli` (points x 1000), in milli-points."""
    total = 0
    for right, strike, qty in holdings:
        if right == "C":
            if s_milli > strike:
                total += qty * (s_milli - strike)
        elif strike > s_milli:
            total += qty * (strike - s_milli)
    return total


def extremes(calls: dict[int, int], puts: dict[int, int]) -> tuple[int, int]:
    """The lowest and highest payoff over S in {0} and every strike, in milli-points.

    One sweep over the sorted strikes: the call payoff at S is `S*A - B`, with A and B
    the sums of q and q*K over calls struck at or below S; the put payoff is `C - S*D`,
    with C and D the sums over puts struck above S. Beyond the last strike the payoff
    moves with slope `sum(call q)`, which the caller judges.
    """
    a = b = 0
    c = 0
    d = 0
    for k, qty in puts.items():
        c += qty * k
        d += qty
    lowest = highest = c  # at S = 0 only puts pay
    for s in sorted({*calls, *puts}):
        qc = calls.get(s)
        if qc:
            a += qc
            b += qc * s
        qp = puts.get(s)
        if qp:
            c -= qp * s
            d -= qp
        value = s * a - b + c - s * d
        if value < lowest:
            lowest = value
        elif value > highest:
            highest = value
    return lowest, highest


def payoff_range(holdings: Sequence[Holding]) -> tuple[int | None, int | None]:
    """`(lowest, highest)` payoff over every S >= 0; None where it is unbounded."""
    calls, puts = net_by_strike(holdings)
    lowest: int | None
    highest: int | None
    lowest, highest = extremes(calls, puts)
    net_calls = sum(calls.values())
    if net_calls > 0:
        highest = None
    elif net_calls < 0:
        lowest = None
    return lowest, highest
