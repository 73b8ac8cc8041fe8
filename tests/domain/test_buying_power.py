"""Buying power (walkthrough 6.0-6.2, 8.1, "Common pitfalls"; DESIGN.md "Buying power")."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import msgspec
import pytest
from domain_helpers import (
    assess,
    book,
    credit_put_vertical,
    debit_call_vertical,
    fill_now,
    leg,
    request,
)

from odted.domain.buying_power import buying_power_effect, maintenance_requirement
from odted.domain.orders import OrderDenied
from odted.domain.validation import Assessment

DAY = date(2025, 1, 15)
BTO, STO = "buy to open", "sell to open"


def m(*holdings: tuple[str, int, int]) -> D:
    """Maintenance of `(right, strike, qty)` holdings on one expiry."""
    return maintenance_requirement([(DAY, r, k * 1000, qty) for r, k, qty in holdings])


def test_a_naked_short_5950_needs_119000():
    assert m(("P", 5950, -1)) == D("119000")
    assert m(("C", 5950, -1)) == D("119000")
    assert m(("P", 5950, -3)) == D("357000")


def test_a_credit_vertical_needs_its_width_times_100():
    assert m(("P", 5900, -1), ("P", 5880, 1)) == D("2000")
    assert m(("C", 5950, -2), ("C", 5955, 2)) == D("1000")


def test_long_options_and_debit_spreads_need_no_maintenance():
    assert m(("C", 5950, 1)) == 0
    assert m(("C", 5950, 1), ("C", 5970, -1)) == 0
    assert m(("P", 5900, 1), ("P", 5880, -1)) == 0
    assert m() == 0


def test_an_iron_condor_needs_its_wider_side_only():
    ic = [("P", 5880, 1), ("P", 5900, -1), ("C", 6000, -1), ("C", 6030, 1)]
    assert m(*ic) == D("3000")


def test_a_butterfly_needs_nothing_and_a_broken_wing_its_worst_case():
    assert m(("C", 5950, 1), ("C", 5960, -2), ("C", 5970, 1)) == 0
    # 5950/5960/5980 broken wing: worst at or above 5980 = 10 - 20 = -10 points.
    assert m(("C", 5950, 1), ("C", 5960, -2), ("C", 5980, 1)) == D("1000")


def test_a_ratio_spread_margins_its_uncovered_short_as_naked():
    # Long 1 x 5950 call, short 2 x 5970 calls: one short is covered, one is naked.
    assert m(("C", 5950, 1), ("C", 5970, -2)) == D("119400")


def test_a_put_ratio_charges_the_costlier_choice_of_naked_short():
    # Long 5800P, short 5900P and 5850P. Naked 5900 + 5800/5850 spread = 118000 + 5000;
    # naked 5850 + 5800/5900 spread = 117000 + 10000. The larger is charged.
    assert m(("P", 5800, 1), ("P", 5900, -1), ("P", 5850, -1)) == D("127000")


def test_a_long_of_another_expiry_does_not_cover_a_short():
    req = maintenance_requirement([(DAY, "C", 5950000, -1), (date(2025, 1, 16), "C", 5970000, 1)])
    assert req == D("119000")


def test_a_long_and_short_of_the_same_instrument_net_out():
    assert m(("C", 5950, 1), ("C", 5950, -1)) == 0


def test_the_block_labels_each_amount_with_its_effect():
    block = buying_power_effect(current=D("100000"), margin_change=D("2000"), change=D("1853.44"))
    assert msgspec.json.decode(msgspec.json.encode(block)) == {
        "change-in-margin-requirement": "2000",
        "change-in-margin-requirement-effect": "Debit",
        "change-in-buying-power": "1853.44",
        "change-in-buying-power-effect": "Debit",
        "current-buying-power": "100000",
        "current-buying-power-effect": "Credit",
        "new-buying-power": "98146.56",
        "new-buying-power-effect": "Credit",
        "value": "1853.44",
        "effect": "Debit",
    }
    freeing = buying_power_effect(current=D("50"), margin_change=D("-2000"), change=D("-1900"))
    assert (freeing.change_in_margin_requirement_effect, freeing.effect, freeing.value) == ("Credit", "Credit", D("1900"))
    assert freeing.new == D("1950") and freeing.change == D("-1900")


def test_the_debit_vertical_changes_buying_power_by_its_debit_plus_fees():
    a = assess(debit_call_vertical())
    bpe = a.buying_power_effect
    assert (bpe.change_in_buying_power, bpe.new_buying_power) == (D("108.44"), D("99891.56"))


def test_the_credit_vertical_changes_buying_power_by_margin_less_credit_plus_fees():
    a = assess(credit_put_vertical())
    bpe = a.buying_power_effect
    assert (bpe.change_in_margin_requirement, bpe.change_in_buying_power, bpe.new_buying_power) == (
        D("2000"), D("1853.44"), D("98146.56"),
    )


def test_a_naked_short_needs_about_half_a_million_of_capital_for_a_few_contracts():
    naked = request("market", leg(5950, "P", STO))
    assert isinstance(assess(naked, bk=book("100000")), OrderDenied)
    ok = assess(naked, bk=book("500000"))
    assert isinstance(ok, Assessment)
    assert ok.buying_power_effect.change_in_margin_requirement == D("119000")
    # 119000 - 310 credit (bid 3.10) + 1.72 fees
    assert ok.buying_power_effect.change_in_buying_power == D("118691.72")


def test_pending_orders_reserve_buying_power_and_release_it_when_canceled():
    bk = book("2000")
    a = assess(credit_put_vertical(), bk=bk)
    assert a.reservation.amount == D("1853.44")
    oid = __import__("uuid").UUID(int=7)
    bk.reserve(oid, a.reservation)
    assert bk.available_buying_power() == D("146.56")
    denied = assess(credit_put_vertical(), bk=bk)
    assert isinstance(denied, OrderDenied) and denied.code == "insufficient_buying_power"
    bk.release(oid)
    assert bk.available_buying_power() == D("2000")


def test_closing_a_credit_spread_frees_its_margin():
    bk = book()
    fill_now(credit_put_vertical("1.10"), bk)
    assert bk.maintenance == D("2000")
    close = request("limit", leg(5900, "P", "buy to close"), leg(5880, "P", "sell to close"), price="1.50", price_effect="debit")
    a = assess(close, bk=bk)
    bpe = a.buying_power_effect
    assert bpe.change_in_margin_requirement_effect == "Credit"
    assert bpe.change_in_margin_requirement == D("2000")
    assert bpe.effect == "Credit"  # 2000 freed, 110 paid (fill at the 1.10 mid), 1.44 fees
    assert bpe.value == D("1888.56")
    assert a.reservation.amount == 0


@pytest.mark.parametrize("capital", ["108.43", "108.44"])
def test_an_order_is_accepted_only_if_it_leaves_buying_power_non_negative(capital):
    a = assess(debit_call_vertical(), bk=book(capital))
    if capital == "108.44":
        assert isinstance(a, Assessment) and a.buying_power_effect.new_buying_power == 0
        assert a.buying_power_effect.new_buying_power_effect == "None"
    else:
        assert isinstance(a, OrderDenied) and a.code == "insufficient_buying_power"


def test_a_fill_that_would_overdraw_buying_power_is_rejected_with_a_reason():
    from uuid import UUID

    from domain_helpers import spec_tick

    from odted.domain.fees import FeeSchedule
    from odted.domain.fills import fill_on_tick
    from odted.domain.lifecycle import place_order, reject_order
    from odted.domain.validation import recheck_fill

    bk = book("5000")
    fill_now(request("market", leg(5880, "P", BTO)), bk)  # long 5880 put, 1.20 + fees
    # A pending short 5900 put is a credit spread against the long put: 2000 margin.
    short = assess(request("limit", leg(5900, "P", STO), price="2.50", price_effect="credit"), bk=bk)
    assert isinstance(short, Assessment) and short.reservation.amount == D("2000") - D("250") + D("1.72")
    oid = UUID(int=11)
    order = place_order(short, order_id=oid, ts=spec_tick().ts, fees=FeeSchedule.default()).order
    bk.reserve(oid, short.reservation)
    # The long put is sold before the short fills: the short would now be naked.
    fill_now(request("market", leg(5880, "P", "sell to close")), bk)
    rally = spec_tick(seq=2)
    rally = type(rally).build(
        seq=2, ts=rally.ts, spx=rally.spx, vix=rally.vix, spx_expected_move=rally.spx_expected_move,
        chain=[s if s.strike != 5900 else type(s)(s.strike, s.call, type(s.put)(D("2.50"), D("2.70"), 0.2)) for s in rally.chain],
    )
    fill = fill_on_tick(short.ticket, rally, D(0))
    assert fill is not None
    denied = recheck_fill(short.ticket, fill, book=bk, fees=FeeSchedule.default(), order_id=oid)
    assert denied is not None and denied.code == "insufficient_buying_power"
    rejected = reject_order(order, denied, ts=rally.ts)
    assert rejected.status == "rejected" and rejected.rejection_reason.startswith("insufficient_buying_power: ")
