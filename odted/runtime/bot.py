"""The bot-session actor: a live simulation driven by a compiled strategy.

A `BotSim` is a `LiveSim` (same orders, fills, settlement) that, on every tick, also
re-prices its resting orders (peg + concession), checks its risk policy, and steps its
strategy program through a `StrategyContext` (bots-api; DESIGN.md "Bots").

Plan, then commit. On a tick the actor first *plans* synchronously: the program and the
re-pricing run against the committed state through a recording context, so a bot with
nothing to do costs a few microseconds and wakes no task. Only a plan with actions
(orders to place, replace or cancel, decision-log entries, a status change) becomes tick
work: the actor replays the plan on a copy of its book (each order validated again in
order, so two orders of one plan cannot overdraw buying power), commits every row in one
unit — orders, transactions, events, the decision-log entries and the program state —
and only then swaps the copy in. A failed commit drops the plan; the next tick plans
again from the committed state, so the program never runs ahead of the database and a
restarted bot resumes without placing anything twice.

Lifecycle (persisted at every step): `waiting_for_data` until the first tick, `running`,
`settling` at the closing tick, then `completed`; or `halted` (daily-loss cap: working
orders canceled, positions closed at market), `killing` → `killed` (DELETE), `failed`
(the supervisor gave up). A halted or killed bot places nothing more but its
simulation stays open so its positions settle at the close.

Decision log: every entry is a `decision_log` event of the simulation (persisted with
the change it explains, pushed on `simulation_events`, served in emission order) and a
line appended to `<logs_dir>/sessions/<session_id>.jsonl` after the commit.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Sequence
from uuid import UUID

import msgspec

from odted.domain.chain import Tick
from odted.domain.ctx import StrategyOrder
from odted.domain.fills import Fill
from odted.domain.ledger import Book
from odted.domain.lifecycle import cancel_order, place_order
from odted.domain.money import dollars
from odted.domain.orders import Order, OrderDenied, OrderLeg, OrderRequest, TicketLeg
from odted.domain.positions import Position
from odted.domain.program import ProgramState
from odted.domain.reprice import CLOSING, OPENING, LimitPrice, RepricePolicy, RepriceState
from odted.domain.reprice import quiet as reprice_quiet
from odted.domain.reprice import step as reprice_step
from odted.domain.pricing import ComboQuote
from odted.domain.risk import DrawdownGuard, ErrorBudget, Holding, RiskPolicy, check_new_order, holdings_of, record_error
from odted.domain.strategy import compile_strategy, parse_config
from odted.domain.validation import validate_order
from odted.runtime.actor import TickWork
from odted.runtime.errors import Refusal
from odted.runtime.live import LiveDeps, LiveSim, Reply, _Event, _tx_rows, combo_key, encode
from odted.runtime.watch import PEG, Watch
from odted.store import bot_sessions as bs
from odted.store import live as repo
from odted.store.db import DatabaseUnavailable

log = logging.getLogger(__name__)

__all__ = ["BotSim", "BotDeps", "KillSession", "CancelBotOrders", "StaleNotice", "DecisionEntry"]

_risk_dec = msgspec.json.Decoder(RiskPolicy)
_reprice_dec = msgspec.json.Decoder(RepricePolicy)
_state_dec = msgspec.json.Decoder(ProgramState)
_ZERO = Decimal(0)


# -- commands ---------------------------------------------------------------------------


@dataclass(frozen=True)
class KillSession:
    """DELETE a bot session: stop acting, cancel open orders (and close positions at
    market with `flatten`) at the next tick, then `killed`."""

    flatten: bool = False


@dataclass(frozen=True)
class CancelBotOrders:
    """Cancel the session's open orders and keep running."""


@dataclass(frozen=True)
class StaleNotice:
    """Market data has been stale for `ms` milliseconds (sent by the staleness watchdog)."""

    ms: int


class DecisionEntry(msgspec.Struct, frozen=True, omit_defaults=True):
    """One decision-log entry: `ctx.log()` (`kind` "log") or `ctx.signal()` ("signal")."""

    ts: datetime
    kind: str
    message: str
    data: dict[str, Any] = {}
    session_id: UUID | None = None


class Programs:
    """Compiled strategy programs by source hash: immutable, so compiled once and shared
    by every session that pins the same strategy."""

    def __init__(self) -> None:
        self._by_hash: dict[str, Any] = {}

    async def get(self, db: Any, source_hash: str) -> Any:
        program = self._by_hash.get(source_hash)
        if program is None:
            source = await db.run(repo.strategy_source, source_hash)
            config = parse_config(source)
            if not hasattr(config, "legs"):
                raise ValueError(f"the pinned strategy {source_hash} no longer compiles: {config}")
            program = self._by_hash[source_hash] = compile_strategy(config).program  # type: ignore[arg-type]
        return program


