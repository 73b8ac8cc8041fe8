from datetime import UTC, date, datetime, time, timedelta

import pytest
import trio
import trio.testing

from odted.domain.chain import Tick
from odted.market.bus import FeedEnded, TickBus
from odted.market.calendar import TradingCalendar
from odted.market.clock import MarketClock
from odted.market.feed import Feed
from odted.market.synthetic import SyntheticConfig, SyntheticFeed

DAY = date(2025, 1, 15)


def feed(calendar: TradingCalendar, **kw) -> SyntheticFeed:
    cfg = {"date": DAY, "seed": 11, "start_time": time(15, 59, 50), "on_close": "end", **kw}
    return SyntheticFeed(SyntheticConfig(**cfg), calendar)


async def collect(bus: TickBus, into: list[tuple[float, Tick]]) -> None:
    """Every tick this subscriber gets, with the trio time it got it, until the end."""
    seq = 0
    try:
        while True:
            tick = await bus.wait_tick_after(seq)
            into.append((trio.current_time(), tick))
            seq = tick.seq
    except FeedEnded:
        pass


def test_the_synthetic_feed_is_a_feed(calendar):
    f: Feed = feed(calendar)
    assert f.name == "synthetic"


async def test_started_returns_once_the_first_tick_is_on_the_bus(calendar, autojump_clock):
    bus = TickBus()
    f = feed(calendar)
    with trio.fail_after(100):
        async with trio.open_nursery() as nursery:
            await nursery.start(f.run, bus)
            assert bus.latest is not None
            assert bus.latest.ts == datetime(2025, 1, 15, 20, 59, 50, tzinfo=UTC)
            state = f.state()
            assert state.connected and state.session_date == DAY and state.ticks_published == 1
            assert state.seq == bus.latest.seq and state.last_tick_ts == bus.latest.ts
            nursery.cancel_scope.cancel()
    assert not f.state().connected


async def test_at_speed_one_a_tick_a_second_then_the_closing_tick_and_the_end(calendar, autojump_clock):
    bus = TickBus()
    got: list[tuple[float, Tick]] = []
    f = feed(calendar)
    with trio.fail_after(100):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(collect, bus, got)
            await trio.testing.wait_all_tasks_blocked()
            await nursery.start(f.run, bus)
    times = [t for t, _ in got]
    ticks = [tick for _, tick in got]
    assert len(ticks) == 11 and [t.closing for t in ticks] == [False] * 10 + [True]
    assert [b - a for a, b in zip(times, times[1:])] == pytest.approx([1.0] * 10)
    assert [t.seq for t in ticks] == list(range(23_391, 23_402))
    assert bus.closed and f.state().ended and bus.speed == 1.0


async def test_at_speed_ten_a_tick_every_tenth_of_a_second(calendar, autojump_clock):
    bus = TickBus()
    got: list[tuple[float, Tick]] = []
    with trio.fail_after(100):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(collect, bus, got)
            await trio.testing.wait_all_tasks_blocked()
            await nursery.start(feed(calendar, speed=10.0).run, bus)
    times = [t for t, _ in got]
    assert [b - a for a, b in zip(times, times[1:])] == pytest.approx([0.1] * 10)


async def test_at_speed_zero_the_first_tick_holds(calendar, autojump_clock):
    bus = TickBus()
    with trio.fail_after(10_000):
        async with trio.open_nursery() as nursery:
            await nursery.start(feed(calendar, speed=0.0).run, bus)
            await trio.sleep(3_600)
            assert bus.published == 1
            nursery.cancel_scope.cancel()


