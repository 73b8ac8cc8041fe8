"""The supervisor: starts, restarts and stops actors, and drives them with ticks.

An idle actor has no task; when it has work the supervisor drains it in a task of its
nursery (see `odted.runtime.actor`). A crash — in a drain or while loading — is logged
with its traceback and reported (`on_crash`, which records it on the session), and the
actor is rebuilt from the database after a backoff; more than `max_restarts` crashes
within `restart_window` seconds fail the session (`on_give_up`) instead of looping.

The engine loop is a pacer on the tick bus: for every tick it calls `offer_tick` on
every running actor — a plain synchronous loop, no task wake-ups for actors with nothing
to await (DESIGN.md "What things cost"). At `speed = "max"` it also waits until the tick
work those calls left (fills to commit, events to publish) is done before taking the
next tick, and lets `backpressure` (the history writer) catch up, so a day run flat out
behaves like one run in real time, with memory bounded as it is then.
"""

from __future__ import annotations

import logging
import time
from typing import Awaitable, Callable

import trio

from odted.market.bus import FeedEnded, TickBus
from odted.market.feed import MAX_SPEED
from odted.runtime.actor import Actor, ActorStopped
from odted.store.db import DatabaseUnavailable

log = logging.getLogger(__name__)

__all__ = ["Supervisor"]

CrashHook = Callable[[str, BaseException, int], Awaitable[None]]


_RELOAD_WAIT = 1.0  # seconds between attempts to reload an actor while the database is down


class _Slot:
    """How to rebuild one key's actor, and its crash record."""

    __slots__ = ("factory", "crashes", "delay")

    def __init__(self, factory: Callable[[], Actor], delay: float) -> None:
        self.factory = factory
        self.crashes: list[float] | None = None  # times of recent crashes, once there is one
        self.delay = delay