class Policies:
    """Decoded risk and re-pricing policies by their stored JSON: frozen Structs, so the
    sessions frozen with the same policy share one object (memory per session)."""

    _LIMIT = 4096  # distinct policies kept; past it the cache starts afresh

    def __init__(self) -> None:
        self._risk: dict[str, RiskPolicy] = {}
        self._reprice: dict[str, RepricePolicy] = {}

    def risk(self, raw: str) -> RiskPolicy:
        return _shared(self._risk, raw, _risk_dec.decode, self._LIMIT)

    def reprice(self, raw: str) -> RepricePolicy:
        return _shared(self._reprice, raw, _reprice_dec.decode, self._LIMIT)


def _shared(cache: dict[str, Any], raw: str, decode: Any, limit: int) -> Any:
    value = cache.get(raw)
    if value is None:
        if len(cache) >= limit:
            cache.clear()
        value = cache[raw] = decode(raw)
    return value


class Walks:
    """Re-pricing walks shared among sessions. Equal walk states are one object (interned
    when an order starts walking), and stepping one walk object on one tick is computed
    once for every session whose order rests on it: the sessions of one strategy started
    together walk in step, so they keep sharing the states their steps return. Walk
    states are frozen, so sharing them is safe; all of this is memory and time only.
    Bounded: past `_LIMIT` entries a table starts afresh (sharing resumes from there)."""

    _LIMIT = 4096

    def __init__(self) -> None:
        self._interned: dict[RepriceState, RepriceState] = {}
        self._seq = -1
        self._steps: dict[tuple[int, Decimal], tuple[RepriceState, Any]] = {}
        self._quiet: dict[int, tuple[RepriceState, Any]] = {}

    def intern(self, walk: RepriceState) -> RepriceState:
        return _shared(self._interned, walk, _same, self._LIMIT)

    def step(self, walk: RepriceState, tick: Tick, mid: Decimal) -> tuple[RepriceState, LimitPrice | None, str]:
        """`reprice.step(walk, tick.ts, mid)`, memoized for the tick."""
        if tick.seq != self._seq:
            self._seq = tick.seq
            self._steps = {}
        key = (id(walk), mid)
        got = self._steps.get(key)
        if got is None or got[0] is not walk:
            result = reprice_step(walk, tick.ts, mid)
            self._steps[key] = (walk, result)
            return result
        return got[1]  # type: ignore[no-any-return]

    def quiet(self, walk: RepriceState) -> tuple[datetime, Decimal, Decimal]:
        """`reprice.quiet(walk)`, memoized."""
        got = self._quiet.get(id(walk))
        if got is None or got[0] is not walk:
            if len(self._quiet) >= self._LIMIT:
                self._quiet.clear()
            got = self._quiet[id(walk)] = (walk, reprice_quiet(walk))
        return got[1]  # type: ignore[no-any-return]


def _same(value: Any) -> Any:
    return value


@dataclass
class BotDeps:
    logs_dir: Path
    on_status: Any = None  # callable(session_id, status) after a status change commits
    programs: Programs = field(default_factory=Programs)
    policies: Policies = field(default_factory=Policies)
    walks: Walks = field(default_factory=Walks)
    dropped_plans: int = 0
    _dropped_seq: int = -1

    def plan_dropped(self, seq: int, session: str) -> None:
        """Log a plan the database could not take (it is planned again on the next tick):
        the first of a tick as a warning, the rest of that tick quietly, so an outage
        with thousands of sessions does not flood the log."""
        self.dropped_plans += 1
        if seq != self._dropped_seq:
            self._dropped_seq = seq
            log.warning("tick %s: the plan of bot session %s (and of any others on this tick) not committed: "
                        "database unavailable; planned again on the next tick", seq, session)
        else:
            log.debug("tick %s: plan of bot session %s not committed (database unavailable)", seq, session)


# -- a plan -----------------------------------------------------------------------------


@dataclass
class _Place:
    order_id: UUID
    request: OrderRequest
    intent: str
    tag: str


@dataclass
class _Replace:
    order_id: UUID
    new_id: UUID
    limit: LimitPrice
    reason: str


@dataclass
class _Cancel:
    order_id: UUID


@dataclass
class _Flatten:
    """Close every open position at market (halt, kill with flatten)."""


@dataclass
class _Plan:
    actions: list[Any] = field(default_factory=list)
    entries: list[DecisionEntry] = field(default_factory=list)
    state: ProgramState | None = None  # the program state to commit (None: unchanged)
    walks: dict[UUID, RepriceState] = field(default_factory=dict)  # walk states that advanced
    status: str | None = None  # a lifecycle change to commit
    halt_reason: str | None = None
    errors: int = 0  # errors to count against the budget
    guard: DrawdownGuard | None = None
    program_quiet: bool = False  # the program was not stepped, or stepped and did nothing

    @property
    def durable(self) -> bool:
        """Whether anything here must be committed before it takes effect."""
        return bool(self.actions or self.entries or self.status or self.errors
                    or (self.state is not None))


