"""Order validation, in exactly the spec's order, and the replacement rules.

Spec: api-walkthrough 6.1 "Validation order" (1 type and leg shape, market and stop
single-leg; 2 required fields; 3 SPX tick rules; 4 the max-profit cap, skipped when
unbounded; 5 market data for every leg; 6 stops not already triggered; 7 buying power
including all pending orders), 6.0 (a dry-run runs all of it identically),
live-trading-api "Cancel and replace" (only `price` and `price_effect` may change;
replacing a non-limit order is a 400). The codes and their fields are tabled in
`odted.domain.orders`.

Two halves, so a pending order's stateless half can be rebuilt from its request alone:
- `parse_order(request)`: steps 1-4, a pure function of the request -> `Ticket`.
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
from math import gcd
from uuid import UUID

import msgspec

from odted.domain.buying_power import BuyingPowerEffect, buying_power_effect
from odted.domain.chain import Tick
from odted.domain.fees import FeeSchedule
from odted.domain.fills import Fill, decide, is_triggered, projected_net
from odted.domain.instruments import SPX, SPXW, InvalidInstrument, parse_osi
from odted.domain.ledger import Book, PositionKey, Reservation
from odted.domain.money import HUNDRED, ZERO, dollars, price
from odted.domain.orders import (
    MAX_LEGS,
    ORDER_TYPES,
    PRICE_EFFECTS,
    DenialCode,
    Order,
    OrderDenied,
    OrderRequest,
    Ticket,
    TicketLeg,
)
from odted.domain.payoff import extremes
from odted.domain.pricing import ComboQuote, combo_from_quotes, leg_quotes
from odted.domain.ticks import ceil_to_tick, floor_to_tick, tick_for

__all__ = [
    "Assessment",
    "parse_order",
    "check_order",
    "validate_order",
    "check_replacement",
    "recheck_fill",
]

C = DenialCode
_MILLI = Decimal(1000)
_ACTIONS = {  # action -> (sign, direction, opening)
    "buy to open": (1, "long", True),
    "sell to open": (-1, "short", True),
    "buy to close": (1, "short", False),
    "sell to close": (-1, "long", False),
}


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


def _deny(code: str, message: str, field: str | None = None) -> OrderDenied:
    return OrderDenied(code=code, message=message, field=field)


# -- steps 1-4 ----------------------------------------------------------------------


def parse_order(request: OrderRequest) -> Ticket | OrderDenied:
    """Steps 1-4 of the validation order: shape, required fields, tick, max-profit cap."""
    kind = request.type
    if kind not in ORDER_TYPES:
        return _deny(C.INVALID_ORDER_TYPE, f"type must be market, limit or stop, not {kind!r}", "type")
    if request.underlying is not None and request.underlying != SPX:
        return _deny(
            C.INVALID_UNDERLYING,
            f"underlying must be SPX (or omitted), not {request.underlying!r}",
            "underlying",
        )
    legs = request.legs
    if not legs:
        return _deny(C.NO_LEGS, "legs must hold at least one leg", "legs")
    if len(legs) > MAX_LEGS:
        return _deny(
            C.TOO_MANY_LEGS,
            f"an order has at most {MAX_LEGS} legs, not {len(legs)}; split it into several orders",
            "legs",
        )
    if kind != "limit" and len(legs) > 1:
        return _deny(
            C.MULTI_LEG_NOT_LIMIT,
            f"a {kind} order has exactly one leg; send a multi-leg order as type limit",
            "legs",
        )
    parsed = []
    seen: dict[str, int] = {}
    buys = 0
    for i, leg in enumerate(legs):
        try:
            instrument = parse_osi(leg.instrument)
        except InvalidInstrument as exc:
            where = f"legs[{i}]"
            return _deny(C.INVALID_INSTRUMENT, f"{where}.instrument {exc}", f"{where}.instrument")
        if instrument.root != SPXW:
            where = f"legs[{i}]"
            return _deny(
                C.UNSUPPORTED_INSTRUMENT,
                f"{where}.instrument {leg.instrument!r}: only SPX 0DTE options (root "
                f"SPXW) trade here",
                f"{where}.instrument",
            )
        shape = _ACTIONS.get(leg.action)
        if shape is None:
            where = f"legs[{i}]"
            return _deny(
                C.INVALID_ACTION,
                f"{where}.action must be one of 'buy to open', 'sell to open', "
                f"'buy to close', 'sell to close', not {leg.action!r}",
                f"{where}.action",
            )
        q = leg.quantity
        if not (q.is_finite() and q > 0 and q == q.to_integral_value()):
            where = f"legs[{i}]"
            return _deny(
                C.INVALID_QUANTITY,
                f"{where}.quantity must be a positive whole number of contracts, not '{q}'",
                f"{where}.quantity",
            )
        if instrument.symbol in seen:
            where = f"legs[{i}]"
            return _deny(
                C.DUPLICATE_LEG,
                f"{where}.instrument repeats legs[{seen[instrument.symbol]}]; send one leg "
                f"per instrument with the total quantity",
                f"{where}.instrument",
            )
        seen[instrument.symbol] = i
        if shape[0] > 0:
            buys += 1
        parsed.append((instrument, leg.action, int(q), shape))

    # Step 2: required fields.
    if kind == "limit" and request.price is None:
        return _deny(C.PRICE_REQUIRED, "a limit order needs price", "price")
    if kind == "stop" and request.stop_trigger is None:
        return _deny(C.STOP_TRIGGER_REQUIRED, "a stop order needs stop_trigger", "stop_trigger")
    effect = request.price_effect
    if kind != "market" and effect is None:
        return _deny(
            C.PRICE_EFFECT_REQUIRED, f"a {kind} order needs price_effect debit or credit", "price_effect"
        )
    if effect is not None and effect not in PRICE_EFFECTS:
        return _deny(
            C.INVALID_PRICE_EFFECT, f"price_effect must be debit or credit, not {effect!r}", "price_effect"
        )
    if kind != "limit" and request.price is not None:
        return _deny(
            C.UNEXPECTED_FIELD,
            f"a {kind} order takes no price; remove price"
            + (" (a stop fills at the mid once stop_trigger is reached)" if kind == "stop" else ""),
            "price",
        )
    if kind != "stop" and request.stop_trigger is not None:
        return _deny(
            C.UNEXPECTED_FIELD, f"a {kind} order takes no stop_trigger; remove it", "stop_trigger"
        )
    if request.price is not None and not (request.price.is_finite() and request.price >= 0):
        return _deny(
            C.INVALID_PRICE,
            f"price must be a non-negative decimal such as '1.05', not '{request.price}'; "
            "say debit or credit with price_effect",
            "price",
        )
    trigger = request.stop_trigger
    if trigger is not None and not (trigger.is_finite() and trigger >= 0):
        return _deny(
            C.INVALID_STOP_TRIGGER,
            f"stop_trigger must be a non-negative decimal such as '12.00', not '{trigger}'",
            "stop_trigger",
        )
    all_buys = buys == len(parsed)
    all_sells = not buys
    if effect is None:  # a market order's effect is its leg's
        effect = "debit" if all_buys else "credit"
    if all_buys and effect == "credit":
        return _deny(
            C.PRICE_EFFECT_MISMATCH,
            "every leg buys, so the order is a debit; send price_effect debit",
            "price_effect",
        )
    if all_sells and effect == "debit":
        return _deny(
            C.PRICE_EFFECT_MISMATCH,
            "every leg sells, so the order is a credit; send price_effect credit",
            "price_effect",
        )

    # Step 3: SPX ticks.
    n = len(parsed)
    if request.price is not None:
        denied = _tick_check(request.price, n, "price", C.PRICE_OFF_TICK)
        if denied is not None:
            return denied
    if trigger is not None:
        denied = _tick_check(trigger, n, "stop_trigger", C.STOP_TRIGGER_OFF_TICK)
        if denied is not None:
            return denied

    units = 0
    for _, _, q, _ in parsed:
        units = gcd(units, q)
    ticket_legs = tuple([
        TicketLeg(
            index=i,
            instrument=instrument,
            action=action,
            quantity=q,
            ratio=q // units,
            sign=shape[0],
            direction=shape[1],
            opening=shape[2],
            strike=instrument.chain_strike,
        )
        for i, (instrument, action, q, shape) in enumerate(parsed)
    ])
    holdings = tuple([
        (instrument.expiry, instrument.right, instrument.strike_milli, shape[0] * q)
        for instrument, _, q, shape in parsed
    ])
    sign = 1 if effect == "debit" else -1
    ticket = Ticket(
        type=kind,
        legs=ticket_legs,
        units=units,
        price_effect=effect,
        price=request.price,
        stop_trigger=trigger,
        limit=None if request.price is None else sign * request.price,
        trigger=None if trigger is None else sign * trigger,
        request=request,
        holdings=holdings,
    )

    # Step 4: the max-profit cap.
    if kind == "limit":
        denied = _cap_check(ticket)
        if denied is not None:
            return denied
    return ticket


def _tick_check(value: Decimal, legs: int, field: str, code: str) -> OrderDenied | None:
    tick = tick_for(value, legs)
    if value % tick == 0:
        return None
    if legs > 1:
        shape = "a multi-leg order"
    elif tick == Decimal("0.10"):
        shape = "a single-leg order above $3.00"
    else:
        shape = "a single-leg order at or below $3.00"
    lo = price(floor_to_tick(value, tick))
    hi = price(ceil_to_tick(value, tick))
    return _deny(
        code,
        f"{field} {value} is not on the ${tick} tick of {shape}; use {lo} or {hi}",
        field,
    )


def _cap_check(ticket: Ticket) -> OrderDenied | None:
    """Step 4: a debit cannot exceed the most the structure can be worth at expiration,
    a credit the most it can cost; skipped when that is unbounded or legs differ in
    expiry (calendars)."""
    legs = ticket.legs
    if any(leg.instrument.expiry != legs[0].instrument.expiry for leg in legs):
        return None
    assert ticket.price is not None
    calls: dict[int, int] = {}
    puts: dict[int, int] = {}
    net_calls = 0
    for leg in legs:
        qty = leg.sign * leg.ratio
        if leg.instrument.right == "C":
            calls[leg.instrument.strike_milli] = qty
            net_calls += qty
        else:
            puts[leg.instrument.strike_milli] = qty
    lowest: int | None
    highest: int | None
    lowest, highest = extremes(calls, puts)
    if net_calls > 0:
        highest = None
    elif net_calls < 0:
        lowest = None
    amount = ticket.price * _MILLI
    if ticket.price_effect == "debit":
        if highest is None or amount <= highest:
            return None
        cap = Decimal(highest) / _MILLI
        if cap <= 0:
            msg = (
                "this structure is worth nothing or less at expiration, so it cannot be "
                "bought for a debit; send price_effect credit"
            )
        else:
            msg = (
                f"price {ticket.price} debit is more than the {price(cap)} this structure "
                f"can be worth at expiration; lower price to {price(cap)} or less"
            )
    else:
        if lowest is None or amount <= -lowest:
            return None
        cap = Decimal(-lowest) / _MILLI
        if cap <= 0:
            msg = (
                "this structure is worth nothing or more at expiration, so it cannot be "
                "sold for a credit; send price_effect debit"
            )
        else:
            msg = (
                f"price {ticket.price} credit is more than the {price(cap)} this structure "
                f"can cost at expiration; lower price to {price(cap)} or less"
            )
    return _deny(C.PRICE_EXCEEDS_MAX_PROFIT, msg, "price")


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
        return _deny(
            C.MARKET_DATA_UNAVAILABLE,
            "no market data has arrived yet; retry in a second",
            "legs[0].instrument",
        )
    for leg in legs:
        if leg.instrument.expiry != session_date:
            return _deny(
                C.MARKET_DATA_UNAVAILABLE,
                f"legs[{leg.index}].instrument expires {leg.instrument.expiry}; only "
                f"options expiring {session_date} are quoted in this session",
                f"legs[{leg.index}].instrument",
            )
    quotes = leg_quotes(legs, tick)
    if isinstance(quotes, int):
        leg = legs[quotes]
        return _deny(
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
        return _deny(
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
            return _deny(
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
    return _deny(
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
        return _deny(
            C.REPLACE_NOT_LIMIT,
            f"only limit orders can be replaced; this one is a {original.type} order -- "
            "cancel it and place a new one",
            "order_id",
        )
    if request.type != original.type:
        return _deny(
            C.REPLACE_TYPE_CHANGED,
            f"a replacement keeps type {original.type}; only price and price_effect may change",
            "type",
        )
    if len(request.legs) != len(original.legs) or any(
        a.instrument != b.instrument or a.action != b.action or a.quantity != b.quantity
        for a, b in zip(request.legs, original.legs)
    ):
        return _deny(
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
            return _deny(
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
