"""The tick bus: a conflating latest-value broadcast from one feed to many subscribers.

Contract (issue 4, item 7):
- `publish(tick)` is synchronous and never blocks. It stores the tick as `latest` and
  wakes the tasks parked in `wait_tick_after` with one `ParkingLot.unpark_all()`: no
  per-subscriber queue, copy, encode or allocation; the only per-waiter cost is trio
  rescheduling the parked task (a few µs each, paid once per tick).
- `await wait_tick_after(seq)` returns the newest tick with `tick.seq > seq`, at once if
  there is one. A subscriber that passes the `seq` of the last tick it saw never gets an
  older or the same tick again; a slow subscriber skips the ticks it missed (conflation)
  and never holds back the feed or the others.
- `close()` ends the bus: waiters that have already seen the newest tick get
  `FeedEnded`; a waiter that has not yet seen it still gets it first.
- Pacers: a consumer that must see EVERY tick (recorder, the actors' tick loop)
  registers `with bus.pacer() as pacer:` and calls `pacer.done(tick.seq)` once it has
  taken the tick. A feed that can wait (synthetic, replay) awaits `wait_paced(seq)`
  after publishing tick `seq` and before publishing the next, so no pacer ever misses a
  tick; at `speed = "max"` the feed therefore runs exactly as fast as its slowest
  pacer. Subscribers that are not pacers conflate. A pacer that stops calling `done`
  stops the feed: take the tick, call `done`, do the slow work elsewhere.
- Market time: the bus stamps each publish with `trio.current_time()`, and keeps the
  feed's speed (`set_speed`); `market_time()` is the last tick's `ts` plus the trio time
  since then scaled by the speed. `MarketClock` builds on it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import trio
from trio.lowlevel import ParkingLot, checkpoint

from odted.domain.chain import Tick
from odted.market.feed import MAX_SPEED, Speed, check_speed

__all__ = ["FeedEnded", "Pacer", "TickBus"]


class FeedEnded(Exception):
    """The feed published its last tick: nothing newer will come on this bus."""


class Pacer:
    """A consumer the feed waits for before publishing the next tick.

    `seq` is the last tick the consumer has taken; it starts one before the bus's
    latest tick at registration, so the consumer also owes the latest tick. Use as a
    context manager (or call `close()`) so a finished consumer stops holding the feed.
    """

    __slots__ = ("_bus", "seq", "_open")

    def __init__(self, bus: TickBus, seq: int) -> None:
        self._bus = bus
        self.seq = seq
        self._open = True

    def done(self, seq: int) -> None:
        """Record that every tick up to and including `seq` has been taken."""
        if seq > self.seq:
            self.seq = seq
            self._bus._pacer_moved()

    def close(self) -> None:
        """Unregister: the feed no longer waits for this consumer."""
        if self._open:
            self._open = False
            self._bus._pacers.remove(self)
            self._bus._pacer_moved()

    def __enter__(self) -> Pacer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class TickBus:
    """Conflating latest-tick broadcast; see the module docstring for the contract."""

    def __init__(self) -> None:
        self._latest: Tick | None = None
        self._published = 0
        self._closed = False
        self._ticks = ParkingLot()
        self._pacers: list[Pacer] = []
        self._paced = ParkingLot()
        self._speed: Speed = 1.0
        self._speed_changed = ParkingLot()
        # Market time anchor: at trio time `_anchor_at` market time was `_anchor_ts`.
        self._anchor_ts: datetime | None = None
        self._anchor_at = 0.0

    # -- state --------------------------------------------------------------------

    @property
    def latest(self) -> Tick | None:
        """The newest tick published, None before the first."""
        return self._latest

    @property
    def latest_seq(self) -> int:
        """`seq` of the newest tick, 0 before the first (feeds number from 1)."""
        return 0 if self._latest is None else self._latest.seq

    @property
    def published(self) -> int:
        """How many ticks have been published."""
        return self._published

    @property
    def closed(self) -> bool:
        """Whether the feed has ended (`close()` was called)."""
        return self._closed

    @property
    def speed(self) -> Speed:
        """The speed the feed runs at, as it last said with `set_speed`."""
        return self._speed

    @property
    def waiting(self) -> int:
        """How many tasks are parked in `wait_tick_after` right now."""
        return len(self._ticks)

    @property
    def pacers(self) -> int:
        """How many pacers are registered."""
        return len(self._pacers)

    # -- the feed's side -----------------------------------------------------------

    def publish(self, tick: Tick) -> None:
        """Make `tick` the latest and wake every waiter; never blocks.

        Raises `trio.ClosedResourceError` after `close()`, and ValueError when
        `tick.seq` is not greater than the latest (a feed bug: fail fast).
        """
        if self._closed:
            raise trio.ClosedResourceError("the tick bus is closed")
        latest = self._latest
        if latest is not None and tick.seq <= latest.seq:
            raise ValueError(f"tick seq {tick.seq} is not after the latest {latest.seq}")
        self._latest = tick
        self._published += 1
        self._anchor_ts = tick.ts
        self._anchor_at = trio.current_time()
        if self._ticks:
            self._ticks.unpark_all()

    def set_speed(self, speed: Speed) -> None:
        """Declare the speed the feed runs at from now on (market time stays continuous)."""
        speed = check_speed(speed)
        if speed == self._speed:
            return
        now = self.market_time()
        if now is not None:
            self._anchor_ts = now
            self._anchor_at = trio.current_time()
        self._speed = speed
        if self._speed_changed:
            self._speed_changed.unpark_all()

    def close(self) -> None:
        """End the bus: waiters learn `FeedEnded`, the feed stops waiting for pacers."""
        if self._closed:
            return
        self._closed = True
        self._ticks.unpark_all()
        self._paced.unpark_all()
        self._speed_changed.unpark_all()

    async def wait_paced(self, seq: int) -> None:
        """Wait until every registered pacer has taken tick `seq` (or the bus closed)."""
        await checkpoint()
        while not self._closed and self._lagging(seq):
            await self._paced.park()

    # -- the subscribers' side -----------------------------------------------------

    async def wait_tick_after(self, seq: int) -> Tick:
        """Return the newest tick with `tick.seq > seq`, waiting for one if needed.

        Raises `FeedEnded` when the bus is closed and no such tick exists.
        """
        latest = self._latest
        if latest is not None and latest.seq > seq:
            await checkpoint()
            return self._latest  # type: ignore[return-value]  # only ever newer
        while True:
            if self._closed:
                await checkpoint()
                raise FeedEnded
            await self._ticks.park()
            latest = self._latest
            if latest is not None and latest.seq > seq:
                return latest

    def pacer(self) -> Pacer:
        """Register a consumer the feed must wait for; see `Pacer`."""
        p = Pacer(self, self.latest_seq - 1 if self._latest is not None else 0)
        self._pacers.append(p)
        return p

    async def wait_speed_changed(self) -> None:
        """Wait until `set_speed` changes the speed (or the bus closes)."""
        if self._closed:
            await checkpoint()
            return
        await self._speed_changed.park()

    # -- market time ---------------------------------------------------------------

    def market_time(self) -> datetime | None:
        """The feed's time now: the last tick's `ts` plus trio time since, times speed.

        At speed `"max"` and 0 it is the last tick's `ts`. None before the first tick.
        After `close()` it keeps running at the last speed (time passes after the close).
        A tick that arrives later than its schedule sets market time back by the lag.
        """
        ts = self._anchor_ts
        if ts is None:
            return None
        speed = self._speed
        if speed == MAX_SPEED or not speed:
            return ts
        elapsed = (trio.current_time() - self._anchor_at) * speed  # type: ignore[operator]
        return ts + timedelta(seconds=elapsed)

    # -- pacer bookkeeping ---------------------------------------------------------

    def _lagging(self, seq: int) -> bool:
        for p in self._pacers:
            if p.seq < seq:
                return True
        return False

    def _pacer_moved(self) -> None:
        if self._paced:
            self._paced.unpark_all()