class _Recorder:
    """The `StrategyContext` of one planning step: reads committed state, records actions."""

    def __init__(self, bot: BotSim, tick: Tick, plan: _Plan) -> None:
        self._bot = bot
        self._tick = tick
        self._plan = plan
        self._orders: tuple[StrategyOrder, ...] | None = None

    @property
    def now(self) -> datetime:
        return self._tick.ts

    @property
    def tick(self) -> Tick:
        return self._tick

    @property
    def positions(self) -> Sequence[Position]:
        assert self._bot.book is not None
        return self._bot.book.positions()

    @property
    def orders(self) -> Sequence[StrategyOrder]:
        if self._orders is None:
            self._orders = self._bot.strategy_orders()
        return self._orders

    def quote(self, legs: tuple[TicketLeg, ...]) -> ComboQuote | None:
        return self._bot.deps.combos.get(combo_key(legs), legs, self._tick)

    def place_order(self, request: OrderRequest, *, intent: str, tag: str) -> UUID | OrderDenied:
        bot = self._bot
        denied = bot.deny_new(intent, request, self._plan)
        if denied is not None:
            self.log(f"order {tag} denied: {denied.message}", event="order_denied", tag=tag, code=denied.code)
            return denied
        assert bot.sim is not None and bot.book is not None
        fees, slippage = bot.deps.settings.get(bot.sim.user_id)
        assessed = validate_order(request, tick=self._tick, session_date=bot.sim.date, book=bot.book,
                                  fees=fees, slippage=slippage)
        if isinstance(assessed, OrderDenied):
            self._plan.errors += 1
            self.log(f"order {tag} refused: {assessed.message}", event="order_refused", tag=tag, code=assessed.code)
            return assessed
        oid = bot.deps.new_uuid()
        self._plan.actions.append(_Place(oid, request, intent, tag))
        self._orders = None
        return oid

    def cancel_order(self, order_id: UUID) -> OrderDenied | None:
        bot = self._bot
        order = bot.orders.get(order_id)
        if order is None or order_id not in bot.meta:
            return OrderDenied(code="not_found", message="no such order of this strategy")
        if not order.is_pending:
            return OrderDenied(code="order_not_pending", message=f"the order is {order.status}")
        self._plan.actions.append(_Cancel(order_id))
        return None

    def log(self, message: str, **data: Any) -> None:
        self._plan.entries.append(DecisionEntry(ts=self._tick.ts, kind="log", message=message, data=data))

    def signal(self, name: str, data: dict[str, Any]) -> None:
        self._plan.entries.append(DecisionEntry(ts=self._tick.ts, kind="signal", message=name, data=dict(data)))


# -- the actor --------------------------------------------------------------------------

_PLANNING = ("waiting_for_data", "running")
_QUIET = ("halted", "killed", "completed", "failed")


