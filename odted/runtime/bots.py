"""The bot service: starts, stops and reads bot sessions (bots-api), whatever the transport.

A bot session is a live simulation of the bot's account run by a `BotSim` actor under
the live service's supervisor. This service owns what is bot-specific around it:
- starting today's session (`422 outside_rth`, `409 bot_not_idle`, `409
  bot_session_exists`), with the risk and re-pricing policy frozen into the session;
- resuming bot sessions after a restart (a resume hook of the live service);
- the staleness watchdog: when market data goes stale past a bot's
  `data_staleness_threshold_ms`, the bot is told (it logs it and places nothing new
  until a fresh tick arrives);
- `schedule.auto_start`: at each session open, the bots that ask for it are started;
- kill, cancel-all, and the reads the API serves (sessions, snapshots, decision log).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Callable
from uuid import UUID

import trio

from odted.market.clock import MarketClock
from odted.runtime.actor import ActorBusy, ActorStopped
from odted.runtime.bot import BotDeps, BotSim, CancelBotOrders, KillSession, StaleNotice
from odted.runtime.errors import Refusal
from odted.runtime.live import LiveSim
from odted.runtime.service import LiveService
from odted.store import bot_sessions as bs
from odted.store import live as repo
from odted.store.db import UniqueViolation

log = logging.getLogger(__name__)

__all__ = ["BotService", "runtime_status"]

_RUNNING = {"scheduled": "scheduled", "registering": "running", "waiting_for_data": "running",
            "running": "running", "settling": "running", "killing": "running"}


def runtime_status(bot_status: str, last: bs.BotSessionRow | None) -> str:
    """A bot's `runtime_status`: what its current or last session is doing."""
    if bot_status == "archived":
        return "archived"
    if last is None:
        return "idle"
    return _RUNNING.get(last.status, last.status)