async def test_at_max_speed_pacers_see_every_tick_and_others_conflate(calendar, autojump_clock):
    bus = TickBus()
    paced: list[int] = []
    watched: list[tuple[float, Tick]] = []

    async def recorder(task_status=trio.TASK_STATUS_IGNORED):
        with bus.pacer() as pacer:
            task_status.started()
            try:
                while True:
                    tick = await bus.wait_tick_after(pacer.seq)
                    paced.append(tick.seq)
                    await trio.sleep(0.01)  # a slow consumer sets the pace
                    pacer.done(tick.seq)
            except FeedEnded:
                pass

    async def watcher():
        seq = 0
        try:
            while True:
                tick = await bus.wait_tick_after(seq)
                watched.append((trio.current_time(), tick))
                seq = tick.seq
                await trio.sleep(0.05)
        except FeedEnded:
            pass

    f = feed(calendar, speed="max", start_time=time(15, 58))
    took = 0.0

    async def run_feed():
        nonlocal took
        start = trio.current_time()
        await f.run(bus)
        took = trio.current_time() - start

    with trio.fail_after(100):
        async with trio.open_nursery() as nursery:
            await nursery.start(recorder)
            nursery.start_soon(watcher)
            nursery.start_soon(run_feed)
    assert paced == list(range(23_281, 23_402))
    assert took == pytest.approx(1.2)  # 120 waits of 10 ms for the pacer
    seqs = [t.seq for _, t in watched]
    assert seqs == sorted(set(seqs)) and seqs[-1] == 23_401 and len(seqs) < 40


async def test_at_max_speed_without_pacers_the_day_runs_as_fast_as_it_is_made(calendar, autojump_clock):
    bus = TickBus()
    with trio.fail_after(100):
        await feed(calendar, speed="max", start_time=time(15, 55)).run(bus)
    assert bus.published == 301 and bus.latest is not None and bus.latest.closing
    assert trio.current_time() == 0


async def test_roll_carries_on_with_the_next_trading_day(calendar, autojump_clock):
    bus = TickBus()
    got: list[tuple[float, Tick]] = []
    f = feed(calendar, date=date(2024, 11, 29), start_time=time(12, 59, 58), on_close="roll", speed=3_600.0)
    with trio.fail_after(1_000):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(collect, bus, got)
            await trio.testing.wait_all_tasks_blocked()
            await nursery.start(f.run, bus)
            while bus.latest_seq < 12_603:
                await bus.wait_tick_after(bus.latest_seq)
            nursery.cancel_scope.cancel()
    ticks = [t for _, t in got]
    times = [t for t, _ in got]
    friday_close, monday_open = ticks[2], ticks[3]
    assert friday_close.closing and friday_close.ts == datetime(2024, 11, 29, 18, tzinfo=UTC)
    assert monday_open.ts == datetime(2024, 12, 2, 14, 30, tzinfo=UTC) and not monday_open.closing
    assert monday_open.seq == friday_close.seq + 1 == 12_602
    assert monday_open.spx == friday_close.spx
    # The weekend (Friday 13:00 to Monday 09:30 ET, 68.5 hours) passes at 3600x.
    assert times[3] - times[2] == pytest.approx(68.5)
    assert f.state().session_date == date(2024, 12, 2) and not bus.closed


async def test_the_market_clock_follows_the_feed(calendar, autojump_clock):
    bus = TickBus()
    clock = MarketClock(bus, calendar)
    f = feed(calendar, speed=60.0, start_time=time(10, 0))
    with trio.fail_after(100):
        async with trio.open_nursery() as nursery:
            await nursery.start(f.run, bus)
            assert clock.now() == datetime(2025, 1, 15, 15, tzinfo=UTC)
            assert clock.today() == DAY and clock.is_open()
            start = trio.current_time()
            await clock.sleep(30)
            assert trio.current_time() - start == pytest.approx(0.5)
            assert clock.now() == datetime(2025, 1, 15, 15, 0, 30, tzinfo=UTC)
            assert clock.staleness() < timedelta(seconds=1)
            nursery.cancel_scope.cancel()


async def test_numbering_continues_after_the_ticks_already_on_the_bus(calendar, bare_tick, autojump_clock):
    bus = TickBus()
    bus.publish(bare_tick(50_000, datetime(2025, 1, 14, 21, tzinfo=UTC)))
    with trio.fail_after(100):
        async with trio.open_nursery() as nursery:
            await nursery.start(feed(calendar).run, bus)
            assert bus.latest is not None and bus.latest.seq == 50_000 + 23_391
            nursery.cancel_scope.cancel()
