import math
from decimal import Decimal

import msgspec
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from odted.market.chainmodel import nickel_decimals, norm_cdf, snap_ask, snap_bid
from odted.market.feed import FeedState

prices = st.floats(min_value=-1.0, max_value=2_000.0, allow_nan=False)


def on_grid(nickels: int) -> bool:
    return nickels <= 60 or nickels % 2 == 0


@given(prices)
def test_a_bid_snaps_down_to_the_nearest_grid_price_never_below_zero(price: float):
    n = int(snap_bid(np.array([price]))[0])
    assert n >= 0 and on_grid(n)
    if price >= 0:
        assert n * 0.05 <= price + 1e-6
        step = 1 if n < 60 else 2
        assert (n + step) * 0.05 > price - 1e-6  # the next grid price up is above it


@given(prices)
def test_an_ask_snaps_up_to_the_nearest_grid_price_never_below_a_nickel(price: float):
    n = int(snap_ask(np.array([price]))[0])
    assert n >= 1 and on_grid(n)
    assert n * 0.05 >= price - 1e-6
    if n > 1:
        step = 1 if n <= 60 else 2
        assert (n - step) * 0.05 < price + 1e-6


def test_three_dollars_is_the_last_nickel_price():
    assert snap_ask(np.array([3.01, 2.96, 3.0]))[:].tolist() == [62, 60, 60]
    assert snap_bid(np.array([3.09, 3.04, 3.11]))[:].tolist() == [60, 60, 62]


def test_the_normal_cdf_is_accurate_in_the_body_and_the_tails():
    xs = np.linspace(-8, 8, 1601)
    exact = np.array([0.5 * math.erfc(-x / math.sqrt(2)) for x in xs])
    approx = norm_cdf(xs)
    assert np.max(np.abs(approx - exact)) < 2e-7
    tails = xs < -3
    assert np.max(np.abs(approx[tails] / exact[tails] - 1)) < 1e-6


def test_price_decimals_are_shared_and_carry_two_places():
    table = nickel_decimals(100)
    assert table[0] == Decimal("0.00") and str(table[63]) == "3.15"
    assert all(d.as_tuple().exponent == -2 for d in table)


def test_feed_state_encodes_for_status():
    state = FeedState(source="synthetic", connected=True, speed="max", ticks_published=3)
    assert msgspec.json.decode(msgspec.json.encode(state))["speed"] == "max"
