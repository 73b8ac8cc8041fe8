"""Ticks in motion: feed sources, the market clock and trading calendar, the tick bus.

Imports `odted.domain` only (plus trio, numpy, exchange_calendars, msgspec). The public
names are re-exported here; the modules are:
- `feed`: the `Feed` protocol every source implements, `Speed`, `FeedState`;
- `bus`: `TickBus`, the conflating latest-tick broadcast, with pacers;
- `clock`: `MarketClock`, market time from the ticks;
- `calendar`: `TradingCalendar`, XNYS sessions in America/New_York;
- `synthetic`: the seeded synthetic day and its feed; `chainmodel`: its pricing;
- `replay`: a recorded session played back; `upstream`: another server's `/__ws`;
- `recorder`: the pacer that hands every tick to storage.
"""

from odted.market.bus import FeedEnded, Pacer, TickBus
from odted.market.calendar import (
    NEW_YORK,
    CalendarRangeError,
    SessionHours,
    TradingCalendar,
    default_calendar,
    ny_datetime,
    trading_date,
)
from odted.market.clock import MarketClock, wall_clock_utc
from odted.market.feed import MAX_SPEED, Feed, FeedState, Speed, check_speed, is_max_speed
from odted.market.recorder import Recorder, RecorderState
from odted.market.replay import ReplayConfig, ReplayFeed, TickSource
from odted.market.synthetic import Jump, SyntheticConfig, SyntheticDay, SyntheticFeed
from odted.market.upstream import UpstreamConfig, UpstreamFeed

__all__ = [
    "MAX_SPEED",
    "NEW_YORK",
    "CalendarRangeError",
    "Feed",
    "FeedEnded",
    "FeedState",
    "Jump",
    "MarketClock",
    "Pacer",
    "Recorder",
    "RecorderState",
    "ReplayConfig",
    "ReplayFeed",
    "SessionHours",
    "Speed",
    "SyntheticConfig",
    "SyntheticDay",
    "SyntheticFeed",
    "TickBus",
    "TickSource",
    "TradingCalendar",
    "UpstreamConfig",
    "UpstreamFeed",
    "check_speed",
    "default_calendar",
    "is_max_speed",
    "ny_datetime",
    "trading_date",
    "wall_clock_utc",
]
