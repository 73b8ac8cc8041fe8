"""The synthetic feed: a deterministic, seeded SPX 0DTE trading day (DESIGN.md "Feeds").

`SyntheticDay` is the pure part: from a `SyntheticConfig` and the calendar it draws the
whole day's SPX and VIX paths once (one value per second, open to close inclusive) and
prices the chain in blocks of seconds on demand. Tick `i` (seconds after the open)
depends only on (seed, date, config), so a day started mid-session is exactly the
suffix of the same day started at the open, and the same seed gives byte-identical
ticks. `SyntheticFeed` paces those ticks onto a `TickBus` at the configured speed.

The model, per second `i` of a session of `n` seconds:
- SPX: geometric Brownian motion in trading time (a session is 1/252 year) with
  volatility `vix / 100 * volatility_scale` and a per-day `drift`, plus the configured
  jumps, rounded to cents;
- VIX: `vix * exp(-7 * log(S_i / S_0))` (up ~7% when SPX falls 1%, so a crash lifts
  it) times a small random walk of its own (about 4% a day), rounded to cents;
- chain: strikes every `strike_step` points, `strikes_each_side` each side of the
  opening level (fixed for the day, as listed strikes are), priced by
  `odted.market.chainmodel` with ATM volatility VIX/100 and the time left to the close;
- `spx_expected_move`: VIX/100 * sqrt(time left in trading years), a fraction with four
  decimals (one standard deviation of the move to the close; 0 at the close).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from decimal import Decimal
from typing import Literal

import msgspec
import numpy as np
import trio

from odted.domain.chain import OptionQuote, StrikeQuotes, Tick
from odted.market.bus import TickBus
from odted.market.calendar import (
    REGULAR_OPEN,
    SessionHours,
    TradingCalendar,
    ny_datetime,
)
from odted.market.chainmodel import (
    TRADING_SECONDS_PER_YEAR,
    nickel_decimals,
    price_chain,
)
from odted.market.clock import wall_clock_utc
from odted.market.feed import FeedState, PacedPublisher, Speed, check_speed

__all__ = ["Jump", "SyntheticConfig", "SyntheticDay", "SyntheticFeed"]

VIX_BETA = 7.0
"""Log-VIX change per unit log-SPX change, negated: SPX -1% lifts VIX ~7%."""
VIX_DAILY_NOISE = 0.04
"""Standard deviation of VIX's own log move over a session, apart from SPX's."""
BLOCK = 64
"""Seconds priced per numpy pass: big enough to amortise numpy's per-call cost, small
enough that a real-time feed never stalls the trio loop for long (~10 ms)."""


class Jump(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """An instant SPX move at a New York time of day (a crash, a rally)."""

    time: dt.time
    """New York wall-clock time of the second the move happens (after the open, at
    or before the close)."""
    pct: float
    """The move in percent of SPX: -5.0 drops it 5% within that second."""


class SyntheticConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Knobs of the synthetic feed (config section `[feed.synthetic]`)."""

    seed: int = 0
    """Random seed (>= 0). With `date` it fixes the day byte for byte."""
    date: dt.date | None = None
    """The trading day to generate; None: the session in progress, or the next one, by
    the wall clock when the feed starts (weekends and holidays roll forward)."""
    start_time: dt.time = REGULAR_OPEN
    """New York time of day of the first tick; clamped to the session. A later start
    gives the same day from that second on."""
    spx_open: Decimal = Decimal("5950.00")
    """SPX at the open (strikes are centred on it)."""
    vix: Decimal = Decimal("15.80")
    """VIX at the open; its level sets the intraday volatility and the option prices."""
    drift: float = 0.0
    """Expected log return of SPX from open to close, per day: -0.01 makes a day that
    trends 1% down (spread evenly over the session's seconds)."""
    volatility_scale: float = 1.0
    """Realised volatility of the SPX path relative to what VIX implies (>= 0): 2.0 is a
    day that moves twice as much as the options price in; 0 a path of drift and jumps."""
    jumps: tuple[Jump, ...] = ()
    """Instant moves at given times of the first day (not of rolled days)."""
    speed: Speed = 1.0
    """1.0 real time, N for N times faster, 0 paused at the first tick, "max" as fast as
    the pacers keep up."""
    strikes_each_side: int = 120
    """Strikes below and above the at-the-money strike (120: 241 strikes, +-600 points)."""
    strike_step: int = 5
    """Points between strikes."""
    on_close: Literal["end", "roll"] = "roll"
    """After the closing tick: "end" closes the bus; "roll" carries on with the next
    trading day (opening at this day's close, after the overnight gap at `speed`)."""

    def __post_init__(self) -> None:
        if self.seed < 0:
            raise ValueError("seed must be >= 0")
        if not self.spx_open > 0 or not self.vix > 0:
            raise ValueError("spx_open and vix must be > 0")
        if not self.volatility_scale >= 0:
            raise ValueError("volatility_scale must be >= 0")
        if self.strikes_each_side < 1 or self.strike_step < 1:
            raise ValueError("strikes_each_side and strike_step must be >= 1")
        if any(not j.pct > -100 for j in self.jumps):
            raise ValueError("a jump cannot move SPX by -100% or more")
        check_speed(self.speed)


