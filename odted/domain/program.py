"""The compiled program of a builder config: a small state machine stepped once per tick.

Spec: api-walkthrough Part 13 (the config is compiled to a deterministic program),
bots-api (a bot runs it live; its decisions are the `decision-log`). The config's fields
are documented in `odted.domain.strategy`; the interface in `odted.domain.ctx`.

`BuilderProgram.step(state, ctx) -> state` does, on every tick but the closing one:

1. **Follow its trades.** Each entry time that is taken opens a *trade* tagged
   `entry-<n>` (and `exit-<n>` for its closing order), `n` the 1-based index of the
   entry time. An entering trade whose order has filled becomes open at the fill's net
   price (signed, debit positive, per unit of the structure); one whose order is gone
   unfilled (canceled, rejected, expired) is abandoned; one still working at the exit
   time is canceled. An exiting trade whose closing order filled is closed; one whose
   closing order is gone unfilled goes back to open, and is closed again at once.
2. **Exit.** For an open trade, the cost to close `c` is the snapped net mid of the
   closing structure (the entry legs reversed; `pricing.quote_combo`, ties toward the
   market maker) and the P&L per unit is `-c - entry`. With `premium = |entry|` (for a
   credit structure that is its maximum profit; for a debit one, what it cost), the trade
   closes when `P&L >= premium * profit_target_pct / 100` (`profit_target`), when
   `-P&L >= premium * stop_loss_pct / 100` (`stop_loss`), or at the first tick at or
   after `exit.time` (`exit_time`). The closing order is a limit at `|c|` (debit when
   `c > 0`), intent `closing`; the bot's re-pricing walks it until it fills. A trade
   that cannot be priced (a leg unquoted) waits for the next tick.
3. **Enter.** Entry time `i` is *due* from its `HH:MM` (New York) until the next entry
   time; it is taken on the first tick in that window, once. Times whose window passed
   without a tick (a late start, a gap) are skipped and logged; at most one entry per
   tick; never at or after `exit.time`, and never more than `max_entries` trades. The
   order: each leg's strike by its rule (`ctx.select_strike`), `buy/sell to open`, the
   config's quantities, expiring today; a limit at the structure's snapped net mid
   (credit when the mid is negative), intent `opening`. If it cannot be built (no
   strike, legs on one instrument, a zero mid) or is denied, the attempt is retried every
   `RETRY_SECONDS` for `ENTRY_RETRY_SECONDS`, then the entry time is skipped.

Every decision is a `ctx.log` entry with an `event` field; fills also `ctx.signal`
(`entry`, `exit`). The state is a frozen, encodable Struct, so the bot persists it with
its session; the program keeps nothing else.
"""

from __future__ import annotations

import datetime as _dt
from decimal import Decimal
from math import gcd
from typing import TYPE_CHECKING

import msgspec

from odted.domain.ctx import CLOSING, OPENING, StrategyContext, new_york, select_strike
from odted.domain.instruments import SPXW, format_osi, parse_osi
from odted.domain.money import price
from odted.domain.orders import OrderDenied, OrderLeg, OrderRequest, TicketLeg
from odted.domain.pricing import quote_combo
from odted.domain.reprice import FOREVER

if TYPE_CHECKING:
    from odted.domain.strategy import StrategyConfig

__all__ = ["BuilderProgram", "ProgramState", "Trade", "RETRY_SECONDS", "ENTRY_RETRY_SECONDS"]

RETRY_SECONDS = 5
ENTRY_RETRY_SECONDS = 60
_HUNDRED = Decimal(100)
_ZERO = Decimal(0)


class Trade(msgspec.Struct, frozen=True):
    """One entry and its exit. `phase`: entering, canceling (its entry order is being
    canceled at the exit time), open, exiting, closed, abandoned."""

    n: int
    phase: str
    legs: tuple[TicketLeg, ...]
    entry_net: Decimal | None = None
    exit_reason: str | None = None
    retry_at: _dt.datetime | None = None

    @property
    def entry_tag(self) -> str:
        return f"entry-{self.n}"

    @property
    def exit_tag(self) -> str:
        return f"exit-{self.n}"


