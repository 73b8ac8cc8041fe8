"""Combo pricing and fills (walkthrough 6.1 "What happened", 8.3; DESIGN.md "Fills")."""

from __future__ import annotations

from decimal import Decimal as D

import msgspec
import pytest
from domain_helpers import (
    T0,
    assess,
    book,
    credit_put_vertical,
    debit_call_vertical,
    leg,
    q,
    request,
    spec_tick,
    tick,
)

from odted.domain.fees import FeeSchedule
from odted.domain.fills import fill_on_tick, first_fill, split_leg_prices
from odted.domain.lifecycle import dry_run_order, place_order
from odted.domain.orders import OrderDenied
from odted.domain.pricing import quote_combo
from odted.domain.validation import Assessment, parse_order

BTO, STO = "buy to open", "sell to open"
ORDER_ID = __import__("uuid").UUID("a7e2c9d1-3b85-4f60-9a4d-2c1f8e7b6d50")


def test_the_walkthrough_debit_vertical_fills_with_legs_430_and_325_and_fees_3_44():
    """Walkthrough 6.1. The spec's body says fill_price 10.45, but its own legs (430 and
    325) and buying-power block (108.44 = 105 + 3.44) are those of a 1.05 fill: 10.45
    cannot be the sum of those legs. odted follows the legs; the next test reproduces a
    10.45 fill with the same limit on a chain where the spread is worth that."""
    a = assess(debit_call_vertical())
    assert isinstance(a, Assessment)
    placed = place_order(a, order_id=ORDER_ID, ts=T0, fees=FeeSchedule.default())
    body = msgspec.json.decode(msgspec.json.encode(placed.order))
    assert body["status"] == "filled"
    assert body["price"] == "10.50" and body["price_effect"] == "debit"
    assert body["fill_price"] == "1.05" and body["fill_price_effect"] == "debit"
    assert body["execution_price"] == "10.50"  # limit - s, with s = 0 as in the example
    assert body["fees"] == "3.44"
    assert body["fill_datetime"] == "2025-01-15T14:35:00Z"
    assert body["underlying"] == "SPX"
    legs = [(t["instrument"], t["type"], t["quantity"], t["price"], t["value"], t["effect"], t["fees"])
            for t in body["transactions"]]
    assert legs == [
        ("SPXW  250115C05950000", "buy to open", "1", "430", "430", "debit", "1.72"),
        ("SPXW  250115C05970000", "sell to open", "1", "325", "-325", "credit", "1.72"),
    ]
    assert body["buying-power-effect"] == {
        "change-in-margin-requirement": "0",
        "change-in-margin-requirement-effect": "None",
        "change-in-buying-power": "108.44",
        "change-in-buying-power-effect": "Debit",
        "current-buying-power": "100000",
        "current-buying-power-effect": "Credit",
        "new-buying-power": "99891.56",
        "new-buying-power-effect": "Credit",
        "value": "108.44",
        "effect": "Debit",
    }


def test_a_chain_where_the_vertical_is_worth_10_45_fills_the_10_50_limit_at_10_45():
    t = tick({5950: (q("14.20", "14.40"), q("1", "1.1")), 5970: (q("3.80", "3.90"), q("9", "9.2"))})
    a = assess(debit_call_vertical(), t=t)
    assert a.fill.fill_price == D("10.45") and a.fill.execution_price == D("10.50")
    assert a.fill.leg_prices == (D("1430"), D("385"))
    assert a.buying_power_effect.change_in_buying_power == D("1048.44")


def test_the_dry_run_has_the_zero_id_and_no_transactions():
    a = assess(debit_call_vertical())
    body = msgspec.json.decode(msgspec.json.encode(dry_run_order(a, ts=T0)))
    assert body["id"] == "00000000-0000-0000-0000-000000000000"
    assert "transactions" not in body
    assert body["status"] == "filled" and body["fees"] == "3.44" and body["fill_price"] == "1.05"