def _seconds_between(a: dt.datetime, b: dt.datetime) -> int:
    return int((b - a).total_seconds())


class SyntheticDay:
    """One synthetic session: its paths, drawn at construction, and its ticks on demand.

    `seq` of the tick `i` seconds after the open is `seq_base + i + 1`, so a rolled day
    continues the numbering of the day before. `today` stands in for `config.date` when
    that is None; with both None the day is the session in progress or next by the wall
    clock.
    """

    def __init__(
        self,
        config: SyntheticConfig,
        calendar: TradingCalendar,
        *,
        today: dt.date | None = None,
        seq_base: int = 0,
        _prices: np.ndarray | None = None,
    ) -> None:
        day = config.date or today or calendar.current_or_next_session(wall_clock_utc()).date
        session = calendar.session(day)
        if session is None:
            raise ValueError(f"{day} is not a trading day")
        self.config = config
        self.calendar = calendar
        self.session: SessionHours = session
        self.seq_base = seq_base
        n = session.seconds + 1
        self.n_ticks = n
        start = _seconds_between(session.open_utc, ny_datetime(day, config.start_time))
        self.first_index = min(max(start, 0), n - 1)

        step = config.strike_step
        centre = round(float(config.spx_open) / step) * step
        each = config.strikes_each_side
        strikes = [centre + step * k for k in range(-each, each + 1) if centre + step * k > 0]
        self.strikes: tuple[int, ...] = tuple(strikes)
        self._k = np.array(strikes, dtype=np.float64)

        self._draw_paths(config, session, n)
        # Decimal look-up for the prices the day quotes: sized for intrinsic value at
        # the widest SPX excursion plus $50, grown by `block` if ever short.
        spx = self._spx_cents / 100.0
        widest = max(float(spx.max()) - strikes[0], strikes[-1] - float(spx.min()), 0.0)
        need = int(math.ceil(widest * 20)) + 1000
        if _prices is not None and len(_prices) >= need:
            self._prices = _prices
        else:
            self._prices = nickel_decimals(need)

    def _draw_paths(self, config: SyntheticConfig, session: SessionHours, n: int) -> None:
        entropy = [config.seed, session.date.toordinal()]
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropy)))
        z_spx = rng.standard_normal(n)
        z_vix = rng.standard_normal(n)

        dt_year = 1.0 / TRADING_SECONDS_PER_YEAR
        vol = float(config.vix) / 100.0 * config.volatility_scale
        steps = max(n - 1, 1)
        inc = config.drift / steps - 0.5 * vol * vol * dt_year + vol * math.sqrt(dt_year) * z_spx
        if vol > 0:
            # The underlying moves every second: a move too small to change the cents
            # becomes two cents in its own direction (about 4% of seconds at VIX 16).
            floor = 0.02 / float(config.spx_open)
            inc = np.where(np.abs(inc) < floor, np.copysign(floor, inc), inc)
        inc[0] = 0.0
        for jump in config.jumps:
            j = _seconds_between(session.open_utc, ny_datetime(session.date, jump.time))
            if not 1 <= j < n:
                raise ValueError(f"jump at {jump.time} is not within the session of {session.date}")
            inc[j] += math.log1p(jump.pct / 100.0)
        log_move = np.cumsum(inc)
        spx = float(config.spx_open) * np.exp(log_move)

        vix_noise = VIX_DAILY_NOISE / math.sqrt(steps) * z_vix
        vix_noise[0] = 0.0
        vix = float(config.vix) * np.exp(-VIX_BETA * log_move + np.cumsum(vix_noise))
        vix = np.clip(vix, 5.0, 150.0)

        self._spx_cents = np.rint(spx * 100.0).astype(np.int64)
        self._spx_cents[0] = int(config.spx_open * 100)
        self._vix_cents = np.rint(vix * 100.0).astype(np.int64)
        self._vix_cents[0] = int(config.vix * 100)
        seconds_left = (n - 1 - np.arange(n)).astype(np.float64)
        self._atm_vol = self._vix_cents / 10_000.0
        # At the close the chain is worth its intrinsic value (what settlement pays);
        # pricing never divides by zero time, a picosecond-year is intrinsic to 1e-3.
        self._years_left = np.maximum(seconds_left / TRADING_SECONDS_PER_YEAR, 1e-12)
        em = self._atm_vol * np.sqrt(seconds_left / TRADING_SECONDS_PER_YEAR)
        self._em_bp = np.rint(em * 10_000.0).astype(np.int64)

    # -- ticks ---------------------------------------------------------------------

    @property
    def date(self) -> dt.date:
        """The trading day."""
        return self.session.date

    @property
    def last_seq(self) -> int:
        """`seq` of the closing tick."""
        return self.seq_base + self.n_ticks

    def seq_at(self, index: int) -> int:
        """`seq` of the tick `index` seconds after the open."""
        return self.seq_base + index + 1

    def ticks(self, from_seq: int | None = None) -> Iterator[Tick]:
        """Yield the day's ticks in order, from `start_time` or from the tick `from_seq`,
        through the closing tick (`closing=True`)."""
        start = self.first_index if from_seq is None else from_seq - self.seq_base - 1
        if start < 0:
            raise ValueError(f"seq {from_seq} is before this day")
        for lo in range(start, self.n_ticks, BLOCK):
            yield from self.block(lo, min(lo + BLOCK, self.n_ticks))

    def tick_at(self, index: int) -> Tick:
        """The tick `index` seconds after the open (0 .. n_ticks - 1)."""
        if not 0 <= index < self.n_ticks:
            raise IndexError(index)
        return self.block(index, index + 1)[0]

    def block(self, lo: int, hi: int) -> list[Tick]:
        """The ticks `lo` .. `hi - 1` seconds after the open, priced in one pass."""
        q = price_chain(
            self._spx_cents[lo:hi] / 100.0,
            self._atm_vol[lo:hi],
            self._years_left[lo:hi],
            self._k,
        )
        top = int(max(q.call_ask.max(), q.put_ask.max()))
        if top >= len(self._prices):
            self._prices = nickel_decimals(2 * top)
        prices = self._prices
        call_bid = prices[q.call_bid].tolist()
        call_ask = prices[q.call_ask].tolist()
        put_bid = prices[q.put_bid].tolist()
        put_ask = prices[q.put_ask].tolist()
        call_delta = q.call_delta.tolist()
        put_delta = q.put_delta.tolist()
        spx = self._spx_cents[lo:hi].tolist()
        vix = self._vix_cents[lo:hi].tolist()
        em = self._em_bp[lo:hi].tolist()

        strikes = self.strikes
        open_utc = self.session.open_utc
        close_index = self.n_ticks - 1
        second = dt.timedelta(seconds=1)
        ticks = []
        for r, i in enumerate(range(lo, hi)):
            calls = map(OptionQuote, call_bid[r], call_ask[r], call_delta[r])
            puts = map(OptionQuote, put_bid[r], put_ask[r], put_delta[r])
            ticks.append(
                Tick(
                    seq=self.seq_base + i + 1,
                    ts=open_utc + i * second,
                    spx=Decimal(spx[r]).scaleb(-2),
                    vix=Decimal(vix[r]).scaleb(-2),
                    spx_expected_move=Decimal(em[r]).scaleb(-4),
                    chain=tuple(map(StrikeQuotes, strikes, calls, puts)),
                    strikes=strikes,
                    closing=i == close_index,
                )
            )
        return ticks

    def next_day(self) -> SyntheticDay:
        """The next trading day, opening at this day's closing SPX, from its open, with
        the same seed and no jumps, numbering its ticks on from this day's last."""
        nxt = self.calendar.next_trading_day(self.session.date)
        config = msgspec.structs.replace(
            self.config,
            date=nxt,
            start_time=REGULAR_OPEN,
            spx_open=Decimal(int(self._spx_cents[-1])).scaleb(-2),
            jumps=(),
        )
        return SyntheticDay(config, self.calendar, seq_base=self.last_seq, _prices=self._prices)