class BotSim(LiveSim):
    """See the module docstring."""

    __slots__ = ("bots", "session", "status", "program", "state", "risk", "reprice", "meta", "walks", "guard",
                 "budget", "stale", "max_drawdown", "_flatten_on_kill", "_strategy_orders", "_holdings",
                 "_program_quiet")

    def __init__(self, sim_id: UUID, deps: LiveDeps, bots: BotDeps, *, readonly: bool = False) -> None:
        super().__init__(sim_id, deps, readonly=readonly)
        self.bots = bots
        self.session: bs.BotSessionRow | None = None
        self.status = "waiting_for_data"
        self.program: Any = None
        self.state: ProgramState | None = None
        self.risk = RiskPolicy()
        self.reprice = RepricePolicy()
        self.meta: dict[UUID, tuple[str, str]] = {}  # the strategy's orders: (intent, tag)
        self.walks: dict[UUID, RepriceState] = {}
        self.guard: DrawdownGuard | None = None
        self.budget = ErrorBudget()
        self.stale = False
        self.max_drawdown = _ZERO
        self._flatten_on_kill = False
        self._strategy_orders: tuple[StrategyOrder, ...] | None = None  # cached until orders change
        self._holdings: tuple[int, tuple[Holding, ...]] | None = None  # (book revision, holdings)
        # (state, program.quiet_until(state)) after a quiet step, until the state or the orders change
        self._program_quiet: tuple[ProgramState, datetime | None] | None = None

    def strategy_orders(self) -> tuple[StrategyOrder, ...]:
        """The strategy's orders as `ctx.orders` shows them (cached until orders change)."""
        if self._strategy_orders is None:
            orders = self.orders
            self._strategy_orders = tuple(StrategyOrder(order=orders[oid], intent=intent, tag=tag)
                                          for oid, (intent, tag) in self.meta.items() if oid in orders)
        return self._strategy_orders

    def _orders_changed(self) -> None:
        """Forget what was derived from the orders: `ctx.orders`, the program's quiet promise."""
        self._strategy_orders = None
        self._program_quiet = None

    def _program_quiet_until(self, now: datetime) -> datetime | None:
        """The program's `quiet_until` for its current state (call it after a quiet step
        only); kept until the state or the orders change. None: no promise."""
        state = self.state
        if state is None:
            return None
        cached = self._program_quiet
        if cached is None or cached[0] is not state:
            quiet_until = getattr(self.program, "quiet_until", None)
            cached = self._program_quiet = (state, None if quiet_until is None else quiet_until(state, now))
        return cached[1]

    def _program_promised(self, tick: Tick) -> datetime | None:
        """The end of the program's quiet promise when it covers `tick` (the step may be
        skipped), else None."""
        cached = self._program_quiet
        if cached is None or cached[0] is not self.state or cached[1] is None or tick.ts >= cached[1]:
            return None
        return cached[1]

    def _risk_holdings(self, book: Book) -> tuple[Holding, ...]:
        """`holdings_of(book)`, cached while the book's positions stay as they are (the
        fallback marks are then those of the last change: its fill's marks)."""
        cached = self._holdings
        if cached is None or cached[0] != book.revision:
            cached = self._holdings = (book.revision, holdings_of(book))
        return cached[1]

    # -- loading ---------------------------------------------------------------------------

    async def load(self) -> None:
        await super().load()
        row = await self.deps.db.run(bs.session_of_simulation, self.id)
        if row is None:
            raise ValueError(f"simulation {self.id} has no bot session")
        # The session keeps its row for its id and the start reply; the policies' JSON is
        # shared (sessions frozen with one policy hold one string) and the program state
        # and order tags, now live in `state` and `meta`, are not kept twice.
        self.session = dataclasses.replace(row, risk=sys.intern(row.risk), reprice=sys.intern(row.reprice),
                                           program_state=None, order_meta=None)
        self.status = row.status if row.status not in ("scheduled", "registering") else "waiting_for_data"
        self._flatten_on_kill = row.flatten_on_kill
        if self.sim is None or self.book is None:
            return
        self.program = await self.bots.programs.get(self.deps.db, row.source_hash)
        self.state = _state_dec.decode(row.program_state) if row.program_state else self.program.initial_state()
        self.risk = self.bots.policies.risk(row.risk)
        self.reprice = self.bots.policies.reprice(row.reprice)
        self.budget = ErrorBudget(errors=row.error_count)
        self.guard = DrawdownGuard.start(self.sim.starting_capital)
        if row.order_meta:
            raw = msgspec.json.decode(row.order_meta)
            self.meta = {UUID(k): (v[0], v[1]) for k, v in raw.items()}
        now = self.tick.ts if self.tick is not None else self.sim.start_time
        for oid, (intent, _tag) in self.meta.items():  # resting orders walk on from where they rest
            order = self.orders.get(oid)
            if order is not None and order.is_pending and oid in self.tickets:
                self.walks[oid] = self._walk(intent, order, self.tickets[oid][0], now)

    def _walk(self, intent: str, order: Order, ticket: Any, now: datetime) -> RepriceState:
        assert order.price is not None and order.price_effect is not None
        return self.bots.walks.intern(RepriceState.start(
            intent, self.reprice, order.price, order.price_effect, len(ticket.legs), now,
            one_sided=ticket.all_buys or ticket.all_sells))

    # -- commands ----------------------------------------------------------------------------

    async def handle(self, message: Any) -> Any:
        match message:
            case KillSession(flatten=flatten):
                return await self._kill(flatten)
            case CancelBotOrders():
                return await self._cancel_bot_orders()
            case StaleNotice(ms=ms):
                return await self._on_stale(ms)
        try:
            return await super().handle(message)
        finally:
            self._orders_changed()

    async def _kill(self, flatten: bool) -> Reply:
        if self.status in _QUIET:
            raise Refusal.conflict("session_terminal", f"the session is {self.status}")
        assert self.session is not None
        sid = self.session.id
        at = self._now()

        async def write(conn: Any) -> None:
            await bs.set_session_status(conn, sid, "killing", at=at, flatten_on_kill=flatten)

        await self.deps.committer.commit(write)
        self.status = "killing"
        self._flatten_on_kill = flatten
        return Reply(202, encode({"status": "killing", "session_id": sid}))

    async def _cancel_bot_orders(self) -> Reply:
        if self.status in _QUIET:
            raise Refusal.conflict("session_terminal", f"the session is {self.status}")
        plan = _Plan()
        for oid, order in self.orders.items():
            if order.is_pending:
                plan.actions.append(_Cancel(oid))
        plan.entries.append(self._entry("cancel-all requested: canceling the open orders", event="cancel_all",
                                        orders=len(plan.actions)))
        tick = self.tick
        assert tick is not None
        await self._commit_plan(tick, plan)
        return Reply(202, encode({"status": self.status, "canceled": len(plan.actions)}))

    async def _on_stale(self, ms: int) -> None:
        if self.stale or self.status not in _PLANNING:
            return
        plan = _Plan(entries=[self._entry(f"market data stale for {ms} ms: no new orders until it is fresh",
                                          event="data_stale", staleness_ms=ms)])
        if self.tick is not None:
            await self._commit_plan(self.tick, plan)
        self.stale = True

    def _entry(self, message: str, **data: Any) -> DecisionEntry:
        return DecisionEntry(ts=self._now(), kind="log", message=message, data=data)

    # -- ticks -------------------------------------------------------------------------------

    def _take_tick(self, tick: Tick) -> TickWork | None:
        work = super()._take_tick(tick)  # marks, history, fills, the close
        if self.book is None or self.sim is None:
            return work
        if work is not None:  # fills or the close: commit them, then plan on what is now true
            async def fills_then_plan() -> None:
                await work()
                if not self.ended:
                    plan = self._plan(tick)
                    if plan.durable:
                        await self._commit_quietly(tick, plan)
                    else:
                        self._adopt_quiet(plan)
            return fills_then_plan
        plan = self._plan(tick)
        if not plan.durable:
            self._adopt_quiet(plan)
            return None

        async def commit() -> None:
            await self._commit_quietly(tick, plan)

        return commit

    async def _commit_quietly(self, tick: Tick, plan: _Plan) -> None:
        """Commit a tick's plan; if the database is unavailable, drop it: the next tick
        plans again from the committed state."""
        try:
            await self._commit_plan(tick, plan)
        except DatabaseUnavailable:
            self.bots.plan_dropped(tick.seq, self.key)

    def on_woken(self, tick: Tick, watch: Watch) -> TickWork | None:
        """A tick that broke this session's watch.

        The bots of one strategy started together hold one watch, and their walks are
        the same shared objects (`Walks`). The first of them to be woken takes the tick
        in full; when that left nothing to commit (its walks stepped, a new watch), the
        others in the same situation — the same walks, program promise, slippage and
        close — take the same outcome instead of working it out again: stepping the
        same walks on the same tick gives the same new ones, and their fill checks are
        the broken watch's, which they share. Anything else takes the tick in full.
        """
        situation = self._situation(tick, watch)
        if situation is None:
            return self.on_tick(tick)
        walks = self.walks
        seen = watch.outcome(tick.seq, situation)
        if seen is not None:
            before, after, next_watch = seen
            if all(a is b for a, b in zip(before, walks.values())):
                for oid, walk in zip(list(walks), after):
                    walks[oid] = walk
                self.tick = tick
                self.watch = next_watch
                return None
        before = tuple(walks.values())
        work = self.on_tick(tick)
        if work is None and self.watch is not None and len(self.walks) == len(before):
            watch.record(tick.seq, situation, (before, tuple(self.walks.values()), self.watch))
        return work

    def _situation(self, tick: Tick, watch: Watch) -> tuple[Any, ...] | None:
        """What decides this session's take on a tick that broke `watch`, besides the
        watch: None unless it is running, fresh, flat, its program is promised quiet on
        this tick, and the user's settings are those the watch was made with."""
        if self.status != "running" or self.stale or not watch.settings_current():
            return None
        promised = self._program_promised(tick)
        book = self.book
        if promised is None or book is None or book.has_positions or self.sim is None:
            return None
        return (promised, self.sim.end_time, self.deps.settings.get(self.sim.user_id)[1],
                *map(id, self.walks.values()))

    def _quiet_watch(self, tick: Tick) -> Watch | None:
        """After a tick that planned nothing durable: the simulation's fill bands plus,
        for a running bot, each walk's `reprice.quiet` (its next nudge, its peg's
        tolerance) and the program's `quiet_until` (its next entry time, its exit time).
        A stale, killing or still-starting bot, and one holding positions (its drawdown
        guard and its exits read every tick), takes every tick in full."""
        if self.status in _PLANNING:
            if self.status != "running" or self.stale or self.program is None:
                return None
            until = self._program_quiet_until(tick.ts)
            if until is None:
                return None
            bands = self._fill_bands()
            if bands is None:
                return None
            walks = self.bots.walks
            for oid, walk in self.walks.items():
                entry = self.tickets.get(oid)
                if entry is None:
                    continue
                walk_until, lo, hi = walks.quiet(walk)
                if walk_until < until:
                    until = walk_until
                if walk.enabled:
                    bands.append((entry[1], entry[0].legs, PEG, lo, hi, walk.legs))
        elif self.status in _QUIET:
            return super()._quiet_watch(tick)  # a halted or killed bot only settles: as a plain simulation
        else:
            return None
        end = self.sim.end_time  # type: ignore[union-attr]
        return self.deps.watches.make(until if until < end else end, bands)

    def _adopt_quiet(self, plan: _Plan) -> None:
        """Keep what a plan with nothing to commit changed in memory (walk timers, the guard)."""
        self.walks.update(plan.walks)
        if plan.guard is not None:
            self.guard = plan.guard

    def _plan(self, tick: Tick) -> _Plan:
        plan = _Plan()
        status = self.status
        book = self.book
        assert book is not None
        if status == "killing":
            plan.actions.extend(_Cancel(oid) for oid, o in self.orders.items() if o.is_pending)
            if self._flatten_on_kill and book.has_positions:
                plan.actions.append(_Flatten())
            plan.status = "killed"
            plan.entries.append(DecisionEntry(ts=tick.ts, kind="log", message="session killed: orders canceled"
                                              + (", positions closed at market" if self._flatten_on_kill else ""),
                                              data={"event": "killed", "flatten": self._flatten_on_kill}))
            return plan
        if status not in _PLANNING or self.program is None or tick.closing:
            return plan
        if status == "waiting_for_data":
            plan.status = "running"
            plan.entries.append(DecisionEntry(ts=tick.ts, kind="log", message="market data is flowing: running",
                                              data={"event": "running"}))
        if self.stale:
            plan.entries.append(DecisionEntry(ts=tick.ts, kind="log", message="market data is fresh again: resuming",
                                              data={"event": "data_fresh"}))
            self.stale = False
        # risk: the daily-loss cap, on a mark one garbage quote cannot trip (a flat bot's
        # value is its cash, which only moves on fills: nothing to re-check between them)
        if self.guard is not None and book.has_positions:
            guard, reading = self.guard.step(self.risk, tick=tick, cash=book.cash, holdings=self._risk_holdings(book),
                                             quotes=self.deps.combos.sane_mid(tick))
            plan.guard = guard
            if reading.drawdown > self.max_drawdown:
                self.max_drawdown = reading.drawdown
            if reading.halt:
                plan.actions.extend(_Cancel(oid) for oid, o in self.orders.items() if o.is_pending)
                if book.has_positions:
                    plan.actions.append(_Flatten())
                plan.status = "halted"
                plan.halt_reason = "max_daily_loss"
                plan.entries.append(DecisionEntry(
                    ts=tick.ts, kind="log",
                    message=f"drawdown {reading.drawdown:.2%} reached max_daily_loss_pct "
                            f"{self.risk.max_daily_loss_pct:.2%}: canceling orders, closing positions, halting",
                    data={"event": "halted", "reason": "max_daily_loss", "drawdown": reading.drawdown,
                          "robust_nlv": reading.robust_nlv}))
                return plan
        # re-pricing of the strategy's resting orders
        combos = self.deps.combos
        walks = self.bots.walks
        for oid, walk in self.walks.items():
            entry = self.tickets.get(oid)
            if entry is None:
                continue
            ticket, key = entry
            combo = combos.get(key, ticket.legs, tick)
            if combo is None:
                continue
            walk2, new, reason = walks.step(walk, tick, combo.raw_mid)
            if walk2 is not walk:
                plan.walks[oid] = walk2
            if new is not None:
                plan.actions.append(_Replace(oid, self.deps.new_uuid(), new, reason))
                intent, tag = self.meta[oid]
                plan.entries.append(DecisionEntry(
                    ts=tick.ts, kind="log",
                    message=f"{tag}: re-price to {new.price} {new.price_effect} ({reason})",
                    data={"event": "reprice", "tag": tag, "intent": intent, "order_id": oid,
                          "price": new.price, "price_effect": new.price_effect, "reason": reason,
                          "mid": combo.raw_mid}))
        # the strategy, unless its last quiet step promised quiet until later
        if self._program_promised(tick) is not None:
            plan.program_quiet = True
            return plan
        actions, entries = len(plan.actions), len(plan.entries)
        ctx = _Recorder(self, tick, plan)
        state = self.program.step(self.state, ctx)
        if state is not self.state:
            plan.state = state
        else:
            plan.program_quiet = len(plan.actions) == actions and len(plan.entries) == entries
        return plan

    def deny_new(self, intent: str, request: OrderRequest, plan: _Plan) -> OrderDenied | None:
        """The risk policy's answer to a new order (a closing order is never refused)."""
        if self.status not in _PLANNING:
            return OrderDenied(code="session_not_running", message=f"the session is {self.status}")
        if self.stale and intent != CLOSING:
            return OrderDenied(code="stale_data", message="market data is stale; no new orders until it is fresh")
        assert self.book is not None
        pending = sum(1 for o in self.orders.values() if o.is_pending)
        planned = sum(1 for a in plan.actions if isinstance(a, _Place))
        opens = sum(1 for leg in request.legs if leg.action.endswith("to open"))
        return check_new_order(self.risk, len(self.book.open_positions()), pending + planned,
                               intent=intent, opens=opens)

    # -- committing a plan -------------------------------------------------------------------

    async def _commit_plan(self, tick: Tick, plan: _Plan) -> None:
        assert self.sim is not None and self.book is not None and self.session is not None
        fees, slippage = self.deps.settings.get(self.sim.user_id)
        book = self.book.copy()
        ts = tick.ts
        changed: list[Order] = []  # orders whose document changes (canceled ones)
        placed: list[tuple[Order, str, str, Any]] = []  # new orders, with intent, tag and ticket
        txs: list[Any] = []
        walks = dict(self.walks)
        walks.update(plan.walks)
        meta = dict(self.meta)
        entries = list(plan.entries)
        errors = plan.errors
        gone: set[UUID] = set()

        def place(request: OrderRequest, oid: UUID, intent: str, tag: str, replacing: UUID | None = None) -> bool:
            nonlocal errors
            assessed = validate_order(request, tick=tick, session_date=self.sim.date, book=book,  # type: ignore[union-attr]
                                      fees=fees, slippage=slippage, replacing=replacing)
            if isinstance(assessed, OrderDenied):
                errors += 1
                entries.append(DecisionEntry(ts=ts, kind="log", message=f"{tag}: order refused: {assessed.message}",
                                             data={"event": "order_refused", "tag": tag, "code": assessed.code}))
                return False
            placement = place_order(assessed, order_id=oid, ts=ts, fees=fees)
            if replacing is not None:
                book.release(replacing)
            if placement.transactions:
                book.apply_all(placement.transactions)
                txs.extend(placement.transactions)
            else:
                book.reserve(oid, placement.reservation)
            placed.append((placement.order, intent, tag, assessed.ticket))
            meta[oid] = (intent, tag)
            return True

        for action in plan.actions:
            if isinstance(action, _Cancel):
                order = self.orders.get(action.order_id)
                if order is None or not order.is_pending or action.order_id in gone:
                    continue
                changed.append(cancel_order(order, ts=ts))
                book.release(action.order_id)
                walks.pop(action.order_id, None)
                gone.add(action.order_id)
            elif isinstance(action, _Replace):
                old = self.orders.get(action.order_id)
                if old is None or not old.is_pending or action.order_id in gone:
                    continue
                intent, tag = meta[action.order_id]
                request = msgspec.structs.replace(old.request(), price=action.limit.price,
                                                  price_effect=action.limit.price_effect)
                if place(request, action.new_id, intent, tag, replacing=action.order_id):
                    changed.append(cancel_order(old, ts=ts))
                    gone.add(action.order_id)
                    walk = walks.pop(action.order_id, None)
                    if walk is not None and placed[-1][0].is_pending:
                        walks[action.new_id] = walk
            elif isinstance(action, _Place):
                if place(action.request, action.order_id, action.intent, action.tag) and placed[-1][0].is_pending:
                    o, intent, _tag, ticket = placed[-1]
                    walks[o.id] = self._walk(intent, o, ticket, ts)
            elif isinstance(action, _Flatten):
                for state in list(book.open_positions()):
                    action_name = "sell to close" if state.direction == "long" else "buy to close"
                    request = OrderRequest(type="market", legs=(
                        OrderLeg(instrument=state.instrument.symbol, quantity=Decimal(state.quantity),
                                 action=action_name),))
                    place(request, self.deps.new_uuid(), CLOSING, f"flatten-{state.instrument.symbol.strip()}")

        budget = self.budget
        halt_for_errors = False
        for _ in range(errors):
            budget, halt = record_error(budget, self.risk)
            halt_for_errors = halt_for_errors or halt
        status = plan.status
        halt_reason = plan.halt_reason
        if halt_for_errors and status not in ("halted", "killed"):
            status, halt_reason = "halted", "error_budget"
            entries.append(DecisionEntry(ts=ts, kind="log",
                                         message=f"{budget.errors} errors exceed error_budget {self.risk.error_budget}: halting",
                                         data={"event": "halted", "reason": "error_budget"}))
            for oid, o in self.orders.items():
                if o.is_pending and oid not in gone:
                    changed.append(cancel_order(o, ts=ts))
                    book.release(oid)
                    walks.pop(oid, None)
                    gone.add(oid)
        if placed and self.tick is not None:
            book.mark(tick)

        # events: order updates, financials, decision entries
        events: list[_Event] = []
        bodies: list[tuple[Order, bytes]] = [(o, encode(o)) for o in changed]
        new_bodies: list[tuple[Order, bytes]] = [(o, encode(o)) for o, *_ in placed]
        for _, body in bodies + new_bodies:
            events.append(self._event("order_update", body))
        if txs:
            events.append(self._event("financials_update", self._financials_payload(book)))
        sid = self.session.id
        for e in entries:
            events.append(self._event("decision_log", encode(msgspec.structs.replace(e, session_id=sid))))
        w = self._writes(events)
        for o, body in bodies:
            w.update_order(o.id, o.status, ts, body)
        seq = self._order_seq
        for o, body in new_bodies:
            seq += 1
            w.add_order(self.id, seq, o.id, o.status, o.datetime, body)
        w.add_transactions(self.id, len(self.transactions) + 1, _tx_rows(txs))
        state = plan.state if plan.state is not None else self.state
        state_json = encode(state).decode()
        meta_json = encode({str(k): list(v) for k, v in meta.items()}).decode()
        error_count = budget.errors

        w.execute(bs.SAVE_PROGRAM_STATE, sid, state_json, meta_json, error_count)
        if status is not None:
            w.execute(bs.SET_STATUS, sid, status, ts, list(bs.TERMINAL_STATUSES), halt_reason, None)
        if self._order_seq == 0 and new_bodies:
            w.execute(repo.MARK_TRADED, self.id)
        await self._commit(w, events)

        # durable: apply. Re-pricing alone (every replacement resting, nothing filled at
        # placement) keeps the program's quiet promise (ctx.py).
        if (plan.program_quiet and status is None and not txs and all(isinstance(a, _Replace) for a in plan.actions)
                and all(o.is_pending for o, *_ in placed)):
            self._strategy_orders = None
        else:
            self._orders_changed()
        self._order_seq = seq
        for o, _ in bodies:
            self.orders[o.id] = o
            self.tickets.pop(o.id, None)
        for o, _intent, _tag, ticket in placed:
            self.orders[o.id] = o
            if o.is_pending:
                self.tickets[o.id] = (ticket, combo_key(ticket.legs))
        self.transactions.extend(txs)
        self.book = book
        self.walks = {oid: wk for oid, wk in walks.items() if oid in self.tickets}
        self.meta = meta
        self.budget = budget
        if plan.guard is not None:
            self.guard = plan.guard
        if plan.state is not None:
            self.state = plan.state
        if status is not None:
            self.status = status
        self._publish(events)
        self._append_log(entries)
        if status is not None and self.bots.on_status is not None:
            self.bots.on_status(sid, status)

    def _append_log(self, entries: list[DecisionEntry]) -> None:
        if not entries or self.session is None:
            return
        path = self.bots.logs_dir / "sessions" / f"{self.session.id}.jsonl"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "ab") as f:
                for e in entries:
                    f.write(encode(e) + b"\n")
        except OSError:
            log.exception("could not append to the decision log file %s", path)

    # -- the close ---------------------------------------------------------------------------

    async def _settle_tick(self, tick: Tick, fills: list[tuple[UUID, Fill]], closing: bool) -> None:
        if closing and self.session is not None and self.status in _PLANNING:
            sid = self.session.id
            await self.deps.committer.commit(lambda conn: bs.set_session_status(conn, sid, "settling", at=tick.ts))
            self.status = "settling"
        try:
            await super()._settle_tick(tick, fills, closing)
        finally:
            self._orders_changed()  # fills change the orders' status
        if closing and self.ended and self.session is not None:
            await self._finalize(tick)

    async def _finalize(self, tick: Tick) -> None:
        assert self.sim is not None and self.book is not None and self.session is not None
        book = self.book
        final = "completed" if self.status in ("settling", "running", "waiting_for_data") else self.status
        sid = self.session.id
        opening = self.sim.starting_capital
        final_nlv = dollars(book.cash)
        filled = sum(1 for o in self.orders.values() if o.status == "filled")
        values = dict(
            status=final, at=tick.ts, final_nlv=final_nlv, realized_pl=dollars(book.realized),
            total_pl=dollars(final_nlv - opening), fees=dollars(book.fees),
            max_intraday_dd=dollars(self.max_drawdown * opening), order_count=len(self.orders), fill_count=filled,
        )
        await self.deps.committer.commit(lambda conn: bs.finalize_session(conn, sid, **values))
        self.status = final
        if self.bots.on_status is not None:
            self.bots.on_status(sid, final)


