"""OSI option symbols (walkthrough Part 6 and "Reference: instrument strings")."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from odted.domain.instruments import (
    InvalidInstrument,
    format_osi,
    is_equity_symbol,
    parse_osi,
)


def test_the_spec_5950_call_parses_into_root_date_side_and_strike():
    inst = parse_osi("SPXW  250115C05950000")
    assert inst.root == "SPXW"
    assert inst.expiry == date(2025, 1, 15)
    assert inst.right == "C"
    assert inst.strike == Decimal(5950)
    assert inst.chain_strike == 5950
    assert inst.underlying == "SPX"


def test_formatting_pads_the_root_to_six_characters():
    assert format_osi("SPXW", date(2025, 1, 15), "C", 5950) == "SPXW  250115C05950000"
    assert format_osi("SPXW", date(2025, 1, 15), "P", Decimal("5952.5")) == "SPXW  250115P05952500"
    assert len(format_osi("SPX", date(2025, 1, 17), "P", 100)) == 21


def test_parse_and_format_round_trip():
    for symbol in ("SPXW  250115C05950000", "SPXW  260507P06000500", "AAPL  241220C00190000"):
        inst = parse_osi(symbol)
        assert format_osi(inst.root, inst.expiry, inst.right, inst.strike) == symbol


def test_a_fractional_strike_has_no_chain_strike():
    assert parse_osi("SPXW  250115C05952500").chain_strike is None


def test_a_symbol_that_lost_its_padding_is_refused_with_the_fixed_symbol():
    with pytest.raises(InvalidInstrument) as err:
        parse_osi("SPXW 250115C05950000")
    assert "'SPXW  250115C05950000'" in str(err.value)


@pytest.mark.parametrize(
    ("symbol", "says"),
    [
        ("SPXW  250115X05950000", "C (call) or P (put)"),
        ("SPXW  251315C05950000", "not a valid YYMMDD"),
        ("SPXW  25O115C05950000", "YYMMDD"),
        ("SPXW  250115C0595000A", "strike x 1000"),
        ("SPXW  250115C00000000", "positive"),
        ("spxw  250115C05950000", "upper-case"),
        ("  SPXW250115C05950000", "left-justified"),
        ("SPX", "equity symbol"),
        ("", "21"),
    ],
)
def test_a_malformed_symbol_says_what_is_wrong(symbol, says):
    with pytest.raises(InvalidInstrument) as err:
        parse_osi(symbol)
    assert says in str(err.value)


def test_spx_is_an_equity_symbol_and_an_option_symbol_is_not():
    assert is_equity_symbol("SPX")
    assert not is_equity_symbol("SPXW  250115C05950000")
