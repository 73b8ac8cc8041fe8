"""The live-trading service: what REST, WebSocket and the CLI call, whatever the transport.

It owns the supervisor, the group committer, the history writer and the event hub, and
knows which simulation is whose. Startup and crash recovery are one path: `run` resumes
every open simulation from the database before reporting itself started.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Awaitable, Callable
from uuid import UUID

import msgspec
import trio

from odted.domain.ledger import HistoryRow
from odted.market.bus import TickBus
from odted.market.clock import MarketClock
from odted.runtime.actor import ActorBusy, ActorStopped
from odted.runtime.errors import Refusal
from odted.runtime.events import EventHub, encode_envelope
from odted.runtime.history import HistoryWriter
from odted.runtime.live import EndSimulation, LiveDeps, LiveSim, Reply
from odted.runtime.settings import UserSettingsCache
from odted.runtime.supervisor import Supervisor
from odted.store import live as repo
from odted.store.committer import Committer
from odted.store.db import Database, UniqueViolation

log = logging.getLogger(__name__)

__all__ = ["LiveService", "LiveLimits"]

_history_dec = msgspec.json.Decoder(HistoryRow)
_enc = msgspec.json.Encoder(decimal_format="string")

MIN_CAPITAL = Decimal(1000)
MAX_CAPITAL = Decimal(10_000_000)


@dataclass(frozen=True)
class LiveLimits:
    ask_timeout: float = 2.0
    stale_after_ms: int = 5000
    idempotency_retention: float = 24 * 3600.0


class LiveService:
    def __init__(self, db: Database, bus: TickBus, clock: MarketClock, settings: UserSettingsCache,
                 *, limits: LiveLimits = LiveLimits(), new_uuid: Callable[[], UUID] = uuid.uuid4) -> None:
        self.db = db
        self.bus = bus
        self.clock = clock
        self.limits = limits
        self.hub = EventHub()
        self.committer = Committer(db)
        self.history = HistoryWriter(db)
        self.settings = settings
        self.supervisor = Supervisor(bus, on_crash=self._on_crash, on_give_up=self._on_give_up,
                                     backpressure=self.history.wait_room)
        self._new_uuid = new_uuid
        self._deps = LiveDeps(
            db=db, committer=self.committer, hub=self.hub, settings=settings, history=self.history, bus=bus,
            idempotency_retention=limits.idempotency_retention, new_uuid=new_uuid, on_ended=self._ended,
        )
        self._live_by_user: dict[UUID, UUID] = {}
        self._create_lock = trio.Lock()
        # Consulted in order when resuming a simulation: a hook returns the factory of the
        # actor that runs it (e.g. a bot session's), or None for a plain live simulation.
        self.resume_factories: list[Callable[[UUID], Awaitable[Callable[[], LiveSim] | None]]] = []
        # Called when an actor is given up on (after the sessions's status is `failed`).
        self.give_up_hooks: list[Callable[[UUID], Awaitable[None]]] = []

    # -- lifecycle ----------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[LiveService] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(self.committer.run)
            await nursery.start(self.history.run)
            await nursery.start(self.supervisor.run)
            resumed = await self._resume()
            log.info("live trading ready: %d open simulation(s) resumed", resumed)
            task_status.started(self)
            await trio.sleep_forever()

    async def _resume(self) -> int:
        ids = await self.db.run(repo.open_simulation_ids)
        n = 0
        for sim_id in ids:
            factory: Callable[[], LiveSim] | None = None
            for hook in self.resume_factories:
                factory = await hook(sim_id)
                if factory is not None:
                    break
            try:
                actor = await self.supervisor.start(str(sim_id), factory or self._factory(sim_id))
            except ActorStopped:
                log.error("simulation %s could not be resumed", sim_id)
                continue
            self._track(actor)
            n += 1
        return n

    def _factory(self, sim_id: UUID) -> Callable[[], LiveSim]:
        return lambda: LiveSim(sim_id, self._deps)

    def _track(self, actor: Any) -> None:
        if isinstance(actor, LiveSim) and actor.sim is not None and actor.sim.account_id is None and not actor.ended:
            self._live_by_user[actor.sim.user_id] = actor.id
            self.hub.set_active_live(actor.sim.user_id, actor.id)

    def _ended(self, actor: LiveSim) -> None:
        if actor.sim is not None and self._live_by_user.get(actor.sim.user_id) == actor.id:
            del self._live_by_user[actor.sim.user_id]
            self.hub.set_active_live(actor.sim.user_id, None)

    async def _on_crash(self, key: str, exc: BaseException, count: int) -> None:
        await self.db.run(repo.record_crash, UUID(key), f"{type(exc).__name__}: {exc}")

    async def _on_give_up(self, key: str, exc: BaseException, count: int) -> None:
        sim_id = UUID(key)

        async def fail(conn: Any) -> int | None:
            if not await repo.set_status(conn, sim_id, "failed"):
                return None
            event_id = await repo.last_event_id(conn, sim_id) + 1
            await repo.insert_event(conn, sim_id, event_id, "settlement_failed", b"{}")
            return event_id

        event_id = await self.db.run(fail)
        if event_id is not None:
            self.hub.publish(sim_id, event_id, encode_envelope(sim_id, event_id, "settlement_failed", b"{}"))
        for user, sid in list(self._live_by_user.items()):
            if sid == sim_id:
                del self._live_by_user[user]
                self.hub.set_active_live(user, None)
        for hook in self.give_up_hooks:
            await hook(sim_id)

    # -- opening and finding simulations --------------------------------------------------

    def check_tradable(self, *, require_data: bool = True) -> None:
        """Refuse unless the market is open and (with `require_data`) live data is
        flowing (400)."""
        session = self.clock.session()
        now = self.clock.now()
        if session is None or not (session.open_utc <= now < session.close_utc):
            raise Refusal.invalid("market_closed", "the market is closed; live sessions open during regular trading hours")
        if not require_data:
            return
        latest = self.bus.latest
        stale = self.clock.staleness()
        if latest is None or stale > timedelta(milliseconds=self.limits.stale_after_ms):
            raise Refusal.invalid("market_data_unavailable", "live market data is not flowing; retry shortly")
        if latest.closing or latest.ts >= session.close_utc:
            raise Refusal.invalid("market_closed", "the session has closed")

    async def open_simulation(self, user_id: UUID, *, starting_capital: Decimal, description: str | None,
                              account_id: UUID | None = None, require_data: bool = True,
                              factory: Callable[[UUID], LiveSim] | None = None,
                              before_start: Callable[[Any, UUID], Awaitable[None]] | None = None) -> LiveSim:
        """Create and start a live simulation for today's session.

        The capital range applies to a `/live` simulation's starting capital; an
        account's session opens with whatever cash the account has carried.
        `factory(sim_id)` makes the actor (a plain `LiveSim` by default); `before_start`
        runs in the same transaction as the simulation's row (e.g. to link a bot
        session to it).
        """
        if account_id is None and not (MIN_CAPITAL <= starting_capital <= MAX_CAPITAL):
            raise Refusal.invalid("invalid_starting_capital", "starting_capital must be between 1000 and 10000000")
        self.check_tradable(require_data=require_data)
        session = self.clock.session()
        assert session is not None
        now = self.clock.now()
        sim = repo.SimulationRow(
            id=self._new_uuid(), user_id=user_id, account_id=account_id, date=session.date,
            starting_capital=starting_capital, description=description, status="open",
            start_time=session.open_utc, end_time=session.close_utc, created_at=now, settled_at=None,
            closing_balance=None, traded=False, crashes=0, last_crash=None,
        )
        async with self._create_lock:
            if account_id is None and user_id in self._live_by_user:
                raise Refusal.conflict("live_simulation_exists",
                                       "you already have an active live simulation; end it with DELETE /live first")
            async def insert(conn: Any) -> None:
                await repo.insert_simulation(conn, sim)
                if before_start is not None:
                    await before_start(conn, sim.id)

            try:
                await self.committer.commit(insert)
            except UniqueViolation:
                raise Refusal.conflict("live_simulation_exists", "a live simulation is already open") from None
            sim_id = sim.id  # the supervisor keeps the factory for rebuilds: not the row it was made from
            make = (lambda: factory(sim_id)) if factory is not None else self._factory(sim_id)
            actor = await self.supervisor.start(str(sim_id), make)
            self._track(actor)
        assert isinstance(actor, LiveSim)
        return actor

    def live_of(self, user_id: UUID) -> LiveSim | None:
        sim_id = self._live_by_user.get(user_id)
        if sim_id is None:
            return None
        actor = self.supervisor.get(str(sim_id))
        return actor if isinstance(actor, LiveSim) and not actor.ended else None

    def require_live(self, user_id: UUID) -> LiveSim:
        actor = self.live_of(user_id)
        if actor is None:
            if user_id in self._live_by_user:
                raise Refusal(503, "live_trading_unavailable", "your live simulation is restarting; retry shortly")
            raise Refusal.not_found("live simulation")
        return actor

    def simulation(self, sim_id: UUID) -> LiveSim | None:
        actor = self.supervisor.get(str(sim_id))
        return actor if isinstance(actor, LiveSim) else None

    async def view(self, sim_id: UUID) -> LiveSim:
        """The running actor of a simulation, or a read-only snapshot of it loaded from
        the database (an ended simulation: its orders, transactions and positions)."""
        actor = self.simulation(sim_id)
        if actor is not None and actor.book is not None:
            return actor
        snapshot = LiveSim(sim_id, self._deps, readonly=True)
        await snapshot.load()
        if snapshot.sim is None:
            raise Refusal.not_found("session")
        if snapshot.book is None:
            raise Refusal(503, "live_trading_unavailable", "the session is restarting; retry shortly")
        return snapshot

    @property
    def deps(self) -> LiveDeps:
        return self._deps

    # -- commands -------------------------------------------------------------------------

    async def ask(self, actor: LiveSim, command: Any) -> Reply:
        try:
            return await actor.ask(command, timeout=self.limits.ask_timeout)
        except (ActorBusy, ActorStopped):
            raise Refusal(503, "live_trading_unavailable",
                          "live trading is briefly unavailable; nothing changed, retry") from None

    async def end_live(self, user_id: UUID) -> None:
        actor = self.require_live(user_id)
        await self.ask(actor, EndSimulation(delete=True))

    # -- reads ----------------------------------------------------------------------------

    async def history_json(self, sim_id: UUID, *, interval: int, until: datetime | None) -> bytes:
        """Per-second history as JSON: stored change-points filled forward second by second."""
        interval = max(1, interval)
        await self.history.flush()
        docs = await self.db.run(repo.history, sim_id, 1)
        rows = [_history_dec.decode(d) for d in docs]
        if not rows:
            return b"[]"
        end = until or rows[-1].timestamp
        out: list[HistoryRow] = []
        i = 0
        t = rows[0].timestamp
        current = rows[0]
        step = timedelta(seconds=1)
        while t <= end:
            while i + 1 < len(rows) and rows[i + 1].timestamp <= t:
                i += 1
                current = rows[i]
            if int(t.timestamp()) % interval == 0 or t == rows[0].timestamp:
                out.append(current if current.timestamp == t else msgspec.structs.replace(current, timestamp=t))
            t += step
        return _enc.encode(out)
