"""SPX option price ticks ("Reference: SPX option price ticks", "Common pitfalls")."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from odted.domain.ticks import is_on_tick, snap_mid, tick_for


@pytest.mark.parametrize(
    ("price", "legs", "ok"),
    [
        ("3.05", 1, False),  # the spec's pitfall: the dime tick applies above 3.00
        ("3.10", 1, True),
        ("3.00", 1, True),
        ("2.95", 1, True),
        ("0.05", 1, True),
        ("0.07", 1, False),
        ("12.00", 1, True),
        ("12.05", 1, False),
        ("3.05", 2, True),  # multi-leg is always the nickel
        ("10.45", 2, True),
        ("10.47", 4, False),
        ("1.055", 2, False),
    ],
)
def test_single_leg_prices_above_three_dollars_use_the_dime(price, legs, ok):
    assert is_on_tick(D(price), legs) is ok


def test_tick_for_switches_strictly_above_three_dollars():
    assert tick_for(D("3.00"), 1) == D("0.05")
    assert tick_for(D("3.01"), 1) == D("0.10")
    assert tick_for(D("30"), 2) == D("0.05")


@pytest.mark.parametrize(
    ("mid", "legs", "snapped"),
    [
        ("1.05", 2, "1.05"),  # on the grid already
        ("1.025", 2, "1.05"),  # odd spread, debit: one tick up, toward the market maker
        ("-1.025", 2, "-1.00"),  # odd spread, credit: a smaller credit
        ("3.75", 1, "3.80"),  # single leg above $3: dime tick, tie rounds up
        ("-3.75", 1, "-3.70"),
        ("2.975", 1, "3.00"),
        ("1.01", 2, "1.00"),  # not a tie: nearest
        ("1.04", 2, "1.05"),
        ("0", 2, "0"),
    ],
)
def test_a_mid_between_ticks_rounds_toward_the_market_maker(mid, legs, snapped):
    assert snap_mid(D(mid), legs) == D(snapped)
