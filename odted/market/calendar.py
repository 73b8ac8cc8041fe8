"""Trading days, holidays and early closes of the SPX session, in America/New_York.

The source is the `exchange_calendars` XNYS calendar (DESIGN.md "Time and sessions").
Loading it costs about 0.7 s (pandas and the calendar rules), so a `TradingCalendar` is
built once — `TradingCalendar.load()` or the cached `default_calendar()` — and passed to
whoever needs it. After loading it holds plain Python objects: every look-up is a dict
or bisect on dates, no pandas on the hot path, and the object is immutable.
"""

from __future__ import annotations

import functools
import warnings
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import msgspec

__all__ = [
    "NEW_YORK",
    "REGULAR_CLOSE",
    "REGULAR_OPEN",
    "CalendarRangeError",
    "SessionHours",
    "TradingCalendar",
    "default_calendar",
    "ny_datetime",
    "trading_date",
]

NEW_YORK = ZoneInfo("America/New_York")
REGULAR_OPEN = time(9, 30)
REGULAR_CLOSE = time(16, 0)

DEFAULT_FIRST = date(2000, 1, 1)
DEFAULT_LAST = date(2040, 12, 31)


class CalendarRangeError(ValueError):
    """A date outside the range the calendar was loaded for."""


class SessionHours(msgspec.Struct, frozen=True):
    """One trading session: its NY date and its open and close as UTC datetimes."""

    date: date
    open_utc: datetime
    close_utc: datetime
    early_close: bool

    @property
    def seconds(self) -> int:
        """Whole seconds from the open to the close (23,400 on a regular day)."""
        return int((self.close_utc - self.open_utc).total_seconds())

    def contains(self, ts: datetime) -> bool:
        """Whether `ts` is within regular hours: open <= ts < close."""
        return self.open_utc <= ts < self.close_utc


def trading_date(ts: datetime) -> date:
    """The America/New_York calendar date of the aware datetime `ts`."""
    return ts.astimezone(NEW_YORK).date()


class TradingCalendar:
    """Trading sessions between `first_day` and `last_day`; immutable once built.

    Questions about a date outside that range raise `CalendarRangeError`: the calendar
    does not know, and guessing "closed" would be corrupt data.
    """

    def __init__(self, sessions: Iterable[SessionHours], *, first_day: date, last_day: date) -> None:
        ordered = sorted(sessions, key=lambda s: s.date)
        self._by_date = {s.date: s for s in ordered}
        self._dates = [s.date for s in ordered]
        self._first = first_day
        self._last = last_day

    @classmethod
    def load(
        cls, first_day: date = DEFAULT_FIRST, last_day: date = DEFAULT_LAST, *, exchange: str = "XNYS"
    ) -> TradingCalendar:
        """Build from `exchange_calendars` (slow: about 0.7 s with its imports)."""
        import exchange_calendars

        with warnings.catch_warnings():
            # exchange_calendars 4.13 reads `Series.values` of tz-aware columns, which
            # pandas 3.1 deprecates; the values it reads are the UTC instants either way.
            warnings.filterwarnings("ignore", message="Series.values returning an ndarray")
            cal = exchange_calendars.get_calendar(exchange, start=first_day.isoformat(), end=last_day.isoformat())
        schedule = cal.schedule
        sessions = []
        for day, opens, closes in zip(
            schedule.index.date,
            schedule["open"].dt.to_pydatetime(),
            schedule["close"].dt.to_pydatetime(),
            strict=True,
        ):
            open_utc = opens.replace(tzinfo=UTC)
            close_utc = closes.replace(tzinfo=UTC)
            local_close = close_utc.astimezone(NEW_YORK).time()
            sessions.append(SessionHours(day, open_utc, close_utc, local_close < REGULAR_CLOSE))
        return cls(sessions, first_day=first_day, last_day=last_day)

    @property
    def first_day(self) -> date:
        """The first date the calendar knows about."""
        return self._first

    @property
    def last_day(self) -> date:
        """The last date the calendar knows about."""
        return self._last

    def _check(self, day: date) -> None:
        if not self._first <= day <= self._last:
            raise CalendarRangeError(f"{day} is outside the calendar ({self._first} to {self._last})")

    def is_trading_day(self, day: date) -> bool:
        """Whether the exchange holds a session on `day`."""
        self._check(day)
        return day in self._by_date

    def session(self, day: date) -> SessionHours | None:
        """The session on `day`, or None when `day` is a weekend or holiday."""
        self._check(day)
        return self._by_date.get(day)

    def next_trading_day(self, day: date) -> date:
        """The first trading day strictly after `day`."""
        self._check(day)
        i = bisect_right(self._dates, day)
        if i == len(self._dates):
            raise CalendarRangeError(f"no trading day after {day} within the calendar")
        return self._dates[i]

    def previous_trading_day(self, day: date) -> date:
        """The last trading day strictly before `day`."""
        self._check(day)
        i = bisect_left(self._dates, day)
        if i == 0:
            raise CalendarRangeError(f"no trading day before {day} within the calendar")
        return self._dates[i - 1]

    def sessions(self, first_day: date, last_day: date) -> list[SessionHours]:
        """The sessions from `first_day` to `last_day`, both included, in date order."""
        self._check(first_day)
        self._check(last_day)
        lo = bisect_left(self._dates, first_day)
        hi = bisect_right(self._dates, last_day)
        return [self._by_date[d] for d in self._dates[lo:hi]]

    def session_at(self, ts: datetime) -> SessionHours | None:
        """The session on the NY date of `ts` (whatever the hour), or None on a day off."""
        return self.session(trading_date(ts))

    def is_open(self, ts: datetime) -> bool:
        """Whether `ts` is within a session's regular hours (open <= ts < close)."""
        s = self.session_at(ts)
        return s is not None and s.contains(ts)

    def current_or_next_session(self, ts: datetime) -> SessionHours:
        """The session in progress at `ts`, else the next one to open after it."""
        day = trading_date(ts)
        s = self.session(day)
        if s is not None and ts < s.close_utc:
            return s
        nxt = self.session(self.next_trading_day(day))
        assert nxt is not None
        return nxt


@functools.cache
def default_calendar() -> TradingCalendar:
    """The XNYS calendar for 2000–2040, loaded once per process.

    The cache holds one immutable object, so sharing it is safe; code that can be given
    a calendar should take it as a parameter rather than call this.
    """
    return TradingCalendar.load()


def ny_datetime(day: date, t: time) -> datetime:
    """`day` at New York wall-clock time `t`, as an aware UTC datetime."""
    return datetime.combine(day, t, NEW_YORK).astimezone(UTC)