class Supervisor:
    def __init__(
        self,
        bus: TickBus,
        *,
        max_restarts: int = 5,
        restart_window: float = 300.0,
        backoff: tuple[float, float] = (0.2, 10.0),
        on_crash: CrashHook | None = None,
        on_give_up: CrashHook | None = None,
        backpressure: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._bus = bus
        self._actors: dict[str, Actor] = {}
        self._slots: dict[Actor, tuple[str, _Slot]] = {}
        self._nursery: trio.Nursery | None = None
        self._max_restarts = max_restarts
        self._window = restart_window
        self._backoff = backoff
        self._on_crash = on_crash
        self._on_give_up = on_give_up
        self._backpressure = backpressure  # awaited before the next tick at max speed
        self._work_in_flight = 0
        self._work_done = trio.lowlevel.ParkingLot()
        self.crashes = 0
        self.ticks = 0
        self.processed_seq = 0
        self.fanout_seconds = 0.0  # the last tick's synchronous pass over every actor

    # -- lifecycle --------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[Supervisor] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(self._engine)
                task_status.started(self)
                await trio.sleep_forever()
        finally:
            for actor in list(self._slots):
                self._retire(actor)

    async def start(self, key: str, factory: Callable[[], Actor]) -> Actor:
        """Start a supervised actor; return it once it has loaded its state.

        Raises `ActorStopped` when it cannot be loaded even after the restarts allowed.
        """
        assert self._nursery is not None, "the supervisor is not running"
        existing = self._actors.get(key)
        if existing is not None and existing.running:
            return existing
        actor = await self._nursery.start(self._boot, key, _Slot(factory, self._backoff[0]), None)
        if actor is None:
            raise ActorStopped(key)
        return actor

    def get(self, key: str) -> Actor | None:
        actor = self._actors.get(key)
        return actor if actor is not None and actor.running else None

    def __len__(self) -> int:
        return len(self._actors)

    def actors(self) -> list[Actor]:
        return list(self._actors.values())

    async def _boot(self, key: str, slot: _Slot, crash: BaseException | None, *,
                    task_status: trio.TaskStatus[Actor | None] = trio.TASK_STATUS_IGNORED) -> None:
        """Build the actor of `key` and load it, after `crash` (if any) and after every
        failed load counting a crash, with backoff; register it once loaded."""
        restarting = crash is not None
        while True:
            if crash is not None:
                if not await self._crashed(key, slot, crash):
                    task_status.started(None)
                    return
                await trio.sleep(slot.delay)
                slot.delay = min(slot.delay * 2, self._backoff[1])
            actor = slot.factory()
            try:
                await actor.load()
            except DatabaseUnavailable as exc:
                if not restarting:  # a first start counts it, so its caller hears in time
                    crash = exc
                    continue
                # Rebuilding a running session while the database is down is waiting, not
                # crashing: it must not use up the restarts and fail the session.
                log.warning("actor %s: database unavailable while rebuilding; retrying", key)
                crash = None
                await trio.sleep(_RELOAD_WAIT)
                continue
            except Exception as exc:
                crash = exc
                continue
            break
        actor.schedule_drain = self._schedule_drain
        actor.tick_work_done = self._tick_work_done
        self._slots[actor] = (key, slot)
        actor.start_running()
        if actor.finished():
            actor.stop()
            del self._slots[actor]
            log.info("actor %s finished", key)
        else:
            self._actors[key] = actor
        task_status.started(actor)

    async def _crashed(self, key: str, slot: _Slot, exc: BaseException) -> bool:
        """Log and report a crash; False when the actor has crashed too often to restart."""
        self.crashes += 1
        now = trio.current_time()
        crashes = [t for t in slot.crashes or () if t >= now - self._window]
        crashes.append(now)
        slot.crashes = crashes
        log.error("actor %s crashed (%d in %.0fs)", key, len(crashes), self._window, exc_info=exc)
        if self._on_crash is not None:
            with trio.move_on_after(5, shield=True):
                await _quietly(self._on_crash(key, exc, len(crashes)))
        if len(crashes) > self._max_restarts:
            log.error("actor %s crashed %d times; giving up", key, len(crashes))
            if self._on_give_up is not None:
                with trio.move_on_after(5, shield=True):
                    await _quietly(self._on_give_up(key, exc, len(crashes)))
            return False
        return True

    def _schedule_drain(self, actor: Actor) -> None:
        assert self._nursery is not None
        self._nursery.start_soon(self._drain, actor)

    async def _drain(self, actor: Actor) -> None:
        """Run an actor's queued work (see `Actor.drain`); a crash stops it and rebuilds it
        from the database; an actor that is finished is dropped."""
        try:
            await actor.drain()
        except Exception as exc:
            retired = self._retire(actor)
            if retired is None:  # already retired (finished, or the supervisor stopping)
                log.error("actor %s failed after it was stopped", actor.key, exc_info=exc)
                return
            await self._boot(retired[0], retired[1], exc)
            return
        if actor.finished():
            retired = self._retire(actor)
            if retired is not None:
                log.info("actor %s finished", retired[0])

    def _retire(self, actor: Actor) -> tuple[str, _Slot] | None:
        """Stop a supervised actor and forget it; None when it was not supervised (any more)."""
        entry = self._slots.pop(actor, None)
        actor.stop()
        actor.discard_tick_work()
        if entry is None:
            return None
        key, _ = entry
        if self._actors.get(key) is actor:
            del self._actors[key]
        return entry

    # -- ticks ------------------------------------------------------------------------

    async def wait_tick_done(self, seq: int) -> None:
        """Wait until every actor has taken tick `seq` and finished the work it left."""
        while self.processed_seq < seq or self._work_in_flight > 0:
            await self._work_done.park()

    def _tick_work_done(self) -> None:
        self._work_in_flight -= 1
        if self._work_in_flight <= 0:
            self._work_in_flight = 0
            self._work_done.unpark_all()

    async def _engine(self) -> None:
        bus = self._bus
        with bus.pacer() as pacer:
            seq = bus.latest_seq - 1 if bus.latest is not None else 0
            while True:
                try:
                    tick = await bus.wait_tick_after(seq)
                except FeedEnded:
                    pacer.close()
                    await trio.sleep_forever()
                self.ticks += 1
                started = 0
                t0 = time.perf_counter()
                for actor in self._actors.values():  # no awaits here: the dict cannot change
                    if actor.offer_tick(tick):
                        started += 1
                self.fanout_seconds = time.perf_counter() - t0
                self._work_in_flight += started
                seq = tick.seq
                self.processed_seq = seq
                self._work_done.unpark_all()
                if bus.speed == MAX_SPEED:
                    while self._work_in_flight > 0:
                        await self._work_done.park()
                    if self._backpressure is not None:
                        await self._backpressure()
                pacer.done(seq)


async def _quietly(aw: Awaitable[None]) -> None:
    try:
        await aw
    except Exception:
        log.exception("a supervisor hook failed")
