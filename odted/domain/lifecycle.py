"""Order lifecycle: the order object at placement, on a fill, and at its end.

Spec: api-walkthrough 6.0 (a dry-run answers with the all-zero id and no transactions,
fees the schedule estimate), 6.1 (a filled order carries `fill_price`,
`fill_price_effect`, `execution_price`, `slippage`, `fill_datetime`, its transactions,
and `fees` rolled up from them), 8.1 (a pending order carries the fee estimate and no
transactions), live-trading-api "Order lifecycle" (`pending`, `filled`, `canceled`,
`expired` at the close, `rejected` with `rejection_reason` after a failed fill-time
buying-power re-check; terminal statuses never change).

These are constructors of immutable `Order` values; the actor that owns the order
decides when to call them, commits, then applies the transactions to its `Book`.
"""

from __future__ import annotations

import datetime as _dt
from decimal import Decimal
from uuid import UUID

import msgspec

from odted.domain.fees import FeeSchedule
from odted.domain.fills import Fill, fill_transactions
from odted.domain.ids import DRY_RUN_ORDER_ID
from odted.domain.instruments import SPX
from odted.domain.ledger import Reservation
from odted.domain.money import ZERO, dollars, price
from odted.domain.orders import TERMINAL_STATUSES, Order, OrderDenied, OrderLeg, Ticket
from odted.domain.transactions import Transaction
from odted.domain.validation import Assessment

__all__ = [
    "Placement",
    "place_order",
    "dry_run_order",
    "fill_order",
    "cancel_order",
    "expire_order",
    "reject_order",
    "reservation_of",
]


class Placement(msgspec.Struct, frozen=True):
    """A placed order: the order as stored, the transactions of an immediate fill, and
    the reservation a pending order holds (`Book.reserve(order.id, reservation)`)."""

    order: Order
    transactions: tuple[Transaction, ...]
    reservation: Reservation


def _legs(ticket: Ticket) -> tuple[OrderLeg, ...]:
    return tuple(
        OrderLeg(instrument=leg.instrument.symbol, quantity=Decimal(leg.quantity), action=leg.action)
        for leg in ticket.legs
    )


def _base(assessment: Assessment, order_id: UUID, ts: _dt.datetime) -> Order:
    ticket = assessment.ticket
    return Order(
        id=order_id,
        datetime=ts,
        underlying=SPX,
        type=ticket.type,
        price=None if ticket.price is None else price(ticket.price),
        price_effect=ticket.price_effect,
        stop_trigger=None if ticket.stop_trigger is None else price(ticket.stop_trigger),
        fees=assessment.fees,
        status="pending",
        legs=_legs(ticket),
        buying_power_effect=assessment.buying_power_effect,
        updated_at=ts,
    )


def _filled(
    order: Order, ticket: Ticket, fill: Fill, transactions: tuple[Transaction, ...], ts: _dt.datetime
) -> Order:
    total_fees = ZERO
    for tx in transactions:
        total_fees += tx.fees
    return msgspec.structs.replace(
        order,
        status="filled",
        fees=dollars(total_fees),
        fill_price=fill.fill_price,
        fill_price_effect=fill.effect(ticket.price_effect),
        execution_price=fill.execution_price,
        slippage=price(fill.slippage),
        fill_datetime=ts,
        transactions=transactions,
        updated_at=ts,
    )


def place_order(
    assessment: Assessment, *, order_id: UUID, ts: _dt.datetime, fees: FeeSchedule
) -> Placement:
    """The order placed at `ts`: filled at once when the assessment says so, else pending."""
    order = _base(assessment, order_id, ts)
    fill = assessment.fill
    if fill is None:
        return Placement(order=order, transactions=(), reservation=assessment.reservation)
    txs = fill_transactions(assessment.ticket, fill, order_id=order_id, ts=ts, fees=fees)
    return Placement(
        order=_filled(order, assessment.ticket, fill, txs, ts),
        transactions=txs,
        reservation=Reservation(amount=ZERO),
    )


def dry_run_order(assessment: Assessment, *, ts: _dt.datetime) -> Order:
    """The dry-run answer: the same order, id all zeros, no transactions, estimated fees."""
    order = _base(assessment, DRY_RUN_ORDER_ID, ts)
    fill = assessment.fill
    if fill is None:
        return order
    return msgspec.structs.replace(
        _filled(order, assessment.ticket, fill, (), ts), fees=assessment.fees
    )


def fill_order(
    order: Order, ticket: Ticket, fill: Fill, *, ts: _dt.datetime, fees: FeeSchedule
) -> tuple[Order, tuple[Transaction, ...]]:
    """A pending order filled on the tick at `ts`, and its transactions."""
    _check_pending(order)
    txs = fill_transactions(ticket, fill, order_id=order.id, ts=ts, fees=fees)
    return _filled(order, ticket, fill, txs, ts), txs


def cancel_order(order: Order, *, ts: _dt.datetime) -> Order:
    _check_pending(order)
    return msgspec.structs.replace(order, status="canceled", updated_at=ts)


def expire_order(order: Order, *, ts: _dt.datetime) -> Order:
    _check_pending(order)
    return msgspec.structs.replace(order, status="expired", updated_at=ts)


def reject_order(order: Order, denied: OrderDenied, *, ts: _dt.datetime) -> Order:
    """A pending order whose fill failed its re-check (`recheck_fill`)."""
    _check_pending(order)
    return msgspec.structs.replace(
        order, status="rejected", rejection_reason=str(denied), updated_at=ts
    )


def _check_pending(order: Order) -> None:
    if order.status in TERMINAL_STATUSES:
        raise ValueError(f"order {order.id} is {order.status}; a terminal status never changes")


def reservation_of(order: Order, ticket: Ticket) -> Reservation:
    """What a stored pending order holds, rebuilt on recovery: the buying power of its
    `buying-power-effect` block (when it is a debit) and its closing legs' quantities --
    exactly what `place_order` reserved."""
    bpe = order.buying_power_effect
    amount = ZERO
    if bpe is not None and bpe.change > 0:
        amount = bpe.change
    closing = tuple(
        ((leg.instrument.symbol, leg.direction), leg.quantity)
        for leg in ticket.legs
        if not leg.opening
    )
    return Reservation(amount=amount, closing=closing)