class ProgramState(msgspec.Struct, frozen=True):
    """What the program remembers between ticks."""

    next_entry: int = 0
    entries: int = 0
    trades: tuple[Trade, ...] = ()
    attempt_since: _dt.datetime | None = None
    retry_at: _dt.datetime | None = None


def _at_minute(local: _dt.datetime, minute: int) -> _dt.datetime:
    """The start of New York minute `minute` (after midnight) on `local`'s day."""
    return local.replace(hour=minute // 60, minute=minute % 60, second=0, microsecond=0)


def _minutes(hhmm: str) -> int:
    return int(hhmm[:2]) * 60 + int(hhmm[3:])


def _signed(order_price: Decimal | None, effect: str | None) -> Decimal:
    assert order_price is not None
    return -order_price if effect == "credit" else order_price


def _limit(net: Decimal, one_side: str | None, fallback: str) -> tuple[Decimal, str]:
    if net > 0:
        return price(net), "debit"
    if net < 0:
        return price(-net), "credit"
    return price(_ZERO), one_side or fallback


def _one_side(legs: tuple[TicketLeg, ...]) -> str | None:
    if all(leg.sign > 0 for leg in legs):
        return "debit"
    if all(leg.sign < 0 for leg in legs):
        return "credit"
    return None


def _request(legs: tuple[TicketLeg, ...], limit: Decimal, effect: str) -> OrderRequest:
    return OrderRequest(
        type="limit",
        legs=tuple(
            OrderLeg(instrument=leg.instrument.symbol, quantity=Decimal(leg.quantity), action=leg.action)
            for leg in legs
        ),
        price=limit,
        price_effect=effect,
    )


def _closing_legs(legs: tuple[TicketLeg, ...]) -> tuple[TicketLeg, ...]:
    return tuple(
        msgspec.structs.replace(
            leg,
            action="sell to close" if leg.sign > 0 else "buy to close",
            sign=-leg.sign,
            opening=False,
        )
        for leg in legs
    )


class BuilderProgram(msgspec.Struct, frozen=True):
    """A compiled builder config (see the module docstring)."""

    legs: tuple[tuple[str, str, int, str, Decimal], ...]  # (direction, right, qty, method, value)
    times: tuple[int, ...]  # entry minutes after midnight, New York
    labels: tuple[str, ...]
    max_entries: int
    exit_minute: int | None
    exit_label: str | None
    profit_target_pct: Decimal | None
    stop_loss_pct: Decimal | None

    @classmethod
    def compile(cls, config: StrategyConfig) -> BuilderProgram:
        ex = config.exit
        return cls(
            legs=tuple((leg.direction, leg.right, leg.qty, leg.strike.method, leg.strike.value)
                       for leg in config.legs),
            times=tuple(_minutes(t) for t in config.entry.times),
            labels=config.entry.times,
            max_entries=config.entry.max_entries or len(config.entry.times),
            exit_minute=_minutes(ex.time) if ex.time else None,
            exit_label=ex.time,
            profit_target_pct=ex.profit_target_pct,
            stop_loss_pct=ex.stop_loss_pct,
        )

    def initial_state(self) -> ProgramState:
        return ProgramState()

    # -- stepping -------------------------------------------------------------------

    def step(self, state: ProgramState, ctx: StrategyContext) -> ProgramState:
        """React to the current tick; return the new state (the same object if unchanged)."""
        tick = ctx.tick
        if tick.closing:
            return state
        now = ctx.now
        local = new_york(now)
        minute = local.hour * 60 + local.minute
        past_exit = self.exit_minute is not None and minute >= self.exit_minute
        trades = state.trades
        if trades:
            updated = tuple(self._follow(t, ctx, now, past_exit) for t in trades)
            if any(a is not b for a, b in zip(updated, trades, strict=True)):
                state = msgspec.structs.replace(state, trades=updated)
        return self._enter(state, ctx, now, local, minute, past_exit)

    def quiet_until(self, state: ProgramState, now: _dt.datetime) -> _dt.datetime | None:
        """How long `step` leaves `state` alone if the session's orders and positions do
        not change but by re-pricing (`odted.domain.ctx`): stepping it on any tick before
        the returned time returns `state` itself and calls nothing on the ctx but its
        reads. None: no such promise (a trade is open, so every tick checks its exit
        against the market). A re-priced order keeps its tag and stays pending, which is
        all `_follow_entry` and the exiting phase look at.

        Call it only after a step that returned `state` unchanged and recorded nothing;
        it relies on that step's outcome (e.g. an entry order still working).
        """
        local = new_york(now)
        wakes: list[_dt.datetime] = []
        for trade in state.trades:
            phase = trade.phase
            if phase == "open":
                return None
            if phase == "entering" and self.exit_minute is not None:
                wakes.append(_at_minute(local, self.exit_minute))  # canceled at the exit time
        i = state.next_entry
        if i < len(self.times):
            minute = local.hour * 60 + local.minute
            if minute < self.times[i]:
                wakes.append(_at_minute(local, self.times[i]))
            elif state.retry_at is None:
                return None
            else:  # an attempt waits for its retry; the next entry time or the exit ends the wait too
                wakes.append(state.retry_at)
                if i + 1 < len(self.times):
                    wakes.append(_at_minute(local, self.times[i + 1]))
                if self.exit_minute is not None:
                    wakes.append(_at_minute(local, self.exit_minute))
        return min(wakes) if wakes else FOREVER

    def _follow(self, trade: Trade, ctx: StrategyContext, now: _dt.datetime, past_exit: bool) -> Trade:
        phase = trade.phase
        if phase in ("entering", "canceling"):
            return self._follow_entry(trade, ctx, past_exit)
        if phase == "exiting":
            tagged = [o for o in ctx.orders if o.tag == trade.exit_tag]
            if any(o.status == "filled" for o in tagged):
                filled = next(o for o in tagged if o.status == "filled")
                c = _signed(filled.order.fill_price, filled.order.fill_price_effect)
                assert trade.entry_net is not None
                pnl = -c - trade.entry_net
                ctx.log(f"trade {trade.n} closed at {filled.order.fill_price} {filled.order.fill_price_effect}",
                        event="exit_filled", trade=trade.n, order_id=filled.id, pnl_per_unit=pnl,
                        reason=trade.exit_reason)
                ctx.signal("exit", {"trade": trade.n, "reason": trade.exit_reason, "pnl_per_unit": pnl,
                                    "fill_price": filled.order.fill_price,
                                    "fill_price_effect": filled.order.fill_price_effect})
                return msgspec.structs.replace(trade, phase="closed")
            if any(o.status == "pending" for o in tagged):
                return trade
            ctx.log(f"trade {trade.n}: its closing order ended unfilled; closing again",
                    event="exit_order_gone", trade=trade.n)
            trade = msgspec.structs.replace(trade, phase="open", retry_at=None)
        if trade.phase == "open":
            return self._check_exit(trade, ctx, now, past_exit)
        return trade

    def _follow_entry(self, trade: Trade, ctx: StrategyContext, past_exit: bool) -> Trade:
        tagged = [o for o in ctx.orders if o.tag == trade.entry_tag]
        for o in tagged:
            if o.status == "filled":
                entry = _signed(o.order.fill_price, o.order.fill_price_effect)
                ctx.log(f"trade {trade.n} opened at {o.order.fill_price} {o.order.fill_price_effect}",
                        event="entry_filled", trade=trade.n, order_id=o.id, entry_net=entry)
                ctx.signal("entry", {"trade": trade.n, "fill_price": o.order.fill_price,
                                     "fill_price_effect": o.order.fill_price_effect,
                                     "instruments": [leg.instrument.symbol for leg in trade.legs]})
                return msgspec.structs.replace(trade, phase="open", entry_net=entry)
        working = [o for o in tagged if o.status == "pending"]
        if not working:
            ctx.log(f"trade {trade.n}: the entry order ended unfilled; no position taken",
                    event="entry_abandoned", trade=trade.n)
            return msgspec.structs.replace(trade, phase="abandoned")
        if past_exit and trade.phase == "entering":
            for o in working:
                denied = ctx.cancel_order(o.id)
                ctx.log(f"trade {trade.n}: entry still unfilled at the exit time {self.exit_label}; canceling",
                        event="entry_canceled", trade=trade.n, order_id=o.id,
                        denied=None if denied is None else str(denied))
            # The trade follows its entry order to its end: canceled (abandoned) or, if it
            # filled first, open and closed at once since the exit time has passed.
            return msgspec.structs.replace(trade, phase="canceling")
        return trade

    def _check_exit(self, trade: Trade, ctx: StrategyContext, now: _dt.datetime, past_exit: bool) -> Trade:
        if trade.retry_at is not None and now < trade.retry_at:
            return trade
        closing = _closing_legs(trade.legs)
        combo = ctx.quote(closing)
        if combo is None:
            return trade
        assert trade.entry_net is not None
        c = combo.mid
        pnl = -c - trade.entry_net
        premium = abs(trade.entry_net)
        reason = trade.exit_reason
        if reason is None:
            if self.profit_target_pct is not None and premium and pnl >= premium * self.profit_target_pct / _HUNDRED:
                reason = "profit_target"
            elif self.stop_loss_pct is not None and premium and -pnl >= premium * self.stop_loss_pct / _HUNDRED:
                reason = "stop_loss"
            elif past_exit:
                reason = "exit_time"
            else:
                return trade
        limit, effect = _limit(c, _one_side(closing), "credit" if trade.entry_net > 0 else "debit")
        result = ctx.place_order(_request(closing, limit, effect), intent=CLOSING, tag=trade.exit_tag)
        if isinstance(result, OrderDenied):
            ctx.log(f"trade {trade.n}: closing order denied ({result}); retrying in {RETRY_SECONDS} s",
                    event="exit_denied", trade=trade.n, reason=reason, code=result.code)
            return msgspec.structs.replace(trade, exit_reason=reason,
                                           retry_at=now + _dt.timedelta(seconds=RETRY_SECONDS))
        ctx.log(f"trade {trade.n}: {reason.replace('_', ' ')}; closing at {limit} {effect}",
                event="exit_placed", trade=trade.n, reason=reason, order_id=result,
                pnl_per_unit=pnl, price=limit, price_effect=effect)
        return msgspec.structs.replace(trade, phase="exiting", exit_reason=reason, retry_at=None)

    def _enter(self, state: ProgramState, ctx: StrategyContext, now: _dt.datetime,
               local: _dt.datetime, minute: int, past_exit: bool) -> ProgramState:
        i = state.next_entry
        times = self.times
        if i >= len(times) or minute < times[i]:
            return state
        if past_exit or state.entries >= self.max_entries:
            why = f"the exit time {self.exit_label}" if past_exit else f"max_entries {self.max_entries}"
            for j in range(i, len(times)):
                ctx.log(f"entry at {self.labels[j]} skipped: {why} reached", event="entry_skipped",
                        entry_time=self.labels[j])
            return msgspec.structs.replace(state, next_entry=len(times), attempt_since=None, retry_at=None)
        due = i
        while due + 1 < len(times) and minute >= times[due + 1]:
            ctx.log(f"entry at {self.labels[due]} missed: no tick in its window", event="entry_missed",
                    entry_time=self.labels[due])
            due += 1
        if due != i:
            state = msgspec.structs.replace(state, next_entry=due, attempt_since=None, retry_at=None)
        if state.retry_at is not None and now < state.retry_at:
            return state
        since = state.attempt_since or now
        result = self._place_entry(due, ctx, now, local)
        if isinstance(result, Trade):
            return msgspec.structs.replace(state, next_entry=due + 1, entries=state.entries + 1,
                                           trades=state.trades + (result,), attempt_since=None, retry_at=None)
        if (now - since).total_seconds() >= ENTRY_RETRY_SECONDS:
            ctx.log(f"entry at {self.labels[due]} skipped: {result}", event="entry_skipped",
                    entry_time=self.labels[due])
            return msgspec.structs.replace(state, next_entry=due + 1, attempt_since=None, retry_at=None)
        return msgspec.structs.replace(state, attempt_since=since,
                                       retry_at=now + _dt.timedelta(seconds=RETRY_SECONDS))

    def _place_entry(self, i: int, ctx: StrategyContext, now: _dt.datetime, local: _dt.datetime) -> Trade | str:
        """Build and place the entry order of entry time `i`: the trade, or why not."""
        tick = ctx.tick
        n = i + 1
        label = self.labels[i]
        expiry = local.date()
        strikes = []
        for j, (direction, right, qty, method, value) in enumerate(self.legs):
            k = select_strike(tick, right, method, value)
            if k is None:
                why = f"no quoted {'call' if right == 'C' else 'put'} for legs[{j}]"
                ctx.log(f"entry at {label}: {why}", event="entry_unbuildable", entry_time=label)
                return why
            strikes.append(k)
        symbols = [format_osi(SPXW, expiry, leg[1], k) for leg, k in zip(self.legs, strikes, strict=True)]
        if len(set(symbols)) != len(symbols):
            why = f"two legs select the same option ({', '.join(symbols)})"
            ctx.log(f"entry at {label}: {why}", event="entry_unbuildable", entry_time=label)
            return why
        units = 0
        for leg in self.legs:
            units = gcd(units, leg[2])
        legs = tuple(
            TicketLeg(
                index=j,
                instrument=parse_osi(symbol),
                action="buy to open" if leg[0] == "buy" else "sell to open",
                quantity=leg[2],
                ratio=leg[2] // units,
                sign=1 if leg[0] == "buy" else -1,
                direction="long" if leg[0] == "buy" else "short",
                opening=True,
                strike=k,
            )
            for j, (leg, symbol, k) in enumerate(zip(self.legs, symbols, strikes, strict=True))
        )
        combo = quote_combo(legs, tick)
        if combo is None:  # select_strike only picks quoted strikes; kept for safety
            return "a leg has no quote"
        if not combo.mid:
            why = "the structure's mid is zero"
            ctx.log(f"entry at {label}: {why}", event="entry_unbuildable", entry_time=label)
            return why
        limit, effect = _limit(combo.mid, _one_side(legs), "debit")
        result = ctx.place_order(_request(legs, limit, effect), intent=OPENING, tag=f"entry-{n}")
        detail = {
            "entry_time": label,
            "strikes": strikes,
            "deltas": [str(round(q.delta, 4)) for q in combo.quotes],
            "mid": combo.mid,
            "price": limit,
            "price_effect": effect,
        }
        if isinstance(result, OrderDenied):
            ctx.log(f"entry at {label} denied: {result}", event="entry_denied", code=result.code, **detail)
            return str(result)
        ctx.log(f"entry at {label}: {self._summary(legs)} at {limit} {effect}",
                event="entry_placed", trade=n, order_id=result, **detail)
        return Trade(n=n, phase="entering", legs=legs)

    @staticmethod
    def _summary(legs: tuple[TicketLeg, ...]) -> str:
        return ", ".join(
            f"{'buy' if leg.sign > 0 else 'sell'} {leg.quantity} {leg.instrument.strike.normalize():f}"
            f"{leg.instrument.right}"
            for leg in legs
        )