def test_the_walkthrough_credit_put_vertical_rests_pending_with_its_buying_power_block():
    a = assess(credit_put_vertical())
    order = place_order(a, order_id=ORDER_ID, ts=T0, fees=FeeSchedule.default()).order
    body = msgspec.json.decode(msgspec.json.encode(order))
    assert body["status"] == "pending" and body["fees"] == "3.44"
    for absent in ("fill_price", "fill_datetime", "transactions", "execution_price", "slippage"):
        assert absent not in body
    bpe = body["buying-power-effect"]
    assert (bpe["change-in-margin-requirement"], bpe["change-in-margin-requirement-effect"]) == ("2000", "Debit")
    assert (bpe["change-in-buying-power"], bpe["change-in-buying-power-effect"]) == ("1853.44", "Debit")
    assert (bpe["new-buying-power"], bpe["new-buying-power-effect"]) == ("98146.56", "Credit")
    assert a.reservation.amount == D("1853.44")


# -- natural sides and the mid --------------------------------------------------------------


def test_combo_natural_sides_sum_asks_of_buys_less_bids_of_sells():
    ticket = parse_order(debit_call_vertical())
    combo = quote_combo(ticket.legs, spec_tick())
    assert (combo.ask_side, combo.bid_side, combo.mid) == (D("1.20"), D("0.90"), D("1.05"))
    credit = quote_combo(parse_order(credit_put_vertical()).legs, spec_tick())
    # sell 5900P 2.20/2.30, buy 5880P 1.10/1.20
    assert (credit.ask_side, credit.bid_side, credit.mid) == (D("-1.00"), D("-1.20"), D("-1.10"))


def test_an_odd_tick_spread_rounds_the_mid_toward_the_market_maker():
    t = tick({5950: (q("4.20", "4.35"), q("1", "1.1")), 5970: (q("3.20", "3.30"), q("1", "1.1"))})
    debit = quote_combo(parse_order(debit_call_vertical()).legs, t)
    assert (debit.ask_side, debit.bid_side, debit.mid) == (D("1.15"), D("0.90"), D("1.05"))  # 1.025 up
    credit = request("limit", leg(5950, "C", "sell to open"), leg(5970, "C", BTO), price="1.00", price_effect="credit")
    mirrored = quote_combo(parse_order(credit).legs, t)
    assert mirrored.mid == D("-1.00")  # a credit of 1.025 rounds down to 1.00


# -- the fill table -----------------------------------------------------------------------

S = "0.05"


@pytest.mark.parametrize(
    ("limit", "fills", "fill", "execution"),
    [("1.10", True, "1.10", "1.05"), ("1.05", False, None, None), ("1.50", True, "1.10", "1.45")],
)
def test_a_debit_limit_fills_when_the_mid_reaches_limit_less_slippage(limit, fills, fill, execution):
    ticket = parse_order(debit_call_vertical(limit))  # mid 1.05
    f = fill_on_tick(ticket, spec_tick(), D(S))
    assert (f is not None) is fills
    if fills:
        assert (f.fill_price, f.effect("debit"), f.execution_price, f.slippage) == (D(fill), "debit", D(execution), D(S))


@pytest.mark.parametrize(
    ("limit", "fills", "fill", "execution"),
    [("1.05", True, "1.05", "1.10"), ("1.10", False, None, None), ("0.50", True, "1.05", "0.55")],
)
def test_a_credit_limit_fills_when_the_mid_reaches_limit_plus_slippage(limit, fills, fill, execution):
    ticket = parse_order(credit_put_vertical(limit))  # mid: credit 1.10
    f = fill_on_tick(ticket, spec_tick(), D(S))
    assert (f is not None) is fills
    if fills:
        assert (f.fill_price, f.effect("credit"), f.execution_price) == (D(fill), "credit", D(execution))


def test_an_order_resting_exactly_at_the_mid_never_fills_while_slippage_is_positive():
    assert fill_on_tick(parse_order(debit_call_vertical("1.05")), spec_tick(), D(S)) is None
    assert fill_on_tick(parse_order(debit_call_vertical("1.05")), spec_tick(), D(0)) is not None


def test_a_debit_stop_triggers_at_or_below_its_trigger_and_fills_at_mid_plus_slippage():
    ticket = parse_order(request("stop", leg(5960, "C", BTO), stop_trigger="3.50", price_effect="debit"))
    above = spec_tick()  # 5960C 3.70/3.80: mid 3.80 (odd dime spread, rounded up)
    assert fill_on_tick(ticket, above, D(S)) is None
    below = tick({5960: (q("3.40", "3.60"), q("1", "1.1"))})  # mid 3.50
    f = fill_on_tick(ticket, below, D(S))
    assert (f.fill_price, f.execution_price, f.leg_prices) == (D("3.55"), D("3.50"), (D("355"),))


