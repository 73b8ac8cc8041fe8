"""One second of SPX market data: the underlying, VIX, and the 0DTE option chain.

Spec: api-walkthrough Part 3.2 (snapshot: `call_<strike>` / `put_<strike>` with `bid`,
`ask` and unsigned `delta`), Part 11 (`live_option_chain`: per strike, `call` and `put`
with the same three fields; `live_aggregate_data`), DESIGN.md "Feeds".

A `Tick` is immutable and shared by every actor that sees it, so everything per tick is
computed once by whoever builds it. Prices are `Decimal` (exact, on the $0.05 grid);
deltas are unsigned floats in 0..1 (a Greek, not money).
"""

from __future__ import annotations

from bisect import bisect_left
from datetime import datetime
from decimal import Decimal

import msgspec

__all__ = ["OptionQuote", "StrikeQuotes", "Tick", "Right"]


class Right:
    """The side of an option: `C` (call) or `P` (put), as in the OSI symbol."""

    CALL = "C"
    PUT = "P"


class OptionQuote(msgspec.Struct, frozen=True, gc=False):
    """Best bid and ask of one option, and its unsigned delta (0..1)."""

    bid: Decimal
    ask: Decimal
    delta: float

    @property
    def mid(self) -> Decimal:
        """The raw midpoint (not snapped to a tick)."""
        return (self.bid + self.ask) / 2


class StrikeQuotes(msgspec.Struct, frozen=True, gc=False):
    """The call and the put at one strike; the `live_option_chain` element shape."""

    strike: int
    call: OptionQuote
    put: OptionQuote


class Tick(msgspec.Struct, frozen=True):
    """One second of the market.

    `seq` increases by one per tick within a feed session and orders ticks: a consumer
    never accepts a tick whose `seq` is not greater than the last it saw. `ts` is the
    UTC second the tick describes. `chain` is sorted by strike, strikes unique.
    `closing` marks the tick at the session close (16:00 ET, or the early close).
    """

    seq: int
    ts: datetime
    spx: Decimal
    vix: Decimal
    spx_expected_move: Decimal
    chain: tuple[StrikeQuotes, ...]
    strikes: tuple[int, ...]
    closing: bool = False

    @classmethod
    def build(
        cls,
        seq: int,
        ts: datetime,
        spx: Decimal,
        vix: Decimal,
        spx_expected_move: Decimal,
        chain: tuple[StrikeQuotes, ...] | list[StrikeQuotes],
        closing: bool = False,
    ) -> Tick:
        """Build a tick, sorting the chain and deriving the strike index once."""
        ordered = tuple(sorted(chain, key=lambda s: s.strike))
        return cls(
            seq=seq,
            ts=ts,
            spx=spx,
            vix=vix,
            spx_expected_move=spx_expected_move,
            chain=ordered,
            strikes=tuple(s.strike for s in ordered),
            closing=closing,
        )

    def at(self, strike: int) -> StrikeQuotes | None:
        """The quotes at `strike`, or None when the chain has no such strike."""
        i = bisect_left(self.strikes, strike)
        if i < len(self.strikes) and self.strikes[i] == strike:
            return self.chain[i]
        return None

    def quote(self, strike: int, right: str) -> OptionQuote | None:
        """The quote of the call (`"C"`) or put (`"P"`) at `strike`, or None."""
        s = self.at(strike)
        if s is None:
            return None
        return s.call if right == "C" else s.put
