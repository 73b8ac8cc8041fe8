"""Actors: one task owns one session's state and handles one message at a time.

An `Actor` subclass implements `load()` (rebuild its state from the database — startup
and crash recovery are the same code path), `handle(message)` (one command, which may
await commits) and `on_tick(tick)` (synchronous, called by the engine for every tick;
returns a `TickWork` when the tick needs something awaited, e.g. committing a fill).

`ask(message)` puts a message in the actor's bounded mailbox and waits for the reply
with a deadline. A full mailbox, or a deadline that passes before the actor has started
on the message, is `ActorBusy` and the message is dropped unhandled: nothing changed. Once
the actor has started on a message the asker waits for its end, so an answer is never
lost after a commit.

Ticks never queue: the engine calls `offer_tick`; an idle actor runs `on_tick` at once
(synchronously, no task wake-up); a busy one keeps only the newest tick and processes it
when it finishes its current message.
"""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable, Generic, TypeVar

import outcome
import trio

from odted.domain.chain import Tick
from odted.runtime.errors import Refusal
from odted.store.db import DatabaseUnavailable

log = logging.getLogger(__name__)

__all__ = ["Actor", "ActorBusy", "ActorStopped", "TickWork"]

R = TypeVar("R")


class ActorBusy(Exception):
    """The actor could not take the message in time; nothing was changed. Retry."""


class ActorStopped(Exception):
    """The actor is not running (stopping, crashed, or its session ended)."""


TickWork = Callable[[], Awaitable[None]]
"""Work a tick leaves for the actor's task: awaited there, one at a time with messages."""


class _Envelope:
    __slots__ = ("message", "started", "abandoned", "done", "result")

    def __init__(self, message: Any) -> None:
        self.message = message
        self.started = False
        self.abandoned = False
        self.done = trio.Event()
        self.result: outcome.Outcome | None = None


class Actor:
    """Base class; see the module docstring. Subclasses set `key` before `run`."""

    mailbox_size = 64

    def __init__(self, key: str) -> None:
        self.key = key
        self._send, self._recv = trio.open_memory_channel[_Envelope](self.mailbox_size)
        self._wakeup = trio.Event()
        self._pending_tick: Tick | None = None
        self._tick_work: list[tuple[TickWork, bool]] = []
        self._busy = False
        self._running = False
        self.last_tick_seq = 0
        self.tick_work_done: Callable[[], None] = lambda: None

    # -- subclass interface -----------------------------------------------------------

    async def load(self) -> None:
        """Rebuild state from the database. Called before the actor takes messages."""

    async def handle(self, message: Any) -> Any:
        """Handle one command; the return value is the reply."""
        raise NotImplementedError

    def on_tick(self, tick: Tick) -> TickWork | None:
        """Process a tick synchronously; return work to await, or None."""
        return None

    def finished(self) -> bool:
        """True when the actor has nothing more to do and its task may end."""
        return False

    # -- engine side ------------------------------------------------------------------

    def offer_tick(self, tick: Tick) -> bool:
        """Deliver a tick: processed now when idle, else kept (newest only) for later.

        Returns True when processing it left tick work for the actor's task; the actor
        calls `tick_work_done()` once per such work when it is finished.
        """
        if tick.seq <= self.last_tick_seq or not self._running:
            return False
        if self._busy or self._tick_work:
            self._pending_tick = tick
            return False
        self.last_tick_seq = tick.seq
        try:
            work = self.on_tick(tick)
        except Exception as exc:
            work = _crash(exc)
        if work is None:
            return False  # the common case, inlined: no wake-up, no allocation
        self._tick_work.append((work, True))
        self._wakeup.set()
        return True

    def _run_tick(self, tick: Tick, *, counted: bool) -> bool:
        self.last_tick_seq = tick.seq
        try:
            work = self.on_tick(tick)
        except Exception as exc:
            work = _crash(exc)  # raised in the actor's task: the supervisor rebuilds it
        if work is None:
            return False
        self._tick_work.append((work, counted))
        self._wakeup.set()
        return True

    def discard_tick_work(self) -> None:
        """Drop tick work left by a stopped actor (its rebuilt self starts afresh)."""
        for _, counted in self._tick_work:
            if counted:
                self.tick_work_done()
        self._tick_work.clear()

    # -- caller side ------------------------------------------------------------------

    async def ask(self, message: Any, *, timeout: float) -> Any:
        """Send `message`, wait for the reply (see the module docstring)."""
        if not self._running:
            raise ActorStopped(self.key)
        env = _Envelope(message)
        try:
            self._send.send_nowait(env)
        except (trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
            raise ActorBusy(self.key) from None
        self._wakeup.set()
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

    # -- the task ---------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[Actor] = trio.TASK_STATUS_IGNORED) -> None:
        """Load, then serve messages and tick work until finished or cancelled."""
        await self.load()
        self._running = True
        task_status.started(self)
        try:
            while not self.finished():
                await self._step()
        finally:
            self._running = False
            self._fail_queued(ActorStopped(self.key))

    async def _step(self) -> None:
        if self._tick_work:
            work, counted = self._tick_work[0]
            self._busy = True
            try:
                await work()
            finally:
                self._busy = False
            self._tick_work.pop(0)
            if counted:
                self.tick_work_done()
            self._drain_pending_tick()
            return
        try:
            env = self._recv.receive_nowait()
        except trio.WouldBlock:
            self._wakeup = trio.Event()
            await self._wakeup.wait()
            return
        if env.abandoned:
            return
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
            if env.result is None:  # cancelled mid-message
                env.result = outcome.Error(ActorStopped(self.key))
            env.done.set()
        self._drain_pending_tick()

    def _drain_pending_tick(self) -> None:
        tick = self._pending_tick
        if tick is None or self._tick_work:
            return
        self._pending_tick = None
        if tick.seq > self.last_tick_seq:
            self._run_tick(tick, counted=False)  # the engine saw this actor busy: not counted

    def _fail_queued(self, exc: Exception) -> None:
        while True:
            try:
                env = self._recv.receive_nowait()
            except (trio.WouldBlock, trio.ClosedResourceError, trio.EndOfChannel):
                return
            env.result = outcome.Error(exc)
            env.done.set()



def _crash(exc: Exception) -> TickWork:
    async def reraise() -> None:
        raise exc

    return reraise
