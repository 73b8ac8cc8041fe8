"""Order parsing: validation steps 1-4, a pure function of the request.

Spec: api-walkthrough 6.1 "Validation order" steps 1-4 (1 order type and leg shape,
market and stop orders single-leg; 2 `price` required for limit, `stop_trigger` for
stop, `price_effect` for both; 3 the SPX option tick rules; 4 a limit price cannot
exceed the structure's maximum profit -- a $5-wide vertical caps at $5.00 -- skipped when
it is unbounded: naked long calls, ratio backspreads, calendars), "Reference: leg
actions", "Reference: instrument strings". The codes are tabled in
`odted.domain.orders`.

`parse_order(request)` turns a request into a `Ticket` or an `OrderDenied`. It reads
nothing but the request, so a pending order's ticket is rebuilt from its stored request
on recovery, exactly. Steps 5-7 (market data, stop immediacy, buying power) need a tick
and a book: `odted.domain.validation.check_order`.

The cap (step 4) in signed terms: the structure's payoff at expiration per unit of its
ratio ranges over [lowest, highest] (`payoff.extremes`); a debit may not exceed
`highest`, a credit may not exceed `-lowest`. So a credit asked for a structure that can
never lose (or a debit for one that can never gain) is refused here too, with a message
saying to flip `price_effect`.
"""

from __future__ import annotations

from decimal import Decimal
from math import gcd

from odted.domain.instruments import SPX, SPXW, InvalidInstrument, parse_osi
from odted.domain.money import price
from odted.domain.orders import (
    MAX_LEGS,
    ORDER_TYPES,
    PRICE_EFFECTS,
    DenialCode,
    OrderDenied,
    OrderRequest,
    Ticket,
    TicketLeg,
)
from odted.domain.payoff import extremes
from odted.domain.ticks import ceil_to_tick, floor_to_tick, tick_for

__all__ = ["parse_order", "deny", "MAX_PRICE", "MAX_QUANTITY"]

MAX_PRICE = Decimal(100_000)
"""Prices and stop triggers are below this: no SPX option structure is worth as much as
the index, and bounded operands keep the tick arithmetic within the decimal context."""
MAX_QUANTITY = 100_000
"""Contracts per leg at most; a bound before a quantity becomes an int (1E+999999999
would be a billion digits)."""

C = DenialCode
_MILLI = Decimal(1000)
_ACTIONS = {  # action -> (sign, direction, opening)
    "buy to open": (1, "long", True),
    "sell to open": (-1, "short", True),
    "buy to close": (1, "short", False),
    "sell to close": (-1, "long", False),
}


def deny(code: str, message: str, field: str | None = None) -> OrderDenied:
    """An `OrderDenied` value."""
    return OrderDenied(code=code, message=message, field=field)


def parse_order(request: OrderRequest) -> Ticket | OrderDenied:
    """Steps 1-4 of the validation order: shape, required fields, tick, max-profit cap."""
    kind = request.type
    if kind not in ORDER_TYPES:
        return deny(C.INVALID_ORDER_TYPE, f"type must be market, limit or stop, not {kind!r}", "type")
    if request.underlying is not None and request.underlying != SPX:
        return deny(
            C.INVALID_UNDERLYING,
            f"underlying must be SPX (or omitted), not {request.underlying!r}",
            "underlying",
        )
    legs = request.legs
    if not legs:
        return deny(C.NO_LEGS, "legs must hold at least one leg", "legs")
    if len(legs) > MAX_LEGS:
        return deny(
            C.TOO_MANY_LEGS,
            f"an order has at most {MAX_LEGS} legs, not {len(legs)}; split it into several orders",
            "legs",
        )
    if kind != "limit" and len(legs) > 1:
        return deny(
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
            return deny(C.INVALID_INSTRUMENT, f"{where}.instrument {exc}", f"{where}.instrument")
        if instrument.root != SPXW:
            where = f"legs[{i}]"
            return deny(
                C.UNSUPPORTED_INSTRUMENT,
                f"{where}.instrument {leg.instrument!r}: only SPX 0DTE options (root "
                f"SPXW) trade here",
                f"{where}.instrument",
            )
        shape = _ACTIONS.get(leg.action)
        if shape is None:
            where = f"legs[{i}]"
            return deny(
                C.INVALID_ACTION,
                f"{where}.action must be one of 'buy to open', 'sell to open', "
                f"'buy to close', 'sell to close', not {leg.action!r}",
                f"{where}.action",
            )
        q = leg.quantity
        if not (q.is_finite() and 0 < q <= MAX_QUANTITY and q == q.to_integral_value()):
            where = f"legs[{i}]"
            return deny(
                C.INVALID_QUANTITY,
                f"{where}.quantity must be a positive whole number of contracts, at most "
                f"{MAX_QUANTITY}, not '{q}'",
                f"{where}.quantity",
            )
        if instrument.symbol in seen:
            where = f"legs[{i}]"
            return deny(
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
        return deny(C.PRICE_REQUIRED, "a limit order needs price", "price")
    if kind == "stop" and request.stop_trigger is None:
        return deny(C.STOP_TRIGGER_REQUIRED, "a stop order needs stop_trigger", "stop_trigger")
    effect = request.price_effect
    if kind != "market" and effect is None:
        return deny(
            C.PRICE_EFFECT_REQUIRED, f"a {kind} order needs price_effect debit or credit", "price_effect"
        )
    if effect is not None and effect not in PRICE_EFFECTS:
        return deny(
            C.INVALID_PRICE_EFFECT, f"price_effect must be debit or credit, not {effect!r}", "price_effect"
        )
    if kind != "limit" and request.price is not None:
        return deny(
            C.UNEXPECTED_FIELD,
            f"a {kind} order takes no price; remove price"
            + (" (a stop fills at the mid once stop_trigger is reached)" if kind == "stop" else ""),
            "price",
        )
    if kind != "stop" and request.stop_trigger is not None:
        return deny(
            C.UNEXPECTED_FIELD, f"a {kind} order takes no stop_trigger; remove it", "stop_trigger"
        )
    if request.price is not None and not (request.price.is_finite() and 0 <= request.price < MAX_PRICE):
        return deny(
            C.INVALID_PRICE,
            f"price must be a non-negative decimal below {MAX_PRICE} such as '1.05', not "
            f"'{request.price}'; say debit or credit with price_effect",
            "price",
        )
    trigger = request.stop_trigger
    if trigger is not None and not (trigger.is_finite() and 0 <= trigger < MAX_PRICE):
        return deny(
            C.INVALID_STOP_TRIGGER,
            f"stop_trigger must be a non-negative decimal below {MAX_PRICE} such as '12.00', "
            f"not '{trigger}'",
            "stop_trigger",
        )
    all_buys = buys == len(parsed)
    all_sells = not buys
    if effect is None:  # a market order's effect is its leg's
        effect = "debit" if all_buys else "credit"
    if all_buys and effect == "credit":
        return deny(
            C.PRICE_EFFECT_MISMATCH,
            "every leg buys, so the order is a debit; send price_effect debit",
            "price_effect",
        )
    if all_sells and effect == "debit":
        return deny(
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
    return deny(
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
    return deny(C.PRICE_EXCEEDS_MAX_PROFIT, msg, "price")
