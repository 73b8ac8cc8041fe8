"""The strategy context: what a strategy program sees and may do, once per tick.

Spec: bots-api (a bot runs a pinned strategy live; `decision-log` returns the strategy's
`ctx.log()` / `ctx.signal()` entries in emission order), api-walkthrough Part 13 (a
strategy is compiled to a deterministic program). DESIGN.md: the bot-session actor
"steps its strategy program" on every tick.

`StrategyContext` is the whole interface between a program and the bot that runs it.
The bot actor implements it; a compiled builder program (`odted.domain.program`) and,
later, a strategy written in Python call it. It is deliberately small:

| member | what |
|---|---|
| `now` | market time (aware, UTC) of the tick being processed: never the wall clock |
| `tick` | the current `Tick` (SPX, VIX, the 0DTE chain) |
| `quote(legs)` | the combo quote of `legs` in the current tick (`pricing.quote_combo`), or None; shared between the sessions that ask for the same legs on one tick |
| `positions` | the session's open positions, as the positions endpoint shows them |
| `orders` | every order the strategy placed this session, in placement order, with its tag and intent |
| `place_order(request, *, intent, tag)` | place a limit order; the order id, or why it was denied |
| `cancel_order(order_id)` | cancel a pending order; None, or why it could not be |
| `log(message, **data)` | append a decision-log entry |
| `signal(name, data)` | append a named, structured decision-log entry (e.g. `entry`, `exit`) |

Rules a program relies on:
- Every call is synchronous and cheap. `place_order` validates at once (the order rules,
  then the bot's risk policy) and answers with the new order's id or an `OrderDenied`;
  the order is durable before the bot acts on the next tick.
- `intent` is `opening` or `closing`: it picks the re-pricing block (bots-api
  "Automatic re-pricing") that walks the order while it rests, and whether the risk
  limits on counts apply (a closing order is never refused by them).
- The bot re-prices resting orders by cancel+replace, which gives the replacement a new
  id. The replacement keeps the `tag` and `intent`, so a program follows its orders by
  tag, never by id: the order with a tag that is `pending` is the working one, and a
  tag with a `filled` order has filled (orders fill whole).
- A program never reads a clock, never sleeps, never draws randomness: stepped over the
  same ticks with the same answers, it makes the same decisions.

A program is an object with `initial_state()` and `step(state, ctx) -> state` (the same
state object when nothing changed). It may also offer `quiet_until(state, now)`: after a
step that changed nothing and recorded nothing, a time before which stepping `state`
again changes nothing and records nothing either, as long as the session's orders and
positions change only by re-pricing (a replacement keeps its tag and stays working), or
None. The bot then skips the program's steps until that time or such a change, and a
bot with nothing else to do sleeps through the ticks in between (`odted.runtime.watch`).
A program without it is stepped on every tick.

Strike selection (`select_strike`) is the builder's: the strike whose put or call is
nearest a target delta (unsigned), a number of points from spot (signed: -50 is 50
points below), or a premium (the option's mid). A strike whose quote is missing or not
a market (a non-positive ask, a negative bid, a crossed quote, or for delta a non-finite
delta) is skipped. Ties go to the further out-of-the-money strike (the lower strike for
puts, the higher for calls): the cheaper, less risky choice.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, Protocol
from uuid import UUID
from zoneinfo import ZoneInfo

import msgspec

from odted.domain.chain import OptionQuote, Tick
from odted.domain.orders import Order, OrderDenied, OrderRequest, TicketLeg
from odted.domain.pricing import ComboQuote
from odted.domain.positions import Position
from odted.domain.reprice import CLOSING, INTENTS, OPENING

__all__ = [
    "OPENING",
    "CLOSING",
    "INTENTS",
    "NEW_YORK",
    "STRIKE_METHODS",
    "StrategyOrder",
    "StrategyContext",
    "select_strike",
    "new_york",
]

NEW_YORK = ZoneInfo("America/New_York")
STRIKE_METHODS = ("delta", "points", "premium")


class StrategyOrder(msgspec.Struct, frozen=True):
    """An order the strategy placed (or a re-pricing replacement of one), as it is now."""

    order: Order
    intent: str
    tag: str

    @property
    def id(self) -> UUID:
        return self.order.id

    @property
    def status(self) -> str:
        return self.order.status


class StrategyContext(Protocol):
    """What a strategy program may see and do (see the module docstring)."""

    @property
    def now(self) -> _dt.datetime:
        """Market time of the current tick (aware, UTC)."""
        ...

    @property
    def tick(self) -> Tick:
        """The current tick."""
        ...

    @property
    def positions(self) -> Sequence[Position]:
        """Open positions, marked to the current tick."""
        ...

    @property
    def orders(self) -> Sequence[StrategyOrder]:
        """Every order the strategy placed this session, oldest first."""
        ...

    def quote(self, legs: tuple[TicketLeg, ...]) -> ComboQuote | None:
        """`quote_combo(legs, tick)`: the combo quote of `legs` now, or None."""
        ...

    def place_order(self, request: OrderRequest, *, intent: str, tag: str) -> UUID | OrderDenied:
        """Place `request` (a limit order) as `intent` under `tag`."""
        ...

    def cancel_order(self, order_id: UUID) -> OrderDenied | None:
        """Cancel a pending order of this strategy."""
        ...

    def log(self, message: str, **data: Any) -> None:
        """Append a decision-log entry: a sentence for people, `data` for machines."""
        ...

    def signal(self, name: str, data: dict[str, Any]) -> None:
        """Append a named, structured decision-log entry."""
        ...


def new_york(now: _dt.datetime) -> _dt.datetime:
    """`now` on the New York wall clock (session times are New York times)."""
    return now.astimezone(NEW_YORK)


def _is_market(q: OptionQuote) -> bool:
    return q.ask > 0 and q.bid >= 0 and q.bid <= q.ask


def select_strike(tick: Tick, right: str, method: str, value: Decimal) -> int | None:
    """The strike the builder's strike rule picks in `tick`, or None when no strike of
    that side is quoted. `right` is `"C"` or `"P"`; `method` one of `STRIKE_METHODS`."""
    call = right == "C"
    best: tuple[Any, int] | None = None
    best_strike: int | None = None
    if method == "delta":
        target_f = float(value)
    elif method == "points":
        target = tick.spx + value
    elif method == "premium":
        target = value
    else:
        raise ValueError(f"unknown strike method {method!r}")
    for sq in tick.chain:
        q = sq.call if call else sq.put
        if not _is_market(q):
            continue
        k = sq.strike
        if method == "delta":
            if not math.isfinite(q.delta):
                continue
            distance: Any = abs(abs(q.delta) - target_f)
        elif method == "points":
            distance = abs(k - target)
        else:
            distance = abs((q.bid + q.ask) / 2 - target)
        key = (distance, -k if call else k)  # ties: further out of the money
        if best is None or key < best:
            best = key
            best_strike = k
    return best_strike
