"""The bot risk policy and its checks: deny, never throw.

Spec: bots-api "What a bot is" and "Create a bot" (the risk-policy fields and their
bounds: `max_daily_loss_pct` 0.0050-0.5000, `max_open_positions` 1-100,
`max_open_orders` 1-50, `data_staleness_threshold_ms` 500-10000, `auto_pause_on_error`,
`error_budget` 0-100; when a running session's drawdown reaches `max_daily_loss_pct` the
bot cancels its working orders, closes its positions at market and ends `halted`).

Defaults (the spec names none; these are odted's, chosen for a 0DTE spread bot):

| field                        | default  | why |
|------------------------------|----------|-----|
| `max_daily_loss_pct`         | `0.0500` | 5% of the session's starting NLV; a defined-risk spread bot rarely needs more |
| `max_open_positions`         | 10       | five verticals or two iron condors and change (positions are per instrument and direction) |
| `max_open_orders`            | 10       | a few entries and exits working at once, with room for re-pricing |
| `data_staleness_threshold_ms`| 3000     | three missed one-second ticks |
| `auto_pause_on_error`        | true     | an unattended bot that keeps failing should stop, not keep trying |
| `error_budget`               | 5        | a few transient failures are tolerated before pausing |

The checks (`OrderDenied` values with the `RiskCode` codes, or None):

- `check_new_order`: an *opening* order is refused when the pending orders would exceed
  `max_open_orders` or the positions it opens would take the count past
  `max_open_positions`. A *closing* order is never refused by the counts: a bot must
  always be able to get out. A replacement is not a new order.
- `check_staleness`: no new orders (opening or closing) while the latest tick arrived
  more than `data_staleness_threshold_ms` ago. Cancels are never refused.
- `record_error`: counts errors; past `error_budget` (the count exceeds it) with
  `auto_pause_on_error` the session halts.
- `DrawdownGuard`: the drawdown rule, below.

The drawdown rule. `drawdown = (start NLV - robust NLV) / start NLV`, where the start NLV
is the session's NLV when it began and the robust NLV is cash plus every open position
at its *robust mark*, times 100 and its signed quantity. A position's robust mark is
the mid of its current quote when that quote is sane, and otherwise its last robust
mark (or, never marked yet, its last ledger mark, which is its entry price). A quote is
sane when all of these hold:

1. `0 <= bid < ask` (a crossed, locked or zero-width quote is not a market);
2. `ask - bid <= max(2.00, 25% of the mid)` (an absurdly wide quote, e.g. 0.05 x 50.00,
   says nothing about value);
3. `ask >= intrinsic - max(2.00, 2% of intrinsic)`, with intrinsic `max(0, S - K)` for a
   call and `max(0, K - S)` for a put at the tick's SPX `S` (a deep in-the-money option
   quoted near zero is garbage, not a gift);
4. `bid <= S` for a call and `bid <= K` for a put (no option is worth more).

A session halts when the drawdown is at or beyond `max_daily_loss_pct` on
`confirm_ticks` consecutive ticks (default 3, i.e. three market seconds). One garbage
quote is thus stopped twice: by the sanity rules, and, if it looks sane, by the
persistence requirement. A real crash moves every quote consistently and keeps the
drawdown past the limit, so it halts three ticks after the breach. Ticks that reject a
held position's quote report it (`DrawdownReading.suspect`) so the operator can see
that marks are stale.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Iterable
from decimal import Decimal
from functools import partial

import msgspec

from odted.domain.chain import OptionQuote, Tick
from odted.domain.ledger import Book
from odted.domain.orders import OrderDenied

__all__ = [
    "RiskPolicy",
    "RiskCode",
    "Denied",
    "risk_errors",
    "check_new_order",
    "check_staleness",
    "ErrorBudget",
    "record_error",
    "Holding",
    "holdings_of",
    "is_sane_quote",
    "sane_mid",
    "DrawdownGuard",
    "DrawdownReading",
    "DRAWDOWN_CONFIRM_TICKS",
]

Denied = OrderDenied
"""A risk denial is an order denial with a `RiskCode` code."""

DRAWDOWN_CONFIRM_TICKS = 3
_HUNDRED = Decimal(100)
_ZERO = Decimal(0)
_HALF = Decimal("0.5")
_WIDTH_FLOOR = Decimal("2.00")
_WIDTH_SHARE = Decimal("0.25")
_INTRINSIC_FLOOR = Decimal("2.00")
_INTRINSIC_SHARE = Decimal("0.02")


class RiskCode:
    """The codes of risk denials and halts."""

    MAX_OPEN_ORDERS = "max_open_orders"
    MAX_OPEN_POSITIONS = "max_open_positions"
    STALE_DATA = "stale_data"
    MAX_DAILY_LOSS = "max_daily_loss"
    ERROR_BUDGET_EXHAUSTED = "error_budget_exhausted"


class RiskPolicy(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A bot's risk policy, frozen into each session at its start (defaults above)."""

    max_daily_loss_pct: Decimal = Decimal("0.0500")
    max_open_positions: int = 10
    max_open_orders: int = 10
    data_staleness_threshold_ms: int = 3000
    auto_pause_on_error: bool = True
    error_budget: int = 5


