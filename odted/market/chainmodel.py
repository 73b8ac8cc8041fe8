"""The synthetic option chain's pricing model, vectorised with numpy.

Black–Scholes with no rate and no dividend (so put–call parity is exact in the
theoretical prices), an implied-volatility smile with a put skew, quotes whose spread
widens with price, snapped outward to the SPX tick grid ($0.05 up to $3.00, $0.10
above). Everything works on arrays shaped (ticks, strikes) so a block of seconds is
priced in one pass; prices come out as integer counts of $0.05 ("nickels"), which the
caller turns into shared `Decimal`s by table look-up.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

__all__ = [
    "NICKEL_TICK_LIMIT",
    "TRADING_SECONDS_PER_YEAR",
    "Quotes",
    "nickel_decimals",
    "norm_cdf",
    "price_chain",
    "snap_ask",
    "snap_bid",
]

Array = npt.NDArray[np.float64]

TRADING_SECONDS_PER_YEAR = 252 * 23_400
"""Volatility is annualised over trading time: a regular session is 1/252 of a year."""

NICKEL_TICK_LIMIT = 60
"""$3.00 in nickels: prices up to it move in $0.05, above it in $0.10 (two nickels)."""

# The smile, in terms of x = ln(K/S) in daily standard deviations (ATM vol / sqrt(252)):
# vol(K) = atm * (1 - SKEW*x + SMILE*x^2), x clipped to +-X_CLIP so the wings flatten
# out (and d1 stays monotone in the strike). At x = -3 puts trade ~1.33x ATM vol, at
# x = +3 calls ~0.85x.
SKEW = 0.08
SMILE = 0.01
X_CLIP = 6.0

# Quoted spread = SPREAD_MIN + SPREAD_SLOPE * theoretical price, capped at SPREAD_MAX,
# then each side rounded outward to the tick grid (which widens it further, and makes
# cheap wings wide relative to their price: a 0.12 option quotes 0.05 x 0.15).
SPREAD_MIN = 0.05
SPREAD_SLOPE = 0.02
SPREAD_MAX = 5.0

# Snapping tolerance: prices computed in floating point are nudged by this many nickels
# before floor/ceil so that 0.15 / 0.05 = 2.9999999999999996 snaps to 3 nickels.
_EPS = 1e-7

# Numerical Recipes `erfcc`: fractional error below 1.2e-7 everywhere, including the
# tails (where absolute-error approximations of erf would lose the cheap wings).
_ERFC = (
    -1.26551223,
    1.00002368,
    0.37409196,
    0.09678418,
    -0.18628806,
    0.27886807,
    -1.13520398,
    1.48851587,
    -0.82215223,
    0.17087277,
)


def _erfc(x: Array) -> Array:
    z = np.abs(x)
    t = 1.0 / (1.0 + 0.5 * z)
    poly = _ERFC[9]
    for c in _ERFC[8::-1]:
        poly = c + t * poly
    r = t * np.exp(-z * z + poly)
    return np.where(x >= 0.0, r, 2.0 - r)


def norm_cdf(x: Array) -> Array:
    """The standard normal CDF, elementwise."""
    return 0.5 * _erfc(-x / math.sqrt(2.0))


class Quotes(NamedTuple):
    """A priced chain block: nickels for bids and asks, unsigned deltas (3 decimals)."""

    call_bid: npt.NDArray[np.int64]
    call_ask: npt.NDArray[np.int64]
    call_delta: Array
    put_bid: npt.NDArray[np.int64]
    put_ask: npt.NDArray[np.int64]
    put_delta: Array


def price_chain(spx: Array, atm_vol: Array, years_left: Array, strikes: Array) -> Quotes:
    """Quote every strike at every tick of a block.

    `spx`, `atm_vol` (annualised, 0.158 for VIX 15.8) and `years_left` (trading years
    to the close, > 0) are shaped (ticks,); `strikes` (strikes,), ascending.
    """
    s = spx[:, None]
    k = strikes[None, :]
    atm = atm_vol[:, None]
    ln_sk = np.log(s / k)
    x = np.clip(-ln_sk / (atm / math.sqrt(252.0)), -X_CLIP, X_CLIP)
    vol = atm * (1.0 - SKEW * x + SMILE * x * x)
    sd = vol * np.sqrt(years_left[:, None])
    d1 = ln_sk / sd + 0.5 * sd
    n1 = norm_cdf(d1)
    n2 = norm_cdf(d1 - sd)
    call = s * n1 - k * n2
    put = call - s + k  # parity with no rate: C - P = S - K
    # No-arbitrage guards against approximation noise: at least intrinsic, calls
    # non-increasing and puts non-decreasing in the strike, deltas likewise.
    call = np.minimum.accumulate(np.maximum(call, np.maximum(s - k, 0.0)), axis=1)
    put = np.maximum.accumulate(np.maximum(put, np.maximum(k - s, 0.0)), axis=1)
    call_delta = np.round(np.minimum.accumulate(n1, axis=1), 3)
    put_delta = np.round(1.0 - call_delta, 3)
    return Quotes(
        *_bid_ask(call),
        call_delta,
        *_bid_ask(put),
        put_delta,
    )


def _bid_ask(theo: Array) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    half = 0.5 * np.minimum(SPREAD_MIN + SPREAD_SLOPE * theo, SPREAD_MAX)
    bid = snap_bid(theo - half)
    ask = snap_ask(theo + half)
    # At least one tick wide: the next price above the bid on the grid.
    ask = np.maximum(ask, bid + np.where(bid >= NICKEL_TICK_LIMIT, 2, 1))
    return bid, ask


def snap_bid(price: Array) -> npt.NDArray[np.int64]:
    """Round down to the SPX grid, in nickels, never below zero."""
    n = np.floor(price * 20.0 + _EPS)
    n = np.where(n > NICKEL_TICK_LIMIT, np.floor(price * 10.0 + _EPS) * 2.0, n)
    return np.maximum(n, 0.0).astype(np.int64)


def snap_ask(price: Array) -> npt.NDArray[np.int64]:
    """Round up to the SPX grid, in nickels, never below one ($0.05, the minimum ask)."""
    n = np.ceil(price * 20.0 - _EPS)
    n = np.where(n > NICKEL_TICK_LIMIT, np.ceil(price * 10.0 - _EPS) * 2.0, n)
    return np.maximum(n, 1.0).astype(np.int64)


def nickel_decimals(count: int) -> npt.NDArray[np.object_]:
    """`Decimal`s for 0 .. count-1 nickels ("0.00", "0.05", ...), as an object array.

    Indexing it with an array of nickels gives the prices without building a Decimal per
    quote; every tick shares the same Decimal objects.
    """
    table = np.empty(count, dtype=object)
    table[:] = [Decimal(5 * n).scaleb(-2) for n in range(count)]
    return table
