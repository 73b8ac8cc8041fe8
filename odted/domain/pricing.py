"""Combo pricing: the natural sides and the snapped net mid of an order's legs.

Spec: api-walkthrough 6.1 "What happened" (the combo's net execution price is the net
mid, snapped to the SPX tick, rounded one tick toward the market maker when the net
spread is an odd number of ticks; a single-leg market order fills at the natural price,
ask for a buy, bid for a sell), 8.3 (the reference price of an option or combo is the
mid). DESIGN.md "Fills".

For legs with sign `+1` (buy) / `-1` (sell) and ratio `r` (quantity over the order's
units), per unit of the structure:

    ask_side = sum(r * ask for buys) - sum(r * bid for sells)   # what buying it costs
    bid_side = sum(r * bid for buys) - sum(r * ask for sells)   # what selling it pays
    mid      = snap_mid((ask_side + bid_side) / 2)

All three are signed, debit positive: a credit put vertical has negative sides. Snapping
(`ticks.snap_mid`) rounds ties up, toward the market maker, for debits and credits
alike (up means a bigger debit or a smaller credit).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from decimal import Decimal

import msgspec

from odted.domain.chain import OptionQuote, Tick
from odted.domain.orders import TicketLeg
from odted.domain.ticks import snap_mid

__all__ = ["ComboQuote", "leg_quotes", "quote_combo", "combo_from_quotes"]

_HALF = Decimal("0.5")
_ZERO = Decimal(0)


class ComboQuote(msgspec.Struct, frozen=True, gc=False):
    """A structure's signed natural sides and snapped mid, with the leg quotes used."""

    ask_side: Decimal
    bid_side: Decimal
    mid: Decimal
    quotes: tuple[OptionQuote, ...]

    @property
    def raw_mid(self) -> Decimal:
        return (self.ask_side + self.bid_side) * _HALF

    @property
    def natural(self) -> Decimal:
        """The natural price of taking the structure as its legs say: the ask side.

        For a single buy that is the ask; for a single sell it is minus the bid (a
        credit of the bid), since the signed structure is always the one bought."""
        return self.ask_side


def leg_quotes(legs: Sequence[TicketLeg], tick: Tick) -> tuple[OptionQuote, ...] | int:
    """The quote of every leg in `tick`, or the index of the first leg without one."""
    out = []
    strikes = tick.strikes
    n = len(strikes)
    for leg in legs:
        k = leg.strike
        i = n if k is None else bisect_left(strikes, k)
        if i == n or strikes[i] != k:
            return leg.index
        at = tick.chain[i]
        out.append(at.call if leg.instrument.right == "C" else at.put)
    return tuple(out)


def combo_from_quotes(legs: Sequence[TicketLeg], quotes: tuple[OptionQuote, ...]) -> ComboQuote:
    """The combo quote of `legs` from their leg quotes (same order)."""
    ask_side = _ZERO
    bid_side = _ZERO
    for leg, q in zip(legs, quotes, strict=True):
        r = leg.ratio
        if leg.sign > 0:
            if r == 1:
                ask_side += q.ask
                bid_side += q.bid
            else:
                ask_side += q.ask * r
                bid_side += q.bid * r
        elif r == 1:
            ask_side -= q.bid
            bid_side -= q.ask
        else:
            ask_side -= q.bid * r
            bid_side -= q.ask * r
    mid = snap_mid((ask_side + bid_side) * _HALF, len(legs))
    return ComboQuote(ask_side=ask_side, bid_side=bid_side, mid=mid, quotes=quotes)


def quote_combo(legs: Sequence[TicketLeg], tick: Tick) -> ComboQuote | None:
    """The combo quote of `legs` in `tick`, or None when a leg has no quote.

    The live matcher calls this for every pending order on every tick (behind a per-tick
    memo): the strike look-ups are inlined rather than going through `leg_quotes`."""
    strikes = tick.strikes
    chain = tick.chain
    n = len(strikes)
    quotes = []
    for leg in legs:
        k = leg.strike
        i = n if k is None else bisect_left(strikes, k)
        if i == n or strikes[i] != k:
            return None
        at = chain[i]
        quotes.append(at.call if leg.instrument.right == "C" else at.put)
    return combo_from_quotes(legs, tuple(quotes))
