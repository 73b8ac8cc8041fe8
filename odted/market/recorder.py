"""The recorder: keeps every tick a feed publishes (issue 4, item 3).

It is a pacer on the tick bus: its taker task takes each tick, appends it to a bounded
buffer and calls `done` at once, so the feed never waits on storage; a flusher task
writes the buffer through `write(day, start, end, ticks)` (the store's
`TickStore.append`) every `interval` seconds, or as soon as `batch` ticks are waiting.
The write is idempotent (a second already recorded is kept), so a batch whose write
failed or was cancelled is simply written again.

Back-pressure: when `buffer` ticks are waiting (storage is down, or a feed at speed
"max" outruns it) the taker holds `done` until the flusher has written some, so a feed
that can wait waits — every tick is recorded. A feed that cannot wait (upstream) runs
on; the ticks the recorder did not see are counted in `missed`.

A batch is split by trading day (the America/New_York date of `tick.ts`) and each part
written with that day's regular hours from the calendar. A tick the store refuses
(ValueError: a value it cannot keep exactly) is logged, counted in `rejected` and
dropped; other failures are retried with backoff. When the feed ends the recorder
writes everything and returns; on cancellation it writes what is buffered (shielded, at
most `final_flush_timeout` seconds; a write cut short may have landed, so `stored` can
undercount then, never the table).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import date, datetime

import msgspec
import trio

from odted.domain.chain import Tick
from odted.market.bus import FeedEnded, Pacer, TickBus
from odted.market.calendar import TradingCalendar, trading_date

__all__ = ["Recorder", "RecorderState", "TickWriter"]

log = logging.getLogger("odted.market.recorder")

TickWriter = Callable[[date, datetime, datetime, Sequence[Tick]], Awaitable[int]]
"""`write(day, session_start, session_end, ticks) -> ticks newly stored`."""


class RecorderState(msgspec.Struct, frozen=True, kw_only=True):
    """The recorder's state as `/status` shows it."""

    recording: bool
    taken: int
    """Ticks taken from the bus."""
    stored: int
    """Ticks newly stored (a second recorded before is not counted again)."""
    pending: int
    """Ticks taken and not yet written."""
    missed: int
    """Ticks the feed published that the recorder never saw (a feed that cannot wait)."""
    rejected: int
    """Ticks the store refused (values it cannot keep exactly)."""
    failures: int
    """Writes that failed and were retried."""
    last_error: str | None = None
    last_stored_ts: datetime | None = None


class Recorder:
    """Stores every tick of a bus through `write`; see the module docstring."""

    def __init__(
        self,
        write: TickWriter,
        calendar: TradingCalendar,
        *,
        interval: float = 1.0,
        batch: int = 512,
        buffer: int = 1024,
        final_flush_timeout: float = 5.0,
        max_backoff: float = 30.0,
    ) -> None:
        if interval <= 0 or batch < 1 or buffer < batch:
            raise ValueError("interval must be > 0, batch >= 1 and buffer >= batch")
        self._write = write
        self._calendar = calendar
        self._interval = interval
        self._batch = batch
        self._buffer = buffer
        self._final_flush_timeout = final_flush_timeout
        self._max_backoff = max_backoff
        self._pending: list[Tick] = []
        self._batch_ready = trio.Event()
        self._drained = trio.Event()
        self._lock = trio.Lock()
        self._recording = False
        self._ending = False
        self._taken = 0
        self._stored = 0
        self._missed = 0
        self._rejected = 0
        self._failures = 0
        self._last_error: str | None = None
        self._last_stored_ts: datetime | None = None

    def state(self) -> RecorderState:
        """The recorder's state for `/status`."""
        return RecorderState(
            recording=self._recording,
            taken=self._taken,
            stored=self._stored,
            pending=len(self._pending),
            missed=self._missed,
            rejected=self._rejected,
            failures=self._failures,
            last_error=self._last_error,
            last_stored_ts=self._last_stored_ts,
        )

    async def run(self, bus: TickBus, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Record until the feed ends (then write everything and return) or cancellation.

        `task_status.started()` once registered as a pacer: start the recorder before
        the feed and it records the feed's first tick.
        """
        with bus.pacer() as pacer:
            self._recording = True
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._flush_loop)
                    task_status.started()
                    await self._take(bus, pacer)
                    self._ending = True  # the flusher writes the rest, then returns
                    self._batch_ready.set()
            finally:
                self._recording = False
                with trio.move_on_after(self._final_flush_timeout, shield=True):
                    await self._flush_all()
                if self._pending:
                    log.error("recorder stopped with %d ticks unwritten", len(self._pending))

    # -- taking ---------------------------------------------------------------------

    async def _take(self, bus: TickBus, pacer: Pacer) -> None:
        seq = pacer.seq
        while True:
            try:
                tick = await bus.wait_tick_after(seq)
            except FeedEnded:
                return
            if self._taken and tick.seq > seq + 1:
                self._missed += tick.seq - seq - 1
            seq = tick.seq
            while len(self._pending) >= self._buffer:
                self._batch_ready.set()
                await self._drained.wait()
            self._pending.append(tick)
            self._taken += 1
            pacer.done(seq)
            if len(self._pending) >= self._batch:
                self._batch_ready.set()

    # -- writing --------------------------------------------------------------------

    async def _flush_loop(self) -> None:
        while True:
            if self._ending and not self._pending:
                return
            if len(self._pending) < self._batch and not self._ending:
                with trio.move_on_after(self._interval):
                    await self._batch_ready.wait()
                self._batch_ready = trio.Event()
            backoff = self._interval
            while not await self._flush_some():
                await trio.sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff)

    async def _flush_all(self) -> None:
        while self._pending:
            if not await self._flush_some():
                return

    async def _flush_some(self) -> bool:
        """Write up to `batch` of the oldest pending ticks; False when the write failed."""
        async with self._lock:
            batch = self._pending[: self._batch]
            if not batch:
                return True
            try:
                for day, part in self._by_day(batch):
                    await self._write_part(day, part)
            except Exception as e:  # storage weather: keep the ticks, retry later
                self._failures += 1
                self._last_error = f"{type(e).__name__}: {e}"
                log.warning("recorder: writing %d ticks failed (%s); will retry", len(batch), self._last_error)
                return False
            del self._pending[: len(batch)]
            self._last_stored_ts = batch[-1].ts
            self._drained.set()
            self._drained = trio.Event()
            return True

    async def _write_part(self, day: date, part: list[Tick]) -> None:
        start, end = self._hours(day, part)
        try:
            self._stored += await self._write(day, start, end, part)
            return
        except ValueError:
            pass
        for tick in part:  # find the tick the store refuses; keep the others
            try:
                self._stored += await self._write(day, start, end, [tick])
            except ValueError as e:
                self._rejected += 1
                log.error("recorder: tick %d at %s cannot be stored: %s", tick.seq, tick.ts.isoformat(), e)

    def _hours(self, day: date, part: list[Tick]) -> tuple[datetime, datetime]:
        try:
            session = self._calendar.session(day)
        except ValueError:
            session = None
        if session is None:
            return part[0].ts, part[-1].ts
        return session.open_utc, session.close_utc

    @staticmethod
    def _by_day(batch: list[Tick]) -> list[tuple[date, list[Tick]]]:
        parts: list[tuple[date, list[Tick]]] = []
        for tick in batch:
            day = trading_date(tick.ts)
            if parts and parts[-1][0] == day:
                parts[-1][1].append(tick)
            else:
                parts.append((day, [tick]))
        return parts
