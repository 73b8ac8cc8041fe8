"""What every tick source is: the `Feed` protocol, its speed, and its `/status` state.

A feed (synthetic, replay, upstream) owns nothing but its source: it publishes `Tick`s
onto a `TickBus` that its owner created, and it is started by its owner with
`await nursery.start(feed.run, bus)`. DESIGN.md "Feeds", issue 4.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Final, Literal, Protocol, TypeAlias

import msgspec
import trio

if TYPE_CHECKING:
    from odted.domain.chain import Tick
    from odted.market.bus import TickBus

__all__ = ["MAX_SPEED", "Speed", "Feed", "FeedState", "PacedPublisher", "check_speed", "is_max_speed"]

MAX_SPEED: Final = "max"

Speed: TypeAlias = float | Literal["max"]
"""How fast market time runs: 1.0 = real time, N = N times faster, 0 = paused (the
last tick holds), `"max"` = as fast as the feed can produce and its pacers consume."""


def is_max_speed(speed: Speed) -> bool:
    """Whether `speed` is the special `"max"` speed."""
    return speed == MAX_SPEED


def check_speed(speed: Speed) -> Speed:
    """Return `speed` if it is `"max"` or a finite float >= 0, else raise ValueError."""
    if speed == MAX_SPEED:
        return speed
    if isinstance(speed, str) or not (0.0 <= speed < float("inf")):
        raise ValueError(f"speed must be a number >= 0 or 'max', not {speed!r}")
    return speed


class FeedState(msgspec.Struct, frozen=True, kw_only=True):
    """A feed's state as `/status` shows it, built on demand by `Feed.state()`."""

    source: str
    """`synthetic`, `replay` or `upstream`."""
    connected: bool
    """Whether ticks can arrive: the synthetic feed is running, replay is playing, the
    upstream WebSocket is open and subscribed."""
    speed: Speed
    """The pace the feed runs at (see `Speed`)."""
    session_date: date | None = None
    """The trading day being published, once known."""
    last_tick_ts: datetime | None = None
    """`ts` of the last tick published, None before the first."""
    seq: int | None = None
    """`seq` of the last tick published, None before the first."""
    ticks_published: int = 0
    """Ticks this feed has published since it started."""
    latency_ms: float | None = None
    """Upstream only: receive time minus the tick's `ts`, in milliseconds."""
    ended: bool = False
    """The feed published its last tick and returned (synthetic `on_close = "end"`,
    replay at the end of its session)."""
    reconnects: int = 0
    """Upstream only: how many times the connection was made again after it was lost."""
    error: str | None = None
    """Why the feed is not publishing, when it knows (the last connection failure
    upstream; replay: nothing to play)."""


class Feed(Protocol):
    """A source of ticks. Every feed publishes the same `odted.domain.chain.Tick`.

    Contract of `run`:
    - it publishes ticks with strictly increasing `seq` onto `bus` (never anything
      else), and sets `bus.set_speed(...)` before the first;
    - it calls `task_status.started()` once the first tick is on the bus (so when
      `nursery.start` returns, `bus.latest` and the market clock are set), or, for a
      feed that must connect first (upstream), once it is ready to try;
    - before publishing each tick after the first it awaits `bus.wait_paced(seq)` of the
      previous tick when it can wait (synthetic, replay), so registered pacers see every
      tick; a real-time source that cannot wait (upstream) does not;
    - when its data is finished it calls `bus.close()` and returns; cancellation ends it
      without closing the bus.
    """

    @property
    def name(self) -> str:
        """The source name shown in `FeedState.source`."""
        ...

    def state(self) -> FeedState:
        """The feed's current state for `/status`."""
        ...

    async def run(
        self, bus: TickBus, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Publish ticks onto `bus` until the data ends or the task is cancelled."""
        ...


class PacedPublisher:
    """Publishes one run of a feed's ticks onto its bus at the feed's speed.

    The pacing every feed that can wait shares (synthetic, replay): before each tick
    after the first it awaits `bus.wait_paced` of the one before; then speed 0 holds the
    first tick for good, `"max"` publishes at once, and speed N publishes the tick
    `(ts - previous ts) / N` seconds of trio's clock after the previous one. A tick that
    is late (pacers or the source held it up) goes out at once and the cadence is kept
    from there rather than bursting. `task_status.started()` is called once the first
    tick is on the bus. What comes after the last tick (end, roll) is the feed's.
    """

    def __init__(self, bus: TickBus, speed: Speed, task_status: trio.TaskStatus[None]) -> None:
        self._bus = bus
        self._speed = speed
        self._task_status = task_status
        self._deadline = 0.0
        self.last: Tick | None = None
        """The last tick published, None before the first."""
        self.published = 0
        """How many ticks this run has published."""

    async def publish(self, tick: Tick) -> None:
        """Wait for the pacers and the speed, then publish `tick` (whose `seq` must be
        after the last one's)."""
        prev = self.last
        speed = self._speed
        if prev is not None:
            await self._bus.wait_paced(prev.seq)
            if not speed:
                await trio.sleep_forever()
            if speed != MAX_SPEED:
                gap = (tick.ts - prev.ts).total_seconds() / speed  # type: ignore[operator]
                self._deadline = max(self._deadline + gap, trio.current_time())
                await trio.sleep_until(self._deadline)
        else:
            self._deadline = trio.current_time()
        self._bus.publish(tick)
        self.last = tick
        self.published += 1
        if prev is None:
            self._task_status.started()