def _int_in(value: object, lo: int, hi: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi


def risk_errors(policy: RiskPolicy) -> dict[str, str]:
    """Every out-of-bounds field of `policy` (for `400 invalid_input`), all at once."""
    errors: dict[str, str] = {}
    pct = policy.max_daily_loss_pct
    if not (isinstance(pct, Decimal) and pct.is_finite()
            and Decimal("0.0050") <= pct <= Decimal("0.5000")):
        errors["max_daily_loss_pct"] = "must be a decimal from 0.0050 to 0.5000, such as \"0.0200\""
    if not _int_in(policy.max_open_positions, 1, 100):
        errors["max_open_positions"] = "must be a whole number from 1 to 100"
    if not _int_in(policy.max_open_orders, 1, 50):
        errors["max_open_orders"] = "must be a whole number from 1 to 50"
    if not _int_in(policy.data_staleness_threshold_ms, 500, 10000):
        errors["data_staleness_threshold_ms"] = "must be a whole number from 500 to 10000"
    if not isinstance(policy.auto_pause_on_error, bool):
        errors["auto_pause_on_error"] = "must be true or false"
    if not _int_in(policy.error_budget, 0, 100):
        errors["error_budget"] = "must be a whole number from 0 to 100"
    return errors


def check_new_order(
    policy: RiskPolicy,
    open_positions: int,
    open_orders: int,
    *,
    intent: str = "opening",
    opens: int = 0,
) -> Denied | None:
    """May the bot place one more order?

    `open_positions`: positions open now plus those its pending opening orders will
    open; `open_orders`: its pending orders; `opens`: the positions this order would
    open (legs whose instrument and direction are not already counted). Closing orders
    always pass.
    """
    if intent == "closing":
        return None
    if open_orders + 1 > policy.max_open_orders:
        return Denied(
            code=RiskCode.MAX_OPEN_ORDERS,
            message=f"{open_orders} orders are working and max_open_orders is "
            f"{policy.max_open_orders}; wait for one to fill or cancel it",
        )
    if open_positions + opens > policy.max_open_positions:
        return Denied(
            code=RiskCode.MAX_OPEN_POSITIONS,
            message=f"{open_positions} positions are open or being opened, this order opens "
            f"{opens} more, and max_open_positions is {policy.max_open_positions}",
        )
    return None


def check_staleness(
    policy: RiskPolicy, *, now: _dt.datetime, last_data_at: _dt.datetime | None
) -> Denied | None:
    """Refuse new orders while market data is stale.

    `last_data_at` is the market-clock time the latest tick *arrived* (not its `ts`,
    which names the second it describes and is up to a second older by construction);
    None when no tick has arrived this session.
    """
    limit = policy.data_staleness_threshold_ms
    if last_data_at is None:
        return Denied(code=RiskCode.STALE_DATA, message="no market data has arrived yet")
    age_ms = (now - last_data_at).total_seconds() * 1000
    if age_ms > limit:
        return Denied(
            code=RiskCode.STALE_DATA,
            message=f"market data is {int(age_ms)} ms old, past data_staleness_threshold_ms "
            f"{limit}; new orders wait until it is fresh",
        )
    return None


class ErrorBudget(msgspec.Struct, frozen=True):
    """Errors counted this session."""

    errors: int = 0


def record_error(budget: ErrorBudget, policy: RiskPolicy) -> tuple[ErrorBudget, bool]:
    """Count one error; True when the session must halt (past the budget, auto-pause on)."""
    after = ErrorBudget(errors=budget.errors + 1)
    return after, policy.auto_pause_on_error and after.errors > policy.error_budget


# -- the drawdown rule ------------------------------------------------------------------


class Holding(msgspec.Struct, frozen=True, gc=False):
    """One open position as the drawdown rule sees it.

    `quantity` is signed (short negative); `fallback` the mark to use before any sane
    quote was seen (the ledger's last mark, i.e. the entry price when never marked)."""

    symbol: str
    right: str
    strike: int | None
    quantity: int
    fallback: Decimal


def holdings_of(book: Book) -> tuple[Holding, ...]:
    """The open positions of `book`, for `DrawdownGuard.step`."""
    return tuple(
        Holding(
            symbol=s.instrument.symbol,
            right=s.right,
            strike=s.strike,
            quantity=s.sign * s.quantity,
            fallback=s.mark,
        )
        for s in book.open_positions()
    )


def is_sane_quote(q: OptionQuote, right: str, strike: int, spx: Decimal) -> bool:
    """The sanity rules 1-4 of the module docstring."""
    bid, ask = q.bid, q.ask
    if not (bid.is_finite() and ask.is_finite()) or bid < 0 or bid >= ask:
        return False
    mid = (bid + ask) * _HALF
    if ask - bid > max(_WIDTH_FLOOR, mid * _WIDTH_SHARE):
        return False
    intrinsic = spx - strike if right == "C" else strike - spx
    if intrinsic > 0 and ask < intrinsic - max(_INTRINSIC_FLOOR, intrinsic * _INTRINSIC_SHARE):
        return False
    return bid <= (spx if right == "C" else strike)


def sane_mid(tick: Tick, strike: int, right: str) -> tuple[bool, Decimal | None]:
    """Whether `tick` quotes the option, and its mid when the quote is sane (rules 1-4)."""
    q = tick.quote(strike, right)
    if q is None:
        return False, None
    if is_sane_quote(q, right, strike, tick.spx):
        return True, (q.bid + q.ask) * _HALF
    return True, None


class DrawdownReading(msgspec.Struct, frozen=True, gc=False):
    """What one tick says: the robust NLV, the drawdown (a fraction of the start NLV),
    whether the limit is breached on this tick and for how many ticks in a row, whether
    that means halt, and the held instruments whose quote was rejected."""

    robust_nlv: Decimal
    drawdown: Decimal
    breached: bool
    breach_ticks: int
    halt: bool
    suspect: tuple[str, ...] = ()


class DrawdownGuard(msgspec.Struct, frozen=True):
    """The drawdown rule's state: start NLV, the last robust marks, the breach run."""

    start_nlv: Decimal
    confirm_ticks: int = DRAWDOWN_CONFIRM_TICKS
    marks: dict[str, Decimal] = {}
    breach_ticks: int = 0

    @classmethod
    def start(cls, start_nlv: Decimal, confirm_ticks: int = DRAWDOWN_CONFIRM_TICKS) -> DrawdownGuard:
        if start_nlv <= 0:
            raise ValueError(f"a session starts with a positive NLV, not {start_nlv}")
        if confirm_ticks < 1:
            raise ValueError("confirm_ticks must be at least 1")
        return cls(start_nlv=start_nlv, confirm_ticks=confirm_ticks)

    def step(
        self, policy: RiskPolicy, *, tick: Tick, cash: Decimal, holdings: Iterable[Holding],
        quotes: Callable[[int, str], tuple[bool, Decimal | None]] | None = None,
    ) -> tuple[DrawdownGuard, DrawdownReading]:
        """Mark the holdings robustly to `tick` and apply the drawdown rule.

        `quotes(strike, right)` answers like `sane_mid(tick, strike, right)`; a caller
        stepping many guards on one tick passes a memo of it."""
        marks: dict[str, Decimal] = {}
        suspect: list[str] = []
        value = _ZERO
        look = quotes if quotes is not None else partial(sane_mid, tick)
        for h in holdings:
            quoted, mark = look(h.strike, h.right) if h.strike is not None else (False, None)
            if mark is None:
                if quoted:
                    suspect.append(h.symbol)
                mark = self.marks.get(h.symbol, h.fallback)
            marks[h.symbol] = mark
            value += mark * _HUNDRED * h.quantity
        nlv = cash + value
        drawdown = (self.start_nlv - nlv) / self.start_nlv
        breached = drawdown >= policy.max_daily_loss_pct
        run = self.breach_ticks + 1 if breached else 0
        guard = DrawdownGuard(
            start_nlv=self.start_nlv, confirm_ticks=self.confirm_ticks, marks=marks, breach_ticks=run
        )
        reading = DrawdownReading(
            robust_nlv=nlv,
            drawdown=drawdown,
            breached=breached,
            breach_ticks=run,
            halt=run >= self.confirm_ticks,
            suspect=tuple(suspect),
        )
        return guard, reading
