"""The replay feed: a recorded session played back onto the tick bus (issue 4, item 4).

Ticks come from a `TickSource` (the store's `TickStore`, wired by the daemon), a page at
a time, one page read ahead. Pacing is the synthetic feed's (`feed.PacedPublisher`
serves both): speed 1.0 keeps the recorded spacing on trio's clock, N divides it by N,
0 publishes the first tick and holds it, `"max"` publishes the next tick as soon as
every pacer has taken the last; a late tick is published at once and the cadence kept
from there. After the session's last recorded tick the feed closes the bus and returns.

Numbering: a tick keeps its recorded `seq` when that is after the bus's latest (a fresh
bus), else the whole session is shifted past it; `seq` always increases by at least
one, whatever the recording holds. Everything else is the recorded tick, unchanged.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Protocol

import msgspec
import trio

from odted.domain.chain import Tick
from odted.market.bus import TickBus
from odted.market.calendar import REGULAR_OPEN, ny_datetime
from odted.market.feed import FeedState, PacedPublisher, Speed, check_speed

__all__ = ["ReplayConfig", "ReplayFeed", "TickSource"]

log = logging.getLogger("odted.market.replay")


class ReplayConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Knobs of the replay feed (config section `[feed.replay]`)."""

    date: dt.date | None = None
    """The recorded trading day to play; None: the most recent recorded session."""
    start_time: dt.time = REGULAR_OPEN
    """New York time of day to start from (the first recorded tick at or after it)."""
    speed: Speed = 1.0
    """1.0 real time, N for N times faster, 0 paused at the first tick, "max" as fast as
    the pacers keep up."""

    def __post_init__(self) -> None:
        check_speed(self.speed)


class TickSource(Protocol):
    """Recorded sessions, as the store serves them."""

    async def session_dates(self) -> list[dt.date]:
        """The dates of every recorded session, ascending."""
        ...

    async def read_ticks(self, day: dt.date, start: dt.datetime, limit: int) -> list[Tick]:
        """Up to `limit` ticks of `day` from `start` (inclusive), in time order."""
        ...


class ReplayFeed:
    """Plays one recorded session onto a tick bus; see the module docstring."""

    name = "replay"

    def __init__(self, config: ReplayConfig, source: TickSource, *, page: int = 512) -> None:
        self._config = config
        self._source = source
        self._page = page
        self._day: dt.date | None = config.date
        self._out: PacedPublisher | None = None
        self._running = False
        self._ended = False
        self._error: str | None = None

    @property
    def config(self) -> ReplayConfig:
        return self._config

    def state(self) -> FeedState:
        """The feed's state for `/status`."""
        out = self._out
        last = None if out is None else out.last
        return FeedState(
            source=self.name,
            connected=self._running,
            speed=self._config.speed,
            session_date=self._day,
            last_tick_ts=None if last is None else last.ts,
            seq=None if last is None else last.seq,
            ticks_published=0 if out is None else out.published,
            ended=self._ended,
            error=self._error,
        )

    async def run(self, bus: TickBus, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Publish the session onto `bus`; `task_status.started()` once the first tick is
        on it (or, when there is nothing to play, once the bus is closed)."""
        speed = self._config.speed
        bus.set_speed(speed)
        day = self._config.date
        if day is None:
            dates = await self._source.session_dates()
            day = dates[-1] if dates else None
        if day is None:
            return self._give_up(bus, "no recorded session to replay", task_status)
        self._day = day
        start = ny_datetime(day, self._config.start_time)
        pages_in, pages_out = trio.open_memory_channel[list[Tick]](1)
        out = self._out = PacedPublisher(bus, speed, task_status)
        self._running = True
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._read_pages, day, start, pages_in)
                offset: int | None = None
                async for page in pages_out:
                    for recorded in page:
                        if offset is None:
                            offset = max(0, bus.latest_seq + 1 - recorded.seq)
                        seq = recorded.seq + offset
                        if out.last is not None:
                            seq = max(seq, out.last.seq + 1)
                        await out.publish(recorded if seq == recorded.seq
                                          else msgspec.structs.replace(recorded, seq=seq))
                if out.last is None:
                    return self._give_up(bus, f"no recorded tick on {day} from {self._config.start_time}",
                                         task_status)
                self._ended = True
                bus.close()
        finally:
            self._running = False

    async def _read_pages(self, day: dt.date, start: dt.datetime,
                          pages: trio.MemorySendChannel[list[Tick]]) -> None:
        async with pages:
            while True:
                page = await self._source.read_ticks(day, start, self._page)
                if page:
                    await pages.send(page)
                if len(page) < self._page:
                    return
                start = page[-1].ts + dt.timedelta(microseconds=1)

    def _give_up(self, bus: TickBus, reason: str, task_status: trio.TaskStatus[None]) -> None:
        log.error("replay: %s", reason)
        self._error = reason
        self._ended = True
        bus.close()
        task_status.started()