def test_a_credit_stop_triggers_at_or_above_its_trigger_and_fills_at_mid_less_slippage():
    ticket = parse_order(request("stop", leg(5960, "C", STO), stop_trigger="4.00", price_effect="credit"))
    assert fill_on_tick(ticket, spec_tick(), D(S)) is None  # mid 3.80 < 4.00
    rally = tick({5960: (q("4.00", "4.20"), q("1", "1.1"))})
    f = fill_on_tick(ticket, rally, D(S))
    assert (f.fill_price, f.effect("credit"), f.execution_price) == (D("4.05"), "credit", D("4.00"))


def test_a_market_order_fills_at_the_natural_price_without_slippage():
    buy = assess(request("market", leg(5950, "C", BTO)), slippage=S)
    assert (buy.fill.fill_price, buy.fill.effect("debit"), buy.fill.slippage) == (D("4.40"), "debit", D(0))
    sell = assess(request("market", leg(5950, "C", STO)), bk=book("1000000"), slippage=S)
    assert (sell.fill.fill_price, sell.fill.effect("credit")) == (D("4.20"), "credit")


def test_a_credit_stop_never_makes_a_sale_cost_money():
    ticket = parse_order(request("stop", leg(5960, "C", STO), stop_trigger="0.05", price_effect="credit"))
    t = tick({5960: (q("0.00", "0.10"), q("1", "1.1"))})  # mid 0.05
    f = fill_on_tick(ticket, t, D("0.10"))
    assert f.net == 0 and f.leg_prices == (D(0),)


def test_a_combo_whose_mid_is_a_credit_fills_a_debit_limit_as_a_credit():
    # A risk reversal: buy the 5970 call (3.25), sell the 5950 put (3.20) -> ~0.05 debit.
    t = tick({5950: (q("4.20", "4.40"), q("3.40", "3.60")), 5970: (q("3.20", "3.30"), q("1", "1.1"))})
    rr = request("limit", leg(5970, "C", BTO), leg(5950, "P", STO), price="0.10", price_effect="debit")
    f = fill_on_tick(parse_order(rr), t, D(0))
    assert f.net == D("-0.25") and f.fill_price == D("0.25") and f.effect("debit") == "credit"


# -- replay ------------------------------------------------------------------------------


def test_first_fill_finds_the_first_tick_at_which_the_live_rule_fills():
    ticket = parse_order(credit_put_vertical("1.50"))
    ticks = [
        tick({5880: (q("1", "2"), q(b, a)), 5900: (q("1", "2"), q(b2, a2))}, seq=i + 1)
        for i, (b, a, b2, a2) in enumerate(
            [("1.10", "1.20", "2.20", "2.30"), ("1.00", "1.10", "2.50", "2.60"), ("0.90", "1.00", "2.60", "2.70")]
        )
    ]
    found = first_fill(ticket, ticks, D(S))
    assert found is not None
    t, f = found
    assert t.seq == 3  # mids: 1.10, 1.50, 1.70 credit; needs >= 1.55
    assert f.fill_price == D("1.65") and f == fill_on_tick(ticket, t, D(S))
    assert first_fill(ticket, ticks[:2], D(S)) is None


# -- leg prices ------------------------------------------------------------------------------


def test_leg_prices_of_a_ratio_spread_add_up_to_the_fill():
    ticket = parse_order(request("limit", leg(5950, "C", BTO), leg(5970, "C", STO, "2"), price="0.50", price_effect="credit"))
    quotes = tuple(quote_combo(ticket.legs, spec_tick()).quotes)
    prices = split_leg_prices(ticket.legs, quotes, D("-2.15"))
    assert prices[0] * 1 - prices[1] * 2 == D("-215")


def test_a_ratio_without_a_unit_leg_is_split_exactly():
    ticket = parse_order(request("limit", leg(5950, "C", BTO, "2"), leg(5970, "C", STO, "3"), price="0.10", price_effect="debit"))
    quotes = quote_combo(ticket.legs, spec_tick()).quotes
    for net in ("-1.45", "-1.40", "0", "0.05", "2.00"):
        prices = split_leg_prices(ticket.legs, quotes, D(net))
        assert prices[0] * 2 - prices[1] * 3 == D(net) * 100 and min(prices) >= 0


def test_a_denied_order_has_no_fill():
    assert isinstance(assess(debit_call_vertical("5.07")), OrderDenied)
