"""The live-simulation actor: one per open live simulation (a `/live` sim, an account's
session, a bot's session).

It owns the simulation's orders, transactions and book in memory; nothing else mutates
them. Commands (place, replace, cancel, end) are validated against that state, committed
through the group committer — order, transactions, event and idempotency record in one
unit — then applied to memory and published, and only then answered. Reads come straight
from memory, which only ever holds committed state.

On every tick (`on_tick`, synchronous): mark the book, record a history row when the
financials changed, and check each pending order with the domain's fill rule. A tick
with fills, or the closing tick, leaves tick work: decide on a scratch copy of the book
(fill-time buying-power re-check, rejections, expiry, settlement), commit, then swap the
copy in and publish. If the commit fails the copy is dropped and the next tick decides
again; the database is the truth, and memory never runs ahead of it.

Spec: live-trading-api (lifecycle, idempotency, cancel/replace), api-walkthrough
Part 12 (events, settlement), DESIGN.md "Fills", "Buying power", "Ids".
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Callable
from uuid import UUID

import msgspec
import trio

from odted.domain.chain import Tick
from odted.domain.fills import Fill, decide
from odted.domain.pricing import ComboQuote, quote_combo
from odted.domain.ids import order_id as make_order_id
from odted.domain.ledger import Book
from odted.domain.lifecycle import (
    cancel_order,
    dry_run_order,
    expire_order,
    fill_order,
    place_order,
    reject_order,
    reservation_of,
)
from odted.domain.money import ZERO, dollars
from odted.domain.orders import Order, OrderDenied, OrderRequest, ReplaceOrderRequest, Ticket, TicketLeg
from odted.domain.risk import sane_mid
from odted.domain.settlement import settle_on_tick
from odted.domain.transactions import Transaction
from odted.domain.validation import check_replacement, parse_order, recheck_fill, validate_order
from odted.market.bus import TickBus
from odted.runtime.actor import Actor, TickWork
from odted.runtime.errors import Refusal
from odted.runtime.events import EventHub, encode_envelope
from odted.runtime.history import HistoryWriter
from odted.runtime.settings import UserSettingsCache
from odted.runtime.watch import FILL, Band, Watch, Watches
from odted.store import live as repo
from odted.store.committer import Committer
from odted.store.db import Conn, Database, DatabaseUnavailable, UniqueViolation

log = logging.getLogger(__name__)

__all__ = [
    "LiveDeps",
    "LiveSim",
    "PlaceOrder",
    "ReplaceOrder",
    "CancelOrder",
    "CancelAll",
    "EndSimulation",
    "Reply",
    "request_hash",
]

_enc = msgspec.json.Encoder(decimal_format="string")
encode = _enc.encode
_order_dec = msgspec.json.Decoder(Order)
_tx_dec = msgspec.json.Decoder(Transaction)


def request_hash(method: str, path: str, body: Any) -> str:
    """What an `Idempotency-Key` is bound to: the method, path and decoded body."""
    h = hashlib.sha256(f"{method} {path}\n".encode())
    h.update(encode(body))
    return h.hexdigest()


# -- commands ----------------------------------------------------------------------


@dataclass(frozen=True)
class PlaceOrder:
    request: OrderRequest
    idempotency_key: str | None = None
    request_hash: str = ""
    dry_run: bool = False


@dataclass(frozen=True)
class ReplaceOrder:
    request: ReplaceOrderRequest
    idempotency_key: str | None = None
    request_hash: str = ""


@dataclass(frozen=True)
class CancelOrder:
    order_id: UUID


@dataclass(frozen=True)
class CancelAll:
    """Cancel every pending order (bots: cancel-all, kill, halt)."""


@dataclass(frozen=True)
class EndSimulation:
    """End the simulation now: `delete` removes it with its orders (DELETE /live);
    otherwise it is marked `abandoned` (an account session that never traded)."""

    delete: bool = True


@dataclass(frozen=True)
class Reply:
    """An answer to a command: the HTTP status and the JSON body, ready to send."""

    status: int
    body: bytes
    replayed: bool = False


# -- dependencies ------------------------------------------------------------------


ComboKey = tuple[tuple[int | None, str, int, int], ...]


def combo_key(legs: tuple[TicketLeg, ...]) -> ComboKey:
    """What a combo quote depends on besides the tick: each leg's strike, right, side, ratio."""
    return tuple((leg.strike, leg.instrument.right, leg.sign, leg.ratio) for leg in legs)