class BotService:
    def __init__(self, live: LiveService, clock: MarketClock, *, logs_dir: Path,
                 new_uuid: Callable[[], UUID] = uuid.uuid4, watchdog_interval: float = 0.25) -> None:
        self.live = live
        self.db = live.db
        self.clock = clock
        self.logs_dir = logs_dir
        self._new_uuid = new_uuid
        self._interval = watchdog_interval
        self._bot_deps = BotDeps(logs_dir=logs_dir)
        self._start_lock = trio.Lock()
        live.resume_factories.append(self._resume_factory)
        live.give_up_hooks.append(self._gave_up)

    runtime_status = staticmethod(runtime_status)

    # -- lifecycle ------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[BotService] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._watch_staleness, nursery)
            nursery.start_soon(self._auto_start)
            task_status.started(self)
            await trio.sleep_forever()

    def _factory(self, sim_id: UUID) -> BotSim:
        return BotSim(sim_id, self.live.deps, self._bot_deps)

    async def _resume_factory(self, sim_id: UUID) -> Callable[[], LiveSim] | None:
        row = await self.db.run(bs.session_of_simulation, sim_id)
        if row is None:
            return None
        return lambda: self._factory(sim_id)

    async def _gave_up(self, sim_id: UUID) -> None:
        row = await self.db.run(bs.session_of_simulation, sim_id)
        if row is not None and not row.terminal:
            await self.db.run(bs.set_session_status, row.id, "failed", at=self.clock.now())

    def bots(self) -> list[BotSim]:
        return [a for a in self.live.supervisor.actors() if isinstance(a, BotSim)]

    # -- starting ---------------------------------------------------------------------------

    async def _own_bot(self, user_id: UUID, bot_id: UUID) -> bs.BotRow:
        bot = await self.db.run(bs.load_bot, bot_id)
        if bot is None or bot.user_id != user_id:
            raise Refusal.not_found("bot")
        return bot

    async def start_session(self, user_id: UUID, bot_id: UUID) -> bs.BotSessionRow:
        """Start today's session of a bot (see the module docstring for the refusals)."""
        bot = await self._own_bot(user_id, bot_id)
        return await self._start(bot)

    async def _start(self, bot: bs.BotRow) -> bs.BotSessionRow:
        if bot.status != "active":
            raise Refusal.conflict("bot_not_idle", f"the bot is {bot.status}")
        session = self.clock.session()
        now = self.clock.now()
        if session is None or not (session.open_utc <= now < session.close_utc):
            raise Refusal(422, "outside_rth", "bot sessions start during regular trading hours (09:30-16:00 ET)")
        async with self._start_lock:
            existing = await self.db.run(bs.session_on, bot.id, session.date)
            if existing is not None:
                if existing.terminal:
                    raise Refusal.conflict("bot_session_exists", "today's session of this bot has already run")
                raise Refusal.conflict("bot_not_idle", "the bot already has a live session today")
            row = bs.BotSessionRow(
                id=self._new_uuid(), bot_id=bot.id, simulation_id=None, date=session.date,
                status="waiting_for_data", source_hash=bot.source_hash, risk=bot.risk, reprice=bot.reprice,
                program_state=None, order_meta=None, flatten_on_kill=False, halt_reason=None, error_count=0,
                opening_balance=bot.cash_balance, created_at=now, started_at=None, ended_at=None, final_nlv=None,
                realized_pl=None, total_pl=None, fees=None, max_intraday_dd=None, order_count=None, fill_count=None,
            )

            async def link(conn: Any, sim_id: UUID) -> None:
                # the bot's row is locked and re-checked here, in the same transaction as
                # the session: an archive or delete racing this start waits, then sees it
                if await bs.lock_bot_status(conn, bot.id) != "active":
                    raise Refusal.conflict("bot_not_idle", "the bot was archived or deleted")
                await bs.insert_session(conn, replace(row, simulation_id=sim_id))

            try:
                actor = await self.live.open_simulation(
                    bot.user_id, starting_capital=bot.cash_balance, description=f"bot {bot.name}",
                    account_id=bot.id, require_data=False, factory=self._factory, before_start=link)
            except Refusal as e:
                if e.code == "market_closed":
                    raise Refusal(422, "outside_rth", e.message) from None
                raise
            except UniqueViolation:
                raise Refusal.conflict("bot_session_exists", "today's session of this bot already exists") from None
            except ActorStopped:
                raise Refusal(503, "register_sim_failed",
                              "the session's simulation could not be started; retry") from None
        assert isinstance(actor, BotSim) and actor.session is not None
        log.info("bot %s: session %s started", bot.id, actor.session.id)
        return actor.session

    async def _auto_start(self) -> None:
        """Start the sessions of `auto_start` bots at each session open."""
        done_for: date | None = None
        while True:
            await trio.sleep(1.0)
            session = self.clock.session()
            now = self.clock.now()
            if session is None or session.date == done_for or not (session.open_utc <= now < session.close_utc):
                continue
            if self.live.bus.latest is None:
                continue
            try:
                bots = await self.db.run(bs.auto_start_bots)
            except Exception:
                log.exception("auto-start: could not list the bots")
                continue
            for bot in bots:
                try:
                    await self._start(bot)
                except Refusal as e:
                    if e.code not in ("bot_not_idle", "bot_session_exists"):
                        log.warning("auto-start of bot %s refused: %s", bot.id, e)
                except Exception:
                    log.exception("auto-start of bot %s failed", bot.id)
            done_for = session.date

    # -- the staleness watchdog -------------------------------------------------------------

    async def _watch_staleness(self, nursery: trio.Nursery) -> None:
        while True:
            await trio.sleep(self._interval)
            if self.live.bus.latest is None:
                continue
            stale = self.clock.staleness()
            if stale > timedelta(days=1):
                continue
            ms = int(stale.total_seconds() * 1000)
            for bot in self.bots():
                if not bot.stale and bot.status == "running" and ms > bot.risk.data_staleness_threshold_ms:
                    nursery.start_soon(self._notify_stale, bot, ms)

    async def _notify_stale(self, bot: BotSim, ms: int) -> None:
        try:
            await bot.ask(StaleNotice(ms), timeout=5)
        except (ActorBusy, ActorStopped, Refusal):
            pass
        except Exception:
            log.exception("telling bot session %s its data is stale failed", bot.key)

    # -- commands ---------------------------------------------------------------------------

    async def session(self, user_id: UUID, bot_id: UUID, session_id: UUID) -> bs.BotSessionRow:
        await self._own_bot(user_id, bot_id)
        row = await self.db.run(bs.load_session, session_id)
        if row is None or row.bot_id != bot_id:
            raise Refusal.not_found("session")
        return row

    async def sessions(self, user_id: UUID, bot_id: UUID, limit: int = 90) -> list[bs.BotSessionRow]:
        await self._own_bot(user_id, bot_id)
        return await self.db.run(bs.sessions_of, bot_id, limit)

    def _actor_of(self, row: bs.BotSessionRow) -> BotSim | None:
        if row.simulation_id is None:
            return None
        actor = self.live.simulation(row.simulation_id)
        return actor if isinstance(actor, BotSim) else None

    def _running_actor(self, row: bs.BotSessionRow) -> BotSim:
        """The actor of a session that is not terminal: 409 when the session has ended,
        503 while its actor is (re)starting."""
        if row.terminal:
            raise Refusal.conflict("session_terminal", f"the session is {row.status}")
        actor = self._actor_of(row)
        if actor is None:
            raise Refusal(503, "live_trading_unavailable", "the session is restarting; nothing changed, retry")
        return actor

    async def kill(self, user_id: UUID, bot_id: UUID, session_id: UUID, *, flatten: bool) -> bs.BotSessionRow:
        row = await self.session(user_id, bot_id, session_id)
        await self.live.ask(self._running_actor(row), KillSession(flatten=flatten))
        return await self.db.run(bs.load_session, session_id)

    async def cancel_all(self, user_id: UUID, bot_id: UUID, session_id: UUID) -> None:
        row = await self.session(user_id, bot_id, session_id)
        await self.live.ask(self._running_actor(row), CancelBotOrders())

    async def view(self, user_id: UUID, bot_id: UUID, session_id: UUID) -> LiveSim:
        row = await self.session(user_id, bot_id, session_id)
        if row.simulation_id is None:
            raise Refusal.not_found("session")
        return await self.live.view(row.simulation_id)

    async def decision_log(self, user_id: UUID, bot_id: UUID, session_id: UUID) -> bytes:
        row = await self.session(user_id, bot_id, session_id)
        if row.simulation_id is None:
            return b"[]"
        payloads = await self.db.run(repo.event_payloads, row.simulation_id, "decision_log")
        return b"[" + b",".join(payloads) + b"]"
