"""Actors: one object owns one session's state and handles one message at a time.

An `Actor` subclass implements `load()` (rebuild its state from the database — startup
and crash recovery are the same code path), `handle(message)` (one command, which may
await commits) and `on_tick(tick)` (synchronous, called by the engine for every tick;
returns a `TickWork` when the tick needs something awaited, e.g. committing a fill).

An actor has no task of its own while it is idle (DESIGN.md "What things cost": a
parked task costs memory, and waking ten thousand of them costs a tick's budget). When
work arrives — a message, or tick work — the actor asks its host to *drain* it: the host
(the supervisor, or `run` for an actor used on its own) runs `drain()` in a task that
handles the work one item at a time, in order, and ends when there is none left. Only
one drain runs at a time, so messages and tick work never overlap.

`ask(message)` queues the message in the actor's bounded mailbox and waits for the reply
with a deadline. A full mailbox, or a deadline that passes before the actor has started
on the message, is `ActorBusy` and the message is dropped unhandled: nothing changed. Once
the actor has started on a message the asker waits for its end, so an answer is never
lost after a commit.

Ticks never queue: the engine calls `offer_tick`; an idle actor runs `on_tick` at once
(synchronously, no task at all); a busy one keeps only the newest tick and processes it
when it finishes its current item.

An actor whose tick left nothing to do may set `watch` (`odted.runtime.watch`): while
the watch holds, a tick is only noted (`on_quiet_tick`), not taken in full. Handling any
message or tick work drops the watch, so the next tick is taken in full again.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Any, Awaitable, Callable

import outcome
import trio

from odted.domain.chain import Tick
from odted.runtime.errors import Refusal
from odted.runtime.watch import Watch
from odted.store.db import DatabaseUnavailable

log = logging.getLogger(__name__)

__all__ = ["Actor", "ActorBusy", "ActorStopped", "TickWork"]


class ActorBusy(Exception):
    """The actor could not take the message in time; nothing was changed. Retry."""


class ActorStopped(Exception):
    """The actor is not running (stopping, crashed, or its session ended)."""


TickWork = Callable[[], Awaitable[None]]
"""Work a tick leaves for the actor: awaited in a drain, one at a time with messages."""


class _Envelope:
    __slots__ = ("message", "started", "abandoned", "done", "result")

    def __init__(self, message: Any) -> None:
        self.message = message
        self.started = False
        self.abandoned = False
        self.done = trio.Event()
        self.result: outcome.Outcome | None = None


def _no_host(actor: Actor) -> None:
    raise RuntimeError(f"actor {actor.key} has work but no host to run it")


def _nothing() -> None:
    pass


class Actor:
    """Base class; see the module docstring."""

    mailbox_size = 64
    __slots__ = ("key", "_mailbox", "_pending_tick", "_tick_work", "_busy", "_draining", "_running",
                 "last_tick_seq", "schedule_drain", "tick_work_done", "watch")

    def __init__(self, key: str) -> None:
        self.key = key
        self._mailbox: deque[_Envelope] | None = None  # made on the first message
        self._pending_tick: Tick | None = None
        self._tick_work: list[tuple[TickWork, bool]] | None = None  # made on the first work
        self._busy = False  # awaiting one item of work
        self._draining = False  # a drain is scheduled or running
        self._running = False
        self.last_tick_seq = 0
        self.schedule_drain: Callable[[Actor], None] = _no_host
        self.tick_work_done: Callable[[], None] = _nothing
        self.watch: Watch | None = None  # set by on_tick: the coming ticks change nothing while it holds

    # -- subclass interface -----------------------------------------------------------

    async def load(self) -> None:
        """Rebuild state from the database. Called before the actor takes messages."""

    async def handle(self, message: Any) -> Any:
        """Handle one command; the return value is the reply."""
        raise NotImplementedError

    def on_tick(self, tick: Tick) -> TickWork | None:
        """Process a tick synchronously; return work to await, or None."""
        return None

    def on_quiet_tick(self, tick: Tick) -> None:
        """Note a tick that the actor's `watch` says changes nothing (the latest tick)."""

    def on_woken(self, tick: Tick, watch: Watch) -> TickWork | None:
        """Take a tick that broke the actor's `watch` (by default, as any other tick)."""
        return self.on_tick(tick)

    def finished(self) -> bool:
        """True when the actor has nothing more to do and may be dropped."""
        return False

    # -- engine side ------------------------------------------------------------------

    def offer_tick(self, tick: Tick) -> bool:
        """Deliver a tick: processed now when idle, else kept (newest only) for later.

        Returns True when processing it left tick work; the actor calls
        `tick_work_done()` once per such work when it is finished.
        """
        if tick.seq <= self.last_tick_seq or not self._running:
            return False
        if self._busy or self._tick_work:
            self._pending_tick = tick
            return False
        watch = self.watch
        if watch is not None and watch.holds(tick):
            self.last_tick_seq = tick.seq
            self.on_quiet_tick(tick)
            return False
        return self._run_tick(tick, counted=True, woken=watch)

    def _run_tick(self, tick: Tick, *, counted: bool, woken: Watch | None = None) -> bool:
        self.last_tick_seq = tick.seq
        self.watch = None
        try:
            work = self.on_tick(tick) if woken is None else self.on_woken(tick, woken)
        except Exception as exc:
            work = _crash(exc)  # raised in the drain: the supervisor rebuilds the actor
        if work is None:
            return False  # the common case: no task, no allocation
        if self._tick_work is None:
            self._tick_work = []
        self._tick_work.append((work, counted))
        self._kick()
        return True

    def discard_tick_work(self) -> None:
        """Drop tick work left by a stopped actor (its rebuilt self starts afresh)."""
        if self._tick_work:
            for _, counted in self._tick_work:
                if counted:
                    self.tick_work_done()
            self._tick_work.clear()

    # -- caller side ------------------------------------------------------------------

    async def ask(self, message: Any, *, timeout: float) -> Any:
        """Send `message`, wait for the reply (see the module docstring)."""
        if not self._running:
            raise ActorStopped(self.key)
        box = self._mailbox
        if box is None:
            box = self._mailbox = deque()
        if len(box) >= self.mailbox_size:
            raise ActorBusy(self.key)
        env = _Envelope(message)
        box.append(env)
        self._kick()
        with trio.move_on_after(timeout):
            await env.done.wait()
        if not env.done.is_set():
            if not env.started:
                env.abandoned = True
                raise ActorBusy(self.key)
            with trio.CancelScope(shield=True):
                await env.done.wait()
        assert env.result is not None
        return env.result.unwrap()

    @property
    def running(self) -> bool:
        return self._running

    # -- hosting ----------------------------------------------------------------------

    def _kick(self) -> None:
        if not self._draining:
            self._draining = True
            self.schedule_drain(self)

    def start_running(self) -> None:
        """Loaded: take ticks and messages from now on."""
        self._running = True

    def stop(self, exc: Exception | None = None) -> None:
        """Take nothing more; fail what is queued (with `exc`, default `ActorStopped`)."""
        self._running = False
        box = self._mailbox
        while box:
            env = box.popleft()
            env.result = outcome.Error(exc or ActorStopped(self.key))
            env.done.set()

    async def drain(self) -> None:
        """Handle the queued work, one item at a time, until none is left or the actor
        is finished. An exception other than a refusal escapes: the actor crashed."""
        try:
            while not self.finished():
                work = self._tick_work
                if work:
                    item, counted = work[0]
                    self._busy = True
                    try:
                        await item()
                    finally:
                        self._busy = False
                        self.watch = None
                    del work[0]
                    if counted:
                        self.tick_work_done()
                    self._drain_pending_tick()
                    continue
                box = self._mailbox
                if not box:
                    return
                env = box.popleft()
                if env.abandoned:
                    continue
                await self._handle(env)
                self._drain_pending_tick()
        finally:
            self._draining = False

    async def _handle(self, env: _Envelope) -> None:
        env.started = True
        self._busy = True
        try:
            env.result = outcome.Value(await self.handle(env.message))
        except (Refusal, DatabaseUnavailable) as e:
            env.result = outcome.Error(e)  # an answer, not a crash
        except Exception:
            env.result = outcome.Error(ActorStopped(self.key))
            raise  # the supervisor logs it and rebuilds the actor from the database
        finally:
            self._busy = False
            self.watch = None  # the message may have changed what the watch was made of
            if env.result is None:  # cancelled mid-message
                env.result = outcome.Error(ActorStopped(self.key))
            env.done.set()

    def _drain_pending_tick(self) -> None:
        tick = self._pending_tick
        if tick is None or self._tick_work or not self._running:
            return
        self._pending_tick = None
        if tick.seq > self.last_tick_seq:
            self._run_tick(tick, counted=False)  # the engine saw this actor busy: not counted

    async def run(self, *, task_status: trio.TaskStatus[Actor] = trio.TASK_STATUS_IGNORED) -> None:
        """Host this actor in the calling task (without a supervisor): load, then drain
        whenever work arrives, until finished or cancelled."""
        await self.load()
        wakeup = trio.Event()

        def schedule(_actor: Actor) -> None:
            wakeup.set()

        self.schedule_drain = schedule
        self.start_running()
        task_status.started(self)
        try:
            while not self.finished():
                await wakeup.wait()
                wakeup = trio.Event()
                await self.drain()
        finally:
            self.stop()


def _crash(exc: Exception) -> TickWork:
    async def reraise() -> None:
        raise exc

    return reraise
