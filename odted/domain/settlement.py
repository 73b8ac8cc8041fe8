"""End-of-day settlement: every open position is closed by a cash settlement.

Spec: api-walkthrough Part 10 (OTM options -> `expiration`, with no price/value/effect
fields; ITM -> `exercise` for a long, `assignment` for a short; SPX is cash-settled at
(underlying - strike) x 100; covered shorts are netted against their long counterpart
in the same spread; settlement transactions have no `order_id`), 2.6 (settlement uses
the fee schedule). DESIGN.md "Time and sessions": settlement happens when the closing
tick is processed, at that tick's SPX.

Per open position, at underlying price S:
- intrinsic = S - K for a call, K - S for a put; at or out of the money (<= 0) the
  position `expiration`s: no cash, no fee.
- an ITM long is `exercise`d: a credit of intrinsic x 100 x quantity (value negative),
  `exercise_option` per contract.
- an ITM short is `assignment`: a debit of the same (value positive), `exercise_option`
  per contract too (odted charges the schedule's one settlement rate on both sides).
Netting is in the cash: a spread's long exercise and short assignment settle to exactly
its intrinsic width, and nothing but that moves (a property test proves it). Each
transaction's id is derived from (simulation, instrument, direction), so settling twice
(a retry after a crash) produces the same transactions.
"""

from __future__ import annotations

import datetime as _dt
from decimal import Decimal

from odted.domain.chain import Tick
from odted.domain.fees import FeeSchedule
from odted.domain.ids import settlement_transaction_id
from odted.domain.ledger import Book
from odted.domain.money import HUNDRED, dollars
from odted.domain.transactions import Transaction

__all__ = ["settle", "settle_on_tick", "intrinsic"]


def intrinsic(right: str, strike: Decimal, underlying: Decimal) -> Decimal:
    """The per-share intrinsic value at expiration (never negative)."""
    value = underlying - strike if right == "C" else strike - underlying
    return value if value > 0 else Decimal(0)


def settle(
    book: Book, *, underlying: Decimal, ts: _dt.datetime, fees: FeeSchedule
) -> tuple[Transaction, ...]:
    """The settlement transactions of every open position in `book` at `underlying`.

    The caller applies them (`book.apply_all`) after committing them."""
    out = []
    for state in book.open_positions():
        inst = state.instrument
        qty = Decimal(state.quantity)
        tx_id = settlement_transaction_id(book.simulation_id, inst.symbol, state.direction)
        per_share = intrinsic(inst.right, inst.strike, underlying)
        if not per_share:
            out.append(
                Transaction(
                    id=tx_id,
                    datetime=ts,
                    instrument=inst.symbol,
                    type="expiration",
                    quantity=qty,
                    fees=Decimal(0),
                    direction=state.direction,
                )
            )
            continue
        per_contract = dollars(per_share * HUNDRED)
        long = state.direction == "long"
        kind = "exercise" if long else "assignment"
        value = per_contract * qty
        out.append(
            Transaction(
                id=tx_id,
                datetime=ts,
                instrument=inst.symbol,
                type=kind,
                quantity=qty,
                price=per_contract,
                value=dollars(-value if long else value),
                effect="credit" if long else "debit",
                fees=dollars(fees.settlement_fee(kind, qty)),
                direction=state.direction,
            )
        )
    return tuple(out)


def settle_on_tick(book: Book, tick: Tick, fees: FeeSchedule) -> tuple[Transaction, ...]:
    """Settle at the closing tick's SPX and time."""
    return settle(book, underlying=tick.spx, ts=tick.ts, fees=fees)
