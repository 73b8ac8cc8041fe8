"""Order validation: every denial code, and the spec's validation order (6.1)."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from domain_helpers import (
    SESSION,
    assess,
    book,
    credit_put_vertical,
    debit_call_vertical,
    decode,
    fill_now,
    leg,
    osi,
    request,
    spec_tick,
)

import odted.domain.orders as orders_module
from odted.domain.fees import FeeSchedule
from odted.domain.ids import DRY_RUN_ORDER_ID
from odted.domain.lifecycle import place_order
from odted.domain.orders import DenialCode, Order, OrderDenied, OrderLeg
from odted.domain.validation import (
    Assessment,
    check_replacement,
    parse_order,
    validate_order,
)

BTO, STO, BTC, STC = "buy to open", "sell to open", "buy to close", "sell to close"


def _five_wide(price: str, effect: str = "debit"):
    return request("limit", leg(5950, "C", BTO), leg(5955, "C", STO), price=price, price_effect=effect)


# (name, request, expected code, expected field)
CASES = [
    ("type", request("stop_limit", leg(5950, "C", BTO)), "invalid_order_type", "type"),
    ("underlying", request("market", leg(5950, "C", BTO), underlying="NDX"), "invalid_underlying", "underlying"),
    ("no legs", request("limit", price="1.00", price_effect="debit"), "no_legs", "legs"),
    (
        "five legs",
        request("limit", *[leg(k, "C", BTO) for k in (5880, 5900, 5950, 5960, 5970)], price="1.00", price_effect="debit"),
        "too_many_legs",
        "legs",
    ),
    ("multi-leg market", request("market", leg(5950, "C", BTO), leg(5970, "C", STO)), "multi_leg_not_limit", "legs"),
    (
        "multi-leg stop",
        request("stop", leg(5950, "C", BTO), leg(5970, "C", STO), stop_trigger="1.00", price_effect="debit"),
        "multi_leg_not_limit",
        "legs",
    ),
    (
        "collapsed padding",
        request("limit", leg(5950, "C", BTO), OrderLeg("SPXW 250115C05970000", D(1), STO), price="1.00", price_effect="debit"),
        "invalid_instrument",
        "legs[1].instrument",
    ),
    (
        "equity leg",
        request("market", OrderLeg("SPX", D(1), BTO)),
        "invalid_instrument",
        "legs[0].instrument",
    ),
    (
        "monthly root",
        request("market", OrderLeg("SPX   250117C05950000", D(1), BTO)),
        "unsupported_instrument",
        "legs[0].instrument",
    ),
    (
        "other underlying",
        request("market", OrderLeg("SPY   250115C00590000", D(1), BTO)),
        "unsupported_instrument",
        "legs[0].instrument",
    ),
    ("action", request("market", OrderLeg(osi(5950), D(1), "buy")), "invalid_action", "legs[0].action"),
    ("zero quantity", request("market", leg(5950, "C", BTO, "0")), "invalid_quantity", "legs[0].quantity"),
    ("fractional quantity", request("market", leg(5950, "C", BTO, "1.5")), "invalid_quantity", "legs[0].quantity"),
    ("negative quantity", request("market", leg(5950, "C", BTO, "-1")), "invalid_quantity", "legs[0].quantity"),
    ("NaN quantity", request("market", leg(5950, "C", BTO, "NaN")), "invalid_quantity", "legs[0].quantity"),
    (
        "duplicate",
        request("limit", leg(5950, "C", BTO), leg(5950, "C", BTO), price="1.00", price_effect="debit"),
        "duplicate_leg",
        "legs[1].instrument",
    ),
    ("limit without price", request("limit", leg(5950, "C", BTO), price_effect="debit"), "price_required", "price"),
    (
        "stop without trigger",
        request("stop", leg(5950, "C", BTO), price_effect="debit"),
        "stop_trigger_required",
        "stop_trigger",
    ),
    ("limit without effect", request("limit", leg(5950, "C", BTO), price="4.00"), "price_effect_required", "price_effect"),
    (
        "bad effect",
        request("limit", leg(5950, "C", BTO), price="4.00", price_effect="even"),
        "invalid_price_effect",
        "price_effect",
    ),
    ("market with price", request("market", leg(5950, "C", BTO), price="4.00"), "unexpected_field", "price"),
    (
        "stop with price",
        request("stop", leg(5950, "C", BTO), price="4.00", stop_trigger="3.00", price_effect="debit"),
        "unexpected_field",
        "price",
    ),
    (
        "limit with trigger",
        request("limit", leg(5950, "C", BTO), price="4.00", stop_trigger="3.00", price_effect="debit"),
        "unexpected_field",
        "stop_trigger",
    ),
    (
        "negative price",
        request("limit", leg(5950, "C", BTO), price="-1.00", price_effect="debit"),
        "invalid_price",
        "price",
    ),
    (
        "infinite price",
        request("limit", leg(5950, "C", BTO), price="Infinity", price_effect="debit"),
        "invalid_price",
        "price",
    ),
    (
        "negative trigger",
        request("stop", leg(5950, "C", BTO), stop_trigger="-1.00", price_effect="debit"),
        "invalid_stop_trigger",
        "stop_trigger",
    ),
    (
        "buy for a credit",
        request("limit", leg(5950, "C", BTO), price="4.00", price_effect="credit"),
        "price_effect_mismatch",
        "price_effect",
    ),
    (
        "sells for a debit",
        request("limit", leg(5950, "C", STO), leg(5970, "C", STO), price="4.00", price_effect="debit"),
        "price_effect_mismatch",
        "price_effect",
    ),
    (
        "market sell said debit",
        request("market", leg(5950, "C", STO), price_effect="debit"),
        "price_effect_mismatch",
        "price_effect",
    ),
    (
        "3.05 single leg",
        request("limit", leg(5950, "C", BTO), price="3.05", price_effect="debit"),
        "price_off_tick",
        "price",
    ),
    (
        "trigger 12.05",
        request("stop", leg(5960, "C", BTO), stop_trigger="12.05", price_effect="debit"),
        "stop_trigger_off_tick",
        "stop_trigger",
    ),
    ("5-wide vertical at 5.05", _five_wide("5.05"), "price_exceeds_max_profit", "price"),
    ("20-wide credit at 20.05", credit_put_vertical("20.05"), "price_exceeds_max_profit", "price"),
    ("debit vertical sold for a credit", _five_wide("1.00", "credit"), "price_exceeds_max_profit", "price"),
    (
        "long put above its strike",
        request("limit", leg(5, "P", BTO), price="5.10", price_effect="debit"),
        "price_exceeds_max_profit",
        "price",
    ),
    (
        "strike not in the chain",
        request("limit", leg(5950, "C", BTO), leg(5975, "C", STO), price="1.00", price_effect="debit"),
        "market_data_unavailable",
        "legs[1].instrument",
    ),
    (
        "stop already triggered",
        request("stop", leg(5960, "C", BTO), stop_trigger="12.00", price_effect="debit"),
        "stop_would_trigger",
        "stop_trigger",
    ),
    (
        "credit stop already triggered",
        request("stop", leg(5960, "C", STO), stop_trigger="3.00", price_effect="credit"),
        "stop_would_trigger",
        "stop_trigger",
    ),
    ("closing nothing", request("market", leg(5950, "C", STC)), "insufficient_position", "legs[0].quantity"),
    ("naked short on 100k", request("market", leg(5950, "P", STO)), "insufficient_buying_power", None),
]


@pytest.mark.parametrize(("name", "req", "code", "field"), CASES, ids=[c[0] for c in CASES])
def test_each_invalid_order_is_denied_with_its_own_code_and_field(name, req, code, field):
    denied = assess(req)
    assert isinstance(denied, OrderDenied), denied
    assert (denied.code, denied.field) == (code, field)
    assert denied.message and str(denied) == f"{code}: {denied.message}"


def test_other_expiries_have_no_market_data():
    req = request("market", OrderLeg(osi(5950, "C").replace("250115", "250116"), D(1), BTO))
    denied = assess(req)
    assert isinstance(denied, OrderDenied)
    assert denied.code == "market_data_unavailable" and "2025-01-15" in denied.message


def test_without_any_tick_there_is_no_market_data():
    denied = validate_order(
        debit_call_vertical(), tick=None, session_date=SESSION, book=book(),
        fees=FeeSchedule.default(), slippage=D(0),
    )
    assert isinstance(denied, OrderDenied) and denied.code == "market_data_unavailable"


def test_every_denial_code_is_tabled_and_tested():
    tested = {c[2] for c in CASES} | {"replace_not_limit", "replace_type_changed", "replace_legs_changed"}
    assert tested == set(DenialCode.ALL)
    for code in DenialCode.ALL:
        assert f"`{code}`" in orders_module.__doc__


def test_messages_say_what_to_change():
    tick_denial = assess(request("limit", leg(5950, "C", BTO), price="3.05", price_effect="debit"))
    assert "use 3.00 or 3.10" in tick_denial.message
    cap = assess(_five_wide("5.05"))
    assert "lower price to 5.00 or less" in cap.message
    stop = assess(request("stop", leg(5960, "C", BTO), stop_trigger="12.00", price_effect="debit"))
    assert "set stop_trigger below the mid 3.80" in stop.message
    padded = assess(request("market", OrderLeg("SPXW 250115C05950000", D(1), BTO)))
    assert "'SPXW  250115C05950000'" in padded.message


# -- the validation order: an order with two problems reports the earlier one -------------

ORDERED = [
    ("type before legs", request("swap"), "invalid_order_type"),
    (
        "shape before instruments",
        request("market", OrderLeg("junk", D(1), BTO), OrderLeg("junk2", D(1), BTO)),
        "multi_leg_not_limit",
    ),
    (
        "instrument before required price",
        request("limit", OrderLeg("junk", D(1), BTO), price_effect="debit"),
        "invalid_instrument",
    ),
    ("required before tick", request("limit", leg(5950, "C", BTO), price="3.05"), "price_effect_required"),
    ("tick before cap", _five_wide("5.07"), "price_off_tick"),
    (
        "cap before market data",
        request("limit", leg(5950, "C", BTO), leg(5955, "C", STO), price="6.00", price_effect="debit"),
        "price_exceeds_max_profit",
    ),
    ("market data before stop", request("stop", leg(5975, "C", BTO), stop_trigger="12.00", price_effect="debit"), "market_data_unavailable"),
    ("stop before buying power", request("stop", leg(5960, "C", BTO, "1000"), stop_trigger="12.00", price_effect="debit"), "stop_would_trigger"),
    ("position before buying power", request("market", leg(5950, "P", BTC, "100")), "insufficient_position"),
]


@pytest.mark.parametrize(("name", "req", "code"), ORDERED, ids=[c[0] for c in ORDERED])
def test_an_order_with_two_problems_reports_the_earlier_check(name, req, code):
    denied = assess(req)
    assert isinstance(denied, OrderDenied)
    assert denied.code == code


# -- accepted orders --------------------------------------------------------------------


def test_a_single_leg_limit_at_3_10_is_accepted():
    a = assess(request("limit", leg(5950, "C", BTO), price="3.10", price_effect="debit"))
    assert isinstance(a, Assessment) and a.fill is None


def test_quantities_from_json_decode_and_validate():
    req = decode(
        b'{"type":"limit","price":"10.50","price_effect":"debit","legs":['
        b'{"instrument":"SPXW  250115C05950000","quantity":"1","action":"buy to open"},'
        b'{"instrument":"SPXW  250115C05970000","quantity":"1","action":"sell to open"}]}'
    )
    assert isinstance(assess(req), Assessment)


def test_the_cap_is_skipped_when_the_maximum_is_unbounded():
    # A long call and a 1x2 call backspread can be worth any amount.
    long_call = request("limit", leg(5950, "C", BTO), price="900.00", price_effect="debit")
    assert isinstance(parse_order(long_call), type(parse_order(debit_call_vertical())))
    backspread = request("limit", leg(5950, "C", STO), leg(5970, "C", BTO, "2"), price="50.00", price_effect="debit")
    assert not isinstance(parse_order(backspread), OrderDenied)


def test_a_five_wide_vertical_caps_a_limit_at_exactly_five_dollars():
    assert not isinstance(parse_order(_five_wide("5.00")), OrderDenied)
    assert parse_order(_five_wide("5.05")).code == "price_exceeds_max_profit"


def test_the_cap_is_per_unit_of_the_ratio():
    two_lots = request("limit", leg(5950, "C", BTO, "2"), leg(5955, "C", STO, "2"), price="5.00", price_effect="debit")
    assert not isinstance(parse_order(two_lots), OrderDenied)


def test_a_closing_order_may_take_only_what_other_pending_orders_leave_open():
    bk = book()
    fill_now(request("market", leg(5950, "C", BTO)), bk)
    close = request("limit", leg(5950, "C", STC), price="9.00", price_effect="credit")
    first = assess(close, bk=bk)
    assert isinstance(first, Assessment) and first.fill is None
    bk.reserve(DRY_RUN_ORDER_ID, first.reservation)
    second = assess(close, bk=bk)
    assert isinstance(second, OrderDenied) and second.code == "insufficient_position"
    # ...unless it replaces the first.
    assert isinstance(assess(close, bk=bk, replacing=DRY_RUN_ORDER_ID), Assessment)


def test_closing_the_long_leg_of_a_spread_leaves_the_short_naked_and_margined():
    bk = book()
    fill_now(debit_call_vertical(), bk)
    close_long = request("market", leg(5950, "C", STC))
    denied = assess(close_long, bk=bk)
    assert isinstance(denied, OrderDenied) and denied.code == "insufficient_buying_power"
    close_both = request("limit", leg(5950, "C", STC), leg(5970, "C", BTC), price="0.05", price_effect="credit")
    assert isinstance(assess(close_both, bk=bk), Assessment)


# -- replacement ---------------------------------------------------------------------------


def _pending(req) -> Order:
    a = assess(req)
    return place_order(a, order_id=DRY_RUN_ORDER_ID, ts=spec_tick().ts, fees=FeeSchedule.default()).order


def test_only_price_and_price_effect_may_change_in_a_replacement():
    original = _pending(credit_put_vertical())
    assert check_replacement(original, credit_put_vertical("1.40")) is None
    reordered = request("limit", *reversed(credit_put_vertical().legs), price="1.40", price_effect="credit")
    assert check_replacement(original, reordered).code == "replace_legs_changed"
    bigger = credit_put_vertical("1.40", qty="2")
    assert check_replacement(original, bigger).code == "replace_legs_changed"


def test_replacing_with_another_type_is_denied():
    original = _pending(credit_put_vertical())
    as_market = request("market", *credit_put_vertical().legs)
    denied = check_replacement(original, as_market)
    assert denied.code == "replace_type_changed" and denied.field == "type"


def test_replacing_a_stop_order_is_its_own_code():
    original = _pending(request("stop", leg(5960, "C", BTO), stop_trigger="3.00", price_effect="debit"))
    denied = check_replacement(original, request("limit", leg(5960, "C", BTO), price="3.00", price_effect="debit"))
    assert denied.code == "replace_not_limit"


def test_a_replacement_does_not_pay_twice_for_the_order_it_replaces():
    bk = book("2000")  # room for one credit put vertical's reservation, not two
    a = assess(credit_put_vertical(), bk=bk)
    assert isinstance(a, Assessment)
    bk.reserve(DRY_RUN_ORDER_ID, a.reservation)
    assert assess(credit_put_vertical("1.45"), bk=bk).code == "insufficient_buying_power"
    assert isinstance(assess(credit_put_vertical("1.45"), bk=bk, replacing=DRY_RUN_ORDER_ID), Assessment)


def test_a_recovered_pending_order_reserves_what_it_reserved_at_placement():
    from odted.domain.lifecycle import reservation_of

    bk = book()
    fill_now(request("market", leg(5950, "C", BTO)), bk)
    for req in (credit_put_vertical(), request("limit", leg(5950, "C", STC), price="9.00", price_effect="credit")):
        a = assess(req, bk=bk)
        order = place_order(a, order_id=DRY_RUN_ORDER_ID, ts=spec_tick().ts, fees=FeeSchedule.default()).order
        assert reservation_of(order, parse_order(order.request())) == a.reservation