class ComboCache:
    """What the current tick says that many actors ask, computed once per tick and shared:
    combo quotes (sessions that rest orders on one structure, or check the exit of one —
    bots running one strategy — price it once) and the drawdown rule's sane mids."""

    __slots__ = ("_seq", "_quotes", "_sane")

    def __init__(self) -> None:
        self._seq = -1
        self._quotes: dict[ComboKey, ComboQuote | None] = {}
        self._sane: Callable[[int, str], tuple[bool, Decimal | None]] = _no_tick

    def _reset(self, tick: Tick) -> None:
        self._seq = tick.seq
        self._quotes = {}
        memo: dict[tuple[int, str], tuple[bool, Decimal | None]] = {}

        def look(strike: int, right: str) -> tuple[bool, Decimal | None]:
            try:
                return memo[strike, right]
            except KeyError:
                answer = memo[strike, right] = sane_mid(tick, strike, right)
                return answer

        self._sane = look

    def get(self, key: ComboKey, legs: tuple[TicketLeg, ...], tick: Tick) -> ComboQuote | None:
        """The combo quote of `legs` (`key` = `combo_key(legs)`)."""
        if tick.seq != self._seq:
            self._reset(tick)
        try:
            return self._quotes[key]
        except KeyError:
            combo = self._quotes[key] = quote_combo(legs, tick)
            return combo

    def sane_mid(self, tick: Tick) -> Callable[[int, str], tuple[bool, Decimal | None]]:
        """`risk.sane_mid` of `tick`, memoized (the drawdown guard's `quotes`)."""
        if tick.seq != self._seq:
            self._reset(tick)
        return self._sane


def _no_tick(strike: int, right: str) -> tuple[bool, Decimal | None]:
    raise AssertionError("ComboCache.sane_mid was not given a tick")


@dataclass
class LiveDeps:
    db: Database
    committer: Committer
    hub: EventHub
    settings: UserSettingsCache
    history: HistoryWriter
    bus: TickBus
    idempotency_retention: float = 24 * 3600.0
    new_uuid: Callable[[], UUID] = uuid.uuid4
    on_ended: Callable[[LiveSim], None] = field(default=lambda sim: None)
    combos: ComboCache = field(default_factory=ComboCache)
    watches: Watches = field(init=False)

    def __post_init__(self) -> None:
        self.watches = Watches(self.combos, self.settings)


class _Event:
    __slots__ = ("id", "type", "payload")

    def __init__(self, id: int, type: str, payload: bytes) -> None:
        self.id = id
        self.type = type
        self.payload = payload


