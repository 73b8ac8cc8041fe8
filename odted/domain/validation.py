"""Order validation, in exactly the spec's order, and the replacement rules.

Spec: api-walkthrough 6.1 "Validation order" (1 type and leg shape, market and stop
single-leg; 2 required fields; 3 SPX tick rules; 4 the max-profit cap, skipped when
unbounded; 5 market data for every leg; 6 stops not already triggered; 7 buying power
including all pending orders), 6.0 (a dry-run runs all of it identically),
live-trading-api "Cancel and replace" (only `price` and `price_effect` may change;
replacing a non-limit order is a 400). The codes and their fields are tabled in
`odted.domain.orders`.

Two halves, so a pending order's stateless half can be rebuilt from its request alone:
- `parse_order(request)` (in `odted.domain.tickets`, re-exported here): steps 1-4, a
  pure function of the request -> `Ticket`.
- `check_order(ticket, ...)`: steps 5-7 against a tick and a book -> `Assessment`
  (the combo quote, the fill if it fills now, the fee estimate, the
  `buying-power-effect` block, and what a pending order reserves).
`validate_order` runs both. `recheck_fill` is the fill-time re-check (DESIGN.md: a fill
re-checks buying power; failing makes the order `rejected`).

The buying-power block of an order that fills at once uses its fill; of a pending
order, the worst price it can fill at (its limit; a stop's trigger plus slippage) --
the spec's 8.1 example projects the credit put vertical at its 1.50 limit.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from uuid import UUID

import msgspec

from odted.domain.buying_power import BuyingPowerEffect, buying_power_effect
from odted.domain.chain import Tick
from odted.domain.fees import FeeSchedule
from odted.domain.fills import Fill, decide, is_triggered, projected_net
from odted.domain.ledger import Book, PositionKey, Reservation
from odted.domain.money import HUNDRED, ZERO, dollars, price
from odted.domain.orders import DenialCode, Order, OrderDenied, OrderRequest, Ticket
from odted.domain.pricing import ComboQuote, combo_from_quotes, leg_quotes
from odted.domain.tickets import deny, parse_order

__all__ = [
    "Assessment",
    "parse_order",
    "check_order",
    "validate_order",
    "check_replacement",
    "recheck_fill",
]

C = DenialCode


class Assessment(msgspec.Struct, frozen=True):
    """An order that passed every check, priced against the tick it was checked on.

    `fill` is set when it fills on that tick (a market order always does). `fees` is
    the schedule estimate. `reservation` is what a pending order holds (zero when
    `fill` is set: the fill itself moves the cash).
    """

    ticket: Ticket
    combo: ComboQuote
    fill: Fill | None
    fees: Decimal
    buying_power_effect: BuyingPowerEffect
    reservation: Reservation


# -- steps 5-7 ----------------------------------------------------------------------


def check_order(
    ticket: Ticket,
    *,
    tick: Tick | None,
    session_date: date,
    book: Book,
    fees: FeeSchedule,
    slippage: Decimal,
    replacing: UUID | None = None,
) -> Assessment | OrderDenied:
    """Steps 5-7 against the current tick and book. `replacing` is the id of an order
    this one replaces: its reservation and pending closes are treated as released."""
    legs = ticket.legs
    # Step 5: market data for every leg.
    if tick is None:
        return deny(
            C.MARKET_DATA_UNAVAILABLE,
            "no market data has arrived yet; retry in a second",
            "legs[0].instrument",
        )
    for leg in legs:
        if leg.instrument.expiry != session_date:
            return deny(
                C.MARKET_DATA_UNAVAILABLE,
                f"legs[{leg.index}].instrument expires {leg.instrument.expiry}; only "
                f"options expiring {session_date} are quoted in this session",
                f"legs[{leg.index}].instrument",
            )
    quotes = leg_quotes(legs, tick)
    if isinstance(quotes, int):
        leg = legs[quotes]
        return deny(
            C.MARKET_DATA_UNAVAILABLE,
            f"legs[{quotes}].instrument {leg.instrument.symbol!r} has no quote at "
            f"{tick.ts:%Y-%m-%dT%H:%M:%SZ}; choose a strike the chain lists",
            f"legs[{quotes}].instrument",
        )
    combo = combo_from_quotes(legs, quotes)

    # Step 6: a stop must not be triggered already.
    if ticket.type == "stop" and is_triggered(ticket, combo):
        mid = price(abs(combo.mid))
        if ticket.price_effect == "debit":
            fix = f"set stop_trigger below the mid {mid}"
            side = "at or below"
        else:
            fix = f"set stop_trigger above the mid {mid}"
            side = "at or above"
        return deny(
            C.STOP_WOULD_TRIGGER,
            f"the mid {mid} is already {side} stop_trigger {ticket.stop_trigger}, so the "
            f"stop would execute immediately; {fix}",
            "stop_trigger",
        )

    # Step 6b: closing legs need the position, less what other pending orders close.
    closing: list[tuple[PositionKey, int]] = []
    for leg in legs:
        if leg.opening:
            continue
        key = (leg.instrument.symbol, leg.direction)
        free = book.open_quantity(key) - book.pending_closing(key, exclude=replacing)
        if leg.quantity > free:
            return deny(
                C.INSUFFICIENT_POSITION,
                f"legs[{leg.index}] would {leg.action} {leg.quantity} but {max(free, 0)} "
                f"{leg.direction} {leg.instrument.symbol!r} "
                f"{'is' if free == 1 else 'are'} open and not already being closed; "
                f"lower the quantity or use '{'buy' if leg.sign > 0 else 'sell'} to open'",
                f"legs[{leg.index}].quantity",
            )
        closing.append((key, leg.quantity))

    # Step 7: buying power, pending orders included.
    fill = decide(ticket, combo, slippage) if ticket.type != "stop" else None
    net = fill.net if fill is not None else projected_net(ticket, slippage, combo)
    fee_estimate = dollars(_fees(ticket, fees))
    current = book.available_buying_power(exclude=replacing)
    effect, change = _effect(ticket, book, net, fee_estimate, current)
    if change > 0 and current - change < 0:
        return _insufficient(change, current)
    reservation = Reservation(
        amount=ZERO if fill is not None or change <= 0 else change,
        closing=() if fill is not None else tuple(closing),
    )
    return Assessment(
        ticket=ticket,
        combo=combo,
        fill=fill,
        fees=fee_estimate,
        buying_power_effect=effect,
        reservation=reservation,
    )


def _fees(ticket: Ticket, fees: FeeSchedule) -> Decimal:
    total = ZERO
    for leg in ticket.legs:
        total += fees.option_rate(leg.action) * leg.quantity
    return total


def _effect(
    ticket: Ticket, book: Book, net: Decimal, fees: Decimal, current: Decimal
) -> tuple[BuyingPowerEffect, Decimal]:
    before = book.maintenance
    after = book.maintenance_with(ticket.holdings)
    margin_change = after - before
    change = margin_change + net * HUNDRED * ticket.units + fees
    return buying_power_effect(current=current, margin_change=margin_change, change=change), change


def _insufficient(change: Decimal, current: Decimal) -> OrderDenied:
    return deny(
        C.INSUFFICIENT_BUYING_POWER,
        f"this order needs {dollars(change)} of buying power and {dollars(current)} is "
        "available (pending orders included); lower the quantity, choose a defined-risk "
        "structure, or cancel pending orders",
    )


def validate_order(
    request: OrderRequest,
    *,
    tick: Tick | None,
    session_date: date,
    book: Book,
    fees: FeeSchedule,
    slippage: Decimal,
    replacing: UUID | None = None,
) -> Assessment | OrderDenied:
    """The whole validation order (steps 1-7) of `POST .../orders` and its dry-run."""
    ticket = parse_order(request)
    if isinstance(ticket, OrderDenied):
        return ticket
    return check_order(
        ticket,
        tick=tick,
        session_date=session_date,
        book=book,
        fees=fees,
        slippage=slippage,
        replacing=replacing,
    )


# -- replacement and fill-time re-check ------------------------------------------------


def check_replacement(original: Order, request: OrderRequest) -> OrderDenied | None:
    """The cancel+replace rules: the original must be a limit order, and only `price`
    and `price_effect` may differ. (Whether it is still pending -- a 409 -- is the
    caller's check.) The new terms then go through `validate_order` with
    `replacing=original.id`."""
    if original.type != "limit":
        return deny(
            C.REPLACE_NOT_LIMIT,
            f"only limit orders can be replaced; this one is a {original.type} order -- "
            "cancel it and place a new one",
            "order_id",
        )
    if request.type != original.type:
        return deny(
            C.REPLACE_TYPE_CHANGED,
            f"a replacement keeps type {original.type}; only price and price_effect may change",
            "type",
        )
    if len(request.legs) != len(original.legs) or any(
        a.instrument != b.instrument or a.action != b.action or a.quantity != b.quantity
        for a, b in zip(request.legs, original.legs, strict=True)
    ):
        return deny(
            C.REPLACE_LEGS_CHANGED,
            "a replacement keeps the legs (instruments, actions, quantities) of the order "
            "it replaces; only price and price_effect may change",
            "legs",
        )
    return None


def recheck_fill(
    ticket: Ticket, fill: Fill, *, book: Book, fees: FeeSchedule, order_id: UUID
) -> OrderDenied | None:
    """The fill-time re-check of a pending order against the book as it is now: the
    positions its closing legs need, and buying power with its own reservation freed."""
    for leg in ticket.legs:
        if leg.opening:
            continue
        key = (leg.instrument.symbol, leg.direction)
        free = book.open_quantity(key) - book.pending_closing(key, exclude=order_id)
        if leg.quantity > free:
            return deny(
                C.INSUFFICIENT_POSITION,
                f"legs[{leg.index}] would {leg.action} {leg.quantity} but only "
                f"{max(free, 0)} {leg.direction} {leg.instrument.symbol!r} remain open",
                f"legs[{leg.index}].quantity",
            )
    current = book.available_buying_power(exclude=order_id)
    _, change = _effect(ticket, book, fill.net, dollars(_fees(ticket, fees)), current)
    if change > 0 and current - change < 0:
        return _insufficient(change, current)
    return None
