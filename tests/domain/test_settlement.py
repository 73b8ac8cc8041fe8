"""End-of-day settlement (walkthrough Part 10; DESIGN.md "Time and sessions")."""

from __future__ import annotations

from decimal import Decimal as D

import msgspec
from domain_helpers import (
    T0,
    book,
    credit_put_vertical,
    debit_call_vertical,
    fill_now,
    osi,
)

from odted.domain.fees import FeeSchedule
from odted.domain.settlement import settle


def _body(txs):
    return [msgspec.json.decode(msgspec.json.encode(t)) for t in txs]


def test_otm_legs_expire_without_price_value_effect_or_order_id():
    bk = book()
    fill_now(debit_call_vertical(), bk)
    txs = settle(bk, underlying=D("5940.00"), ts=T0, fees=FeeSchedule.default())
    for body in _body(txs):
        assert body["type"] == "expiration" and body["fees"] == "0"
        for absent in ("price", "value", "effect", "order_id"):
            assert absent not in body
    bk.apply_all(txs)
    assert bk.positions() == [] and bk.realized == D(-105)


def test_an_itm_long_is_exercised_and_an_itm_short_assigned_for_cash():
    bk = book()
    fill_now(debit_call_vertical(), bk)
    txs = settle(bk, underlying=D("5975.50"), ts=T0, fees=FeeSchedule.default())
    long, short = _body(txs)
    assert (long["type"], long["price"], long["value"], long["effect"], long["fees"]) == (
        "exercise", "2550", "-2550", "credit", "5",
    )
    assert (short["type"], short["price"], short["value"], short["effect"], short["fees"]) == (
        "assignment", "550", "550", "debit", "5",
    )
    before = bk.cash
    bk.apply_all(txs)
    # The covered short nets against its long: the spread settles at its 20-point width.
    assert bk.cash - before == D(2000) - D(10)
    assert bk.realized == D(2000) - D(105)
    assert bk.positions() == [] and bk.maintenance == 0


def test_an_itm_put_settles_at_strike_less_underlying():
    bk = book()
    fill_now(credit_put_vertical("1.10"), bk)
    txs = settle(bk, underlying=D("5890.00"), ts=T0, fees=FeeSchedule.zero())
    short, long = _body(txs)
    assert (short["instrument"], short["type"], short["value"]) == (osi(5900, "P"), "assignment", "1000")
    assert (long["instrument"], long["type"]) == (osi(5880, "P"), "expiration")


def test_at_the_money_is_out_of_the_money():
    bk = book()
    fill_now(debit_call_vertical(), bk)
    (first, _) = settle(bk, underlying=D("5950"), ts=T0, fees=FeeSchedule.default())
    assert first.type == "expiration"


def test_settling_twice_produces_the_same_transactions():
    bk = book()
    fill_now(debit_call_vertical(), bk)
    a = settle(bk, underlying=D("5960"), ts=T0, fees=FeeSchedule.default())
    b = settle(bk, underlying=D("5960"), ts=T0, fees=FeeSchedule.default())
    assert a == b and len({t.id for t in a}) == 2