class SyntheticFeed:
    """Paces a `SyntheticDay` (and the days it rolls into) onto a tick bus.

    Speed 1.0 publishes one tick per second of trio's clock, N one per 1/N second (the
    overnight gap of a roll too), 0 publishes the first tick and holds it, `"max"`
    publishes the next tick as soon as every pacer has taken the last. At any speed it
    waits for the pacers before each tick; when that (or generating) makes it late it
    publishes at once and keeps the cadence from there rather than bursting.
    Tick numbering starts after the bus's latest `seq`.
    """

    name = "synthetic"

    def __init__(self, config: SyntheticConfig, calendar: TradingCalendar, *, today: dt.date | None = None) -> None:
        self._config = config
        self._calendar = calendar
        self._today = today
        self._day: SyntheticDay | None = None
        self._out: PacedPublisher | None = None
        self._running = False
        self._ended = False

    @property
    def config(self) -> SyntheticConfig:
        """The configuration the feed was built with."""
        return self._config

    def state(self) -> FeedState:
        """The feed's state for `/status`."""
        out = self._out
        last = None if out is None else out.last
        return FeedState(
            source=self.name,
            connected=self._running,
            speed=self._config.speed,
            session_date=None if self._day is None else self._day.date,
            last_tick_ts=None if last is None else last.ts,
            seq=None if last is None else last.seq,
            ticks_published=0 if out is None else out.published,
            ended=self._ended,
        )

    async def run(self, bus: TickBus, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Publish ticks onto `bus`; `task_status.started()` once the first is on it."""
        speed = self._config.speed
        bus.set_speed(speed)
        day = SyntheticDay(self._config, self._calendar, today=self._today, seq_base=bus.latest_seq)
        self._day = day
        self._running = True
        out = self._out = PacedPublisher(bus, speed, task_status)
        try:
            while True:
                for tick in day.ticks():
                    await out.publish(tick)
                if self._config.on_close == "end":
                    self._ended = True
                    bus.close()
                    return
                day = day.next_day()
                self._day = day
        finally:
            self._running = False
