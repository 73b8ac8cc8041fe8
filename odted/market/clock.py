"""Market time: the feed's time, not the wall's (DESIGN.md "Time and sessions").

Under a synthetic or replay feed running at 60x, market time runs at 60x, so every timer
(`nudge_after_seconds`, staleness, the close) scales with it. Market time is the last
tick's `ts` plus the trio time since it, times the feed's speed (`TickBus.market_time`);
at speed `"max"` (and 0, paused) it is the last tick's `ts`. Before the first tick the
clock falls back to the wall clock (UTC) and `staleness()` is `timedelta.max`.

A `MarketClock` is built by the daemon next to its `TickBus` and passed to whoever needs
time; it holds no state of its own beyond its references.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import trio
from trio.lowlevel import checkpoint

from odted.market.bus import FeedEnded, TickBus
from odted.market.calendar import SessionHours, TradingCalendar, trading_date
from odted.market.feed import MAX_SPEED

__all__ = ["MarketClock", "wall_clock_utc"]

# datetime resolution: market time computed from float trio time can land a microsecond
# short of a deadline it has reached.
_RESOLUTION = timedelta(microseconds=1)


def wall_clock_utc() -> datetime:
    """The wall clock, UTC: the market clock's fallback before the first tick."""
    return datetime.now(UTC)


class MarketClock:
    """Market time from the ticks on `bus`, judged against `calendar`."""

    def __init__(
        self, bus: TickBus, calendar: TradingCalendar, *, wall: Callable[[], datetime] = wall_clock_utc
    ) -> None:
        self._bus = bus
        self._calendar = calendar
        self._wall = wall

    @property
    def calendar(self) -> TradingCalendar:
        """The trading calendar the clock judges sessions by."""
        return self._calendar

    @property
    def synced(self) -> bool:
        """Whether a tick has arrived (before that, time is the wall clock's)."""
        return self._bus.latest is not None

    def now(self) -> datetime:
        """Market time now, an aware UTC datetime (the wall clock before the first tick)."""
        t = self._bus.market_time()
        return self._wall() if t is None else t

    def staleness(self) -> timedelta:
        """Market time since the last tick's `ts`; `timedelta.max` before the first tick.

        Always zero at speed `"max"` and 0, where market time is the last tick's `ts`.
        """
        latest = self._bus.latest
        t = self._bus.market_time()
        if latest is None or t is None:
            return timedelta.max
        return max(t - latest.ts, timedelta(0))

    def today(self) -> date:
        """The New York date of market time: the trading day being judged."""
        return trading_date(self.now())

    def session(self) -> SessionHours | None:
        """Today's session by market time, None on a weekend or holiday."""
        return self._calendar.session_at(self.now())

    def is_open(self) -> bool:
        """Whether market time is within regular hours (open <= now < close)."""
        return self._calendar.is_open(self.now())

    async def sleep(self, seconds: float) -> None:
        """Wait for `seconds` of market time to pass."""
        await self.wait_until(self.now() + timedelta(seconds=seconds))

    async def wait_until(self, when: datetime) -> None:
        """Return once market time reaches the aware datetime `when`.

        At a numeric speed it sleeps on trio's clock for the market time left divided by
        the speed, and re-checks (also when the speed changes). At `"max"` and while
        paused it wakes on each tick until one reaches `when`; if the feed has ended
        there, market time has stopped and it raises `FeedEnded`. Before the first tick
        it waits for that tick or for the wall clock to reach `when`.
        """
        if when.tzinfo is None:
            raise ValueError("wait_until needs an aware datetime")
        bus = self._bus
        while True:
            now = self.now()
            if now >= when - _RESOLUTION:
                await checkpoint()
                return
            left = (when - now).total_seconds()
            latest = bus.latest
            if latest is None:
                with trio.move_on_after(left):
                    if bus.closed:
                        await trio.sleep_forever()
                    await bus.wait_tick_after(0)
                continue
            speed = bus.speed
            if speed == MAX_SPEED or not speed:
                if bus.closed:
                    raise FeedEnded
                await bus.wait_tick_after(latest.seq)
                continue
            if bus.closed:
                await trio.sleep(left / speed)  # type: ignore[operator]
                continue
            with trio.move_on_after(left / speed):  # type: ignore[operator]
                await bus.wait_speed_changed()