class LiveSim(Actor):
    """See the module docstring."""

    __slots__ = ("id", "deps", "readonly", "sim", "book", "orders", "tickets", "transactions", "idempotency",
                 "tick", "last_event_id", "_order_seq", "_ended", "_last_history", "_last_history_second")

    def __init__(self, sim_id: UUID, deps: LiveDeps, *, readonly: bool = False) -> None:
        super().__init__(str(sim_id))
        self.id = sim_id
        self.deps = deps
        self.readonly = readonly
        self.sim: repo.SimulationRow | None = None
        self.book: Book | None = None
        self.orders: dict[UUID, Order] = {}
        self.tickets: dict[UUID, tuple[Ticket, ComboKey]] = {}  # the pending orders, parsed
        self.transactions: list[Transaction] = []
        self.idempotency: dict[str, tuple[str, int, bytes]] = {}
        self.tick: Tick | None = None
        self.last_event_id = 0
        self._order_seq = 0
        self._ended = False
        self._last_history: tuple[Decimal, int] | None = None
        self._last_history_second: datetime | None = None

    # -- state ------------------------------------------------------------------------

    @property
    def user_id(self) -> UUID:
        assert self.sim is not None
        return self.sim.user_id

    @property
    def ended(self) -> bool:
        return self._ended

    def finished(self) -> bool:
        return self._ended

    async def load(self) -> None:
        state = await self.deps.db.run(repo.load_state, self.id)
        if state is None or (state.simulation.status != "open" and not self.readonly):
            self.sim = None if state is None else state.simulation
            self._ended = True
            return
        sim = state.simulation
        txs = [_tx_dec.decode(doc) for doc in state.transactions]
        book = Book.from_transactions(sim.id, sim.starting_capital, txs)
        orders: dict[UUID, Order] = {}
        tickets: dict[UUID, tuple[Ticket, ComboKey]] = {}
        for doc in state.orders:
            order = _order_dec.decode(doc)
            orders[order.id] = order
            if order.is_pending:
                ticket = parse_order(order.request())
                if isinstance(ticket, OrderDenied):  # stored orders passed validation once
                    raise ValueError(f"stored pending order {order.id} no longer parses: {ticket}")
                tickets[order.id] = (ticket, combo_key(ticket.legs))
                book.reserve(order.id, reservation_of(order, ticket))
        await self.deps.settings.ensure(sim.user_id)
        self.sim = sim
        self.book = book
        self.orders = orders
        self.tickets = tickets
        self.transactions = txs
        self.idempotency = {k: (h, s, b) for k, h, s, b in state.idempotency}
        self.last_event_id = state.last_event_id
        self._order_seq = len(orders)
        if sim.status != "open":  # a read-only snapshot of an ended simulation
            self._ended = True
            return
        latest = self.deps.bus.latest
        if latest is not None:
            self.tick = latest
            book.mark(latest)
            self._record_history(latest, book)

    # -- commands ---------------------------------------------------------------------

    async def handle(self, message: Any) -> Any:
        if self._ended:
            raise Refusal.conflict("simulation_ended", "this simulation has ended")
        match message:
            case PlaceOrder():
                return await self._place(message)
            case ReplaceOrder():
                return await self._replace(message)
            case CancelOrder(order_id=oid):
                return await self._cancel(oid)
            case CancelAll():
                return await self._cancel_all()
            case EndSimulation(delete=delete):
                return await self._end(delete)
        raise TypeError(f"unknown command {message!r}")

    def _idempotent_replay(self, key: str | None, rhash: str) -> Reply | None:
        if key is None:
            return None
        found = self.idempotency.get(key)
        if found is None:
            return None
        stored_hash, status, body = found
        if stored_hash != rhash:
            raise Refusal.conflict("idempotency_key_reused",
                                   "this Idempotency-Key was used with a different request; use a new key")
        return Reply(status, body, replayed=True)

    def _check_open(self, tick: Tick | None) -> None:
        assert self.sim is not None
        if tick is not None and (tick.closing or tick.ts >= self.sim.end_time):
            raise Refusal.invalid("market_closed", "no orders are accepted after the close")

    def _settings(self) -> tuple[Any, Decimal]:
        return self.deps.settings.get(self.user_id)

    async def _place(self, cmd: PlaceOrder) -> Reply:
        assert self.sim is not None and self.book is not None
        if not cmd.dry_run:
            replay = self._idempotent_replay(cmd.idempotency_key, cmd.request_hash)
            if replay is not None:
                return replay
        tick = self.tick
        self._check_open(tick)
        fees, slippage = self._settings()
        assessed = validate_order(cmd.request, tick=tick, session_date=self.sim.date, book=self.book,
                                  fees=fees, slippage=slippage)
        if isinstance(assessed, OrderDenied):
            raise _denied(assessed)
        assert tick is not None
        if cmd.dry_run:
            return Reply(200, encode(dry_run_order(assessed, ts=tick.ts)))
        oid = make_order_id(client_order_id=cmd.request.client_order_id, user_id=self.user_id,
                            idempotency_key=cmd.idempotency_key, new_uuid=self.deps.new_uuid)
        existing = self.orders.get(oid)
        if existing is not None:  # a replay by client_order_id resolves to the order
            return Reply(201, encode(existing), replayed=True)
        placement = place_order(assessed, order_id=oid, ts=tick.ts, fees=fees)
        order = placement.order
        body = encode(order)
        events = [self._event("order_update", body)]
        book = self.book
        if placement.transactions:
            book = self.book.copy()
            book.apply_all(placement.transactions)
            book.mark(tick)
            events.append(self._event("financials_update", self._financials_payload(book)))
        seq = self._order_seq + 1
        key = cmd.idempotency_key
        w = self._writes(events)
        w.add_order(self.id, seq, oid, order.status, order.datetime, body)
        w.add_transactions(self.id, len(self.transactions) + 1, _tx_rows(placement.transactions))
        if key is not None:
            w.add_idempotency(self.user_id, key, cmd.request_hash, 201, body, self.id)
        if seq == 1:
            sim_id = self.id
            w.then.append(lambda conn: repo.mark_traded(conn, sim_id))
        try:
            await self._commit(w, events)
        except UniqueViolation as e:
            return await self._resolve_conflict(e, cmd)
        # applied only now that it is durable
        self._order_seq = seq
        self.orders[oid] = order
        if order.is_pending:
            self.tickets[oid] = (assessed.ticket, combo_key(assessed.ticket.legs))
            self.book.reserve(oid, placement.reservation)
        else:
            self.book = book
            self.transactions.extend(placement.transactions)
        if key is not None:
            self.idempotency[key] = (cmd.request_hash, 201, body)
        self._publish(events)
        return Reply(201, body)

    async def _resolve_conflict(self, e: UniqueViolation, cmd: PlaceOrder) -> Reply:
        """A key or client order id already used outside this simulation."""
        # A key's order id is derived from it, so a key reused in another simulation
        # collides on the order's id or on the key's record: either way, the record decides.
        if cmd.idempotency_key is not None:
            found = await self.deps.db.run(repo.get_idempotency, self.user_id, cmd.idempotency_key,
                                           self.deps.idempotency_retention)
            if found is not None:
                stored_hash, status, body = found
                if stored_hash != cmd.request_hash:
                    raise Refusal.conflict("idempotency_key_reused",
                                           "this Idempotency-Key was used with a different request; use a new key")
                return Reply(status, body, replayed=True)
            raise Refusal.conflict("idempotency_key_reused", "this Idempotency-Key was already used; use a new key")
        raise Refusal.conflict("order_id_taken", "an order with this id already exists; use a new client_order_id")

    async def _replace(self, cmd: ReplaceOrder) -> Reply:
        assert self.sim is not None and self.book is not None
        replay = self._idempotent_replay(cmd.idempotency_key, cmd.request_hash)
        if replay is not None:
            return replay
        original = self.orders.get(cmd.request.order_id)
        if original is None:
            raise Refusal.not_found("order")
        if not original.is_pending:
            raise Refusal.conflict("order_not_pending", f"the order is {original.status}; only a pending order can be replaced")
        denied = check_replacement(original, cmd.request.as_request())
        if denied is not None:
            raise _denied(denied)
        tick = self.tick
        self._check_open(tick)
        fees, slippage = self._settings()
        assessed = validate_order(cmd.request.as_request(), tick=tick, session_date=self.sim.date, book=self.book,
                                  fees=fees, slippage=slippage, replacing=original.id)
        if isinstance(assessed, OrderDenied):
            raise _denied(assessed)
        assert tick is not None
        canceled = cancel_order(original, ts=tick.ts)
        oid = make_order_id(client_order_id=cmd.request.client_order_id, user_id=self.user_id,
                            idempotency_key=cmd.idempotency_key, new_uuid=self.deps.new_uuid)
        if oid in self.orders:
            raise Refusal.conflict("order_id_taken", "an order with this id already exists; use a new client_order_id")
        placement = place_order(assessed, order_id=oid, ts=tick.ts, fees=fees)
        order = placement.order
        canceled_body = encode(canceled)
        body = encode(order)
        events = [self._event("order_update", canceled_body), self._event("order_update", body)]
        book = self.book.copy()
        book.release(original.id)
        if placement.transactions:
            book.apply_all(placement.transactions)
            book.mark(tick)
            events.append(self._event("financials_update", self._financials_payload(book)))
        else:
            book.reserve(oid, placement.reservation)
        seq = self._order_seq + 1
        key = cmd.idempotency_key
        w = self._writes(events)
        w.update_order(original.id, canceled.status, tick.ts, canceled_body)
        w.add_order(self.id, seq, oid, order.status, order.datetime, body)
        w.add_transactions(self.id, len(self.transactions) + 1, _tx_rows(placement.transactions))
        if key is not None:
            w.add_idempotency(self.user_id, key, cmd.request_hash, 200, body, self.id)
        await self._commit(w, events)
        self._order_seq = seq
        self.orders[original.id] = canceled
        self.tickets.pop(original.id, None)
        self.orders[oid] = order
        if order.is_pending:
            self.tickets[oid] = (assessed.ticket, combo_key(assessed.ticket.legs))
        self.book = book
        self.transactions.extend(placement.transactions)
        if key is not None:
            self.idempotency[key] = (cmd.request_hash, 200, body)
        self._publish(events)
        return Reply(200, body)

    async def _cancel(self, oid: UUID) -> Reply:
        order = self.orders.get(oid)
        if order is None:
            raise Refusal.not_found("order")
        if not order.is_pending:
            raise Refusal.conflict("order_not_pending", f"the order is {order.status}; only a pending order can be canceled")
        await self._cancel_orders([order])
        return Reply(200, encode(self.orders[oid]))

    async def _cancel_all(self) -> Reply:
        pending = [o for o in self.orders.values() if o.is_pending]
        if pending:
            await self._cancel_orders(pending)
        return Reply(200, encode({"canceled": len(pending)}))

    async def _cancel_orders(self, orders: list[Order]) -> None:
        assert self.book is not None
        ts = self._now()
        canceled = [cancel_order(o, ts=ts) for o in orders]
        bodies = [encode(c) for c in canceled]
        events = [self._event("order_update", b) for b in bodies]

        w = self._writes(events)
        for c, b in zip(canceled, bodies):
            w.update_order(c.id, c.status, ts, b)
        await self._commit(w, events)
        for c in canceled:
            self.orders[c.id] = c
            self.tickets.pop(c.id, None)
            self.book.release(c.id)
        self._publish(events)

    async def _end(self, delete: bool) -> Reply:
        sim_id = self.id
        if delete:
            await self.deps.committer.commit(lambda conn: repo.delete_simulation(conn, sim_id))
        else:
            if self.orders:
                raise Refusal.conflict("session_traded", "a session that has traded cannot be deleted; it settles at the close")
            await self.deps.committer.commit(lambda conn: repo.set_status(conn, sim_id, "abandoned"))
        self._ended = True
        self.deps.on_ended(self)
        return Reply(204, b"")

    # -- ticks ------------------------------------------------------------------------

    def on_tick(self, tick: Tick) -> TickWork | None:
        work = self._take_tick(tick)
        if work is None and not self._ended and self.sim is not None:
            self.watch = self._quiet_watch(tick)
        return work

    def on_quiet_tick(self, tick: Tick) -> None:
        self.tick = tick

    def _quiet_watch(self, tick: Tick) -> Watch | None:
        """What keeps the coming ticks quiet after one that left nothing to do
        (`odted.runtime.watch`): a flat simulation whose pending orders are all limits
        waits for one of them to reach its fill threshold, or for its close. One holding
        positions is marked and recorded every tick: no watch."""
        bands = self._fill_bands()
        if bands is None:
            return None
        assert self.sim is not None
        return self.deps.watches.make(self.sim.end_time, bands)

    def _fill_bands(self) -> list[Band] | None:
        """A `FILL` band per pending order, or None when a tick could change the book (it
        holds positions, whose marks move) or an order is not a plain limit."""
        book = self.book
        if book is None or book.has_positions:
            return None
        slippage = self.deps.settings.get(self.user_id)[1]
        bands: list[Band] = []
        for ticket, key in self.tickets.values():
            if ticket.type != "limit" or ticket.limit is None:
                return None
            bands.append((key, ticket.legs, FILL, ticket.limit - slippage, None, len(ticket.legs)))
        return bands

    def _take_tick(self, tick: Tick) -> TickWork | None:
        sim = self.sim
        book = self.book
        if sim is None or book is None or self._ended:
            return None
        self.tick = tick
        if book.has_positions:  # nothing to mark otherwise: the market value stays zero
            book.mark(tick)
        self._record_history(tick, book)
        closing = tick.closing or tick.ts >= sim.end_time
        fills: list[tuple[UUID, Fill]] | None = None
        if self.tickets:
            slippage = self.deps.settings.get(sim.user_id)[1]
            combos = self.deps.combos
            for oid, (ticket, key) in self.tickets.items():
                combo = combos.get(key, ticket.legs, tick)
                fill = None if combo is None else decide(ticket, combo, slippage)  # = fill_on_tick
                if fill is not None:
                    if fills is None:
                        fills = []
                    fills.append((oid, fill))
        if fills is None:
            if not closing:
                return None
            fills = []

        async def work() -> None:
            await self._settle_tick(tick, fills, closing)

        return work

    async def _settle_tick(self, tick: Tick, fills: list[tuple[UUID, Fill]], closing: bool) -> None:
        """Fills (with their re-check), then at the close expiry and settlement."""
        assert self.sim is not None and self.book is not None
        fees, _ = self._settings()
        book = self.book.copy()
        changed: list[Order] = []
        new_txs: list[Transaction] = []
        for oid, fill in fills:
            order = self.orders[oid]
            ticket = self.tickets[oid][0]
            denied = recheck_fill(ticket, fill, book=book, fees=fees, order_id=oid)
            book.release(oid)
            if denied is not None:
                changed.append(reject_order(order, denied, ts=tick.ts))
                continue
            filled, txs = fill_order(order, ticket, fill, ts=tick.ts, fees=fees)
            book.apply_all(txs)
            changed.append(filled)
            new_txs.extend(txs)
        settled_at: datetime | None = None
        closing_balance: Decimal | None = None
        if closing:
            done = {o.id for o in changed}
            for oid in self.tickets:
                if oid not in done:
                    changed.append(expire_order(self.orders[oid], ts=tick.ts))
                    book.release(oid)
            settlement = settle_on_tick(book, tick, fees)
            book.apply_all(settlement)
            new_txs.extend(settlement)
            settled_at = tick.ts
            closing_balance = dollars(book.cash)
        book.mark(tick)
        bodies = [encode(o) for o in changed]
        events = [self._event("order_update", b) for b in bodies]
        if new_txs:
            events.append(self._event("financials_update", self._financials_payload(book)))
        if closing:
            events.append(self._event("ended", b"{}"))
        sim_id = self.id
        w = self._writes(events)
        for o, b in zip(changed, bodies):
            w.update_order(o.id, o.status, tick.ts, b)
        w.add_transactions(sim_id, len(self.transactions) + 1, _tx_rows(new_txs))
        if closing:
            assert settled_at is not None and closing_balance is not None
            at, balance = settled_at, closing_balance
            w.then.append(lambda conn: repo.settle_simulation(conn, sim_id, at, balance))
        try:
            await self._commit(w, events)
        except DatabaseUnavailable:
            log.warning("simulation %s: tick %s not committed (database unavailable); retrying on the next tick",
                        self.id, tick.seq)
            return
        for o in changed:
            self.orders[o.id] = o
            self.tickets.pop(o.id, None)
        self.transactions.extend(new_txs)
        self.book = book
        self._publish(events)
        if closing:
            self.sim = _replace_row(self.sim, status="settled", settled_at=settled_at, closing_balance=closing_balance)
            self._ended = True
            self.deps.on_ended(self)

    def _record_history(self, tick: Tick, book: Book) -> None:
        """Hand the history writer a row for this second when the financials changed."""
        ts = tick.ts
        second = ts.replace(microsecond=0) if ts.microsecond else ts
        if second == self._last_history_second:
            return
        self._last_history_second = second
        key = (book.net_liquidation_value, book.revision)  # the rest changes only with a revision
        if key == self._last_history:
            return
        self._last_history = key
        self.deps.history.add(self.id, second, book.history_values())

    # -- events and commits ----------------------------------------------------------

    def _event(self, type_: str, payload: bytes) -> _Event:
        self.last_event_id += 1
        return _Event(self.last_event_id, type_, payload)

    def _writes(self, events: list[_Event]) -> repo.Writes:
        """A unit of work that starts with `events`."""
        w = repo.Writes()
        for ev in events:
            w.add_event(self.id, ev.id, ev.type, ev.payload)
        return w

    async def _commit(self, unit: repo.Writes | Callable[[Conn], Any], events: list[_Event]) -> None:
        """Commit `unit`; if it fails, give back the event ids it would have used."""
        try:
            await self.deps.committer.commit(unit)
        except BaseException:
            if events:
                self.last_event_id = events[0].id - 1
            raise

    def _publish(self, events: list[_Event]) -> None:
        for ev in events:
            self.deps.hub.publish(self.id, ev.id, encode_envelope(self.id, ev.id, ev.type, ev.payload))

    def _financials_payload(self, book: Book) -> bytes:
        positions = [
            {"instrument": p.instrument.symbol, "direction": p.direction, "quantity": p.quantity}
            for p in book.open_positions()
        ]
        return encode({
            "cash_balance": dollars(book.cash),
            "available_buying_power": dollars(book.available_buying_power()),
            "realized_profit_loss": dollars(book.realized),
            "positions": positions,
        })

    def _now(self) -> datetime:
        if self.tick is not None:
            return self.tick.ts
        latest = self.deps.bus.latest
        assert self.sim is not None
        return latest.ts if latest is not None else self.sim.start_time

    # -- reads (committed state only) --------------------------------------------------

    def financials(self) -> Any:
        assert self.book is not None
        return self.book.financials()


def _tx_rows(txs: tuple[Transaction, ...] | list[Transaction]) -> list[tuple[UUID, UUID | None, datetime, bytes]]:
    return [(tx.id, tx.order_id, tx.datetime, encode(tx)) for tx in txs]


def _denied(d: OrderDenied) -> Refusal:
    return Refusal(400, d.code, d.message, {"field": d.field} if d.field else {})


def _replace_row(row: repo.SimulationRow, **changes: Any) -> repo.SimulationRow:
    from dataclasses import replace

    return replace(row, **changes)
