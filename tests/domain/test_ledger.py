"""Positions, financials and history (walkthrough Part 4, 6.2-6.3, 7.1, Part 9)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal as D
from uuid import UUID, uuid5

import msgspec
import pytest
from domain_helpers import (
    SIM,
    T0,
    book,
    credit_put_vertical,
    debit_call_vertical,
    fill_now,
    leg,
    osi,
    q,
    request,
    spec_tick,
    tick,
)

from odted.domain.fees import FeeSchedule
from odted.domain.ids import POSITION_NAMESPACE
from odted.domain.ledger import Book
from odted.domain.positions import CorruptLedger
from odted.domain.transactions import Transaction

BTO, STO, BTC, STC = "buy to open", "sell to open", "buy to close", "sell to close"


def _moved() -> object:
    """The spec's 6.3 moment: the 5950 call's mid is 4.35."""
    return tick({5950: (q("4.30", "4.40", 0.523), q("3", "3.2")), 5970: (q("3.20", "3.30", 0.38), q("1", "1.1"))}, seq=2)


def test_a_new_simulation_has_the_spec_financials():
    body = msgspec.json.decode(msgspec.json.encode(book().financials()))
    assert body["deposits"] == "100000" and body["available_buying_power"] == "100000"
    assert body["net_liquidation_value"] == "100000"
    assert all(v == "0" for k, v in body.items() if k not in ("deposits", "available_buying_power", "net_liquidation_value"))
    assert list(body) == [
        "deposits", "withdrawals", "credits", "debits", "fees", "maintenance_buying_power",
        "available_buying_power", "net_liquidation_value", "unrealized_profit_loss",
        "realized_profit_loss", "profit_loss", "equities_credits", "equities_debits",
        "equities_fees", "equities_unrealized_profit_loss", "equities_realized_profit_loss",
        "equities_profit_loss", "equities_maintenance_buying_power",
        "equities_net_liquidation_value", "equity_options_credits", "equity_options_debits",
        "equity_options_fees", "equity_options_unrealized_profit_loss",
        "equity_options_realized_profit_loss", "equity_options_profit_loss",
        "equity_options_maintenance_buying_power", "equity_options_net_liquidation_value",
    ]


def test_the_long_call_of_the_vertical_shows_the_spec_position_fields():
    bk = book()
    fill_now(debit_call_vertical(), bk)
    bk.mark(_moved())
    long, short = (msgspec.json.decode(msgspec.json.encode(p)) for p in bk.positions())
    assert long == {
        "id": str(uuid5(POSITION_NAMESPACE, f"{SIM}:{osi(5950)}:long")),
        "instrument": "SPXW  250115C05950000",
        "direction": "long",
        "quantity": "1",
        "cost": "431.72",
        "cost_basis": "430",
        "debit": "430",
        "credit": "0",
        "unrealized_profit_loss": "5",
        "realized_profit_loss": "0",
        "fees": "1.72",
        "total_profit_loss": "3.28",
        "net_liquidity": "435",
        "price": "4.35",
        "delta": "0.523",
    }
    assert (short["direction"], short["cost_basis"], short["credit"], short["net_liquidity"], short["delta"]) == (
        "short", "-325", "325", "-325", "-0.38",
    )


def test_position_ids_are_stable_version_5_uuids():
    bk = book()
    fill_now(debit_call_vertical(), bk)
    first = [p.id for p in bk.positions()]
    again = Book.from_transactions(SIM, D(100000), _txs_of(debit_call_vertical()))
    assert [p.id for p in again.positions()] == first
    assert all(i.version == 5 for i in first)


def _txs_of(req):
    from domain_helpers import assess

    from odted.domain.lifecycle import place_order

    a = assess(req)
    return place_order(a, order_id=UUID(int=99), ts=T0, fees=FeeSchedule.default()).transactions


def test_after_the_debit_vertical_fills_buying_power_falls_by_the_debit_and_fees():
    bk = book()
    fill_now(debit_call_vertical(), bk)
    f = bk.financials()
    assert (f.available_buying_power, f.maintenance_buying_power, f.debits, f.credits, f.fees) == (
        D("99891.56"), 0, D("430"), D("325"), D("3.44"),
    )


def test_net_liquidation_value_is_cash_plus_the_marked_positions():
    bk = book()
    fill_now(credit_put_vertical("1.10"), bk)
    s = bk.mark(spec_tick(seq=2))
    cash = D(100000) + D(110) - D("3.44")
    assert bk.cash == cash
    # short 5900P mid 2.25, long 5880P mid 1.15 -> -225 + 115
    assert s.market_value == D(-110)
    assert s.net_liquidation_value == cash - 110
    assert bk.financials().available_buying_power == cash - 2000
    assert bk.financials().equity_options_net_liquidation_value == D(-110)
    assert bk.profit_loss == s.net_liquidation_value - 100000


def test_closing_the_vertical_moves_its_pl_into_realized_and_removes_the_positions():
    bk = book()
    fill_now(debit_call_vertical(), bk)
    later = tick({5950: (q("6.00", "6.20"), q("1", "1.1")), 5970: (q("3.00", "3.10"), q("1", "1.1"))}, seq=3)
    close = request("limit", leg(5950, "C", STC), leg(5970, "C", BTC), price="0.05", price_effect="credit")
    fill_now(close, bk, later)
    bk.mark(later)
    assert bk.positions() == []
    f = bk.financials()
    # opened at 1.05, closed at 3.05 (mid of 2.90/3.20): +200, fees 1.72 x 2 + 0.72 x 2
    assert (f.realized_profit_loss, f.unrealized_profit_loss, f.fees) == (D("200"), 0, D("4.88"))
    assert f.profit_loss == D("195.12") and f.net_liquidation_value == D("100195.12")


def test_a_partial_close_realizes_the_average_cost_to_the_cent():
    bk = book()
    t = tick({5950: (q("1.00", "1.00"), q("1", "1.1"))})
    fill_now(request("market", leg(5950, "C", BTO, "3")), bk, t, fees=FeeSchedule.zero())
    t2 = tick({5950: (q("1.50", "1.50"), q("1", "1.1"))}, seq=2)
    for _ in range(3):
        fill_now(request("market", leg(5950, "C", STC, "1")), bk, t2, fees=FeeSchedule.zero())
    assert bk.realized == D(150) and bk.positions() == []


def test_a_missing_quote_keeps_the_last_mark():
    bk = book()
    fill_now(debit_call_vertical(), bk)
    bk.mark(_moved())
    without_5970 = tick({5950: (q("5.00", "5.20"), q("1", "1.1"))}, seq=3)
    s = bk.mark(without_5970)
    assert s.missing == (osi(5970),)
    assert s.market_value == D(510) - D(325)


def test_a_position_never_marked_is_valued_at_its_entry_price():
    bk = book()
    fill_now(debit_call_vertical(), bk)
    assert bk.unrealized_profit_loss == 0
    assert bk.net_liquidation_value == D("99996.56")


def test_a_history_row_samples_the_financials():
    bk = book()
    fill_now(debit_call_vertical(), bk)
    bk.mark(_moved())
    row = msgspec.json.decode(msgspec.json.encode(bk.history_row(T0 + timedelta(seconds=1))))
    assert row == {
        "timestamp": "2025-01-15T14:35:01Z",
        "net_liquidation_value": "100001.56",
        "profit_loss": "1.56",
        "unrealized_profit_loss": "5",
        "realized_profit_loss": "0",
        "credits": "325",
        "debits": "430",
        "fees": "3.44",
        "maintenance_buying_power": "0",
        "available_buying_power": "99891.56",
    }


def test_closing_more_than_is_open_is_a_corrupt_ledger():
    tx = Transaction(id=UUID(int=1), datetime=T0, instrument=osi(5950), type=STC, quantity=D(1),
                     price=D(100), value=D(-100), effect="credit", fees=D(0))
    with pytest.raises(CorruptLedger):
        book().apply(tx)


def test_a_reopened_position_starts_afresh_under_the_same_id():
    bk = book()
    t = tick({5950: (q("1.00", "1.00"), q("1", "1.1"))})
    fill_now(request("market", leg(5950, "C", BTO)), bk, t)
    first_id = bk.positions()[0].id
    fill_now(request("market", leg(5950, "C", STC)), bk, t)
    fill_now(request("market", leg(5950, "C", BTO)), bk, t)
    (p,) = bk.positions()
    assert p.id == first_id and p.realized_profit_loss == 0 and p.fees == D("1.72")
