from datetime import UTC, date, datetime, timedelta

import pytest
import trio
import trio.testing

from odted.market.bus import FeedEnded, TickBus
from odted.market.calendar import TradingCalendar
from odted.market.clock import MarketClock

T0 = datetime(2025, 1, 15, 14, 30, tzinfo=UTC)
WALL = datetime(2030, 6, 1, 12, tzinfo=UTC)


def make(calendar: TradingCalendar, speed=1.0) -> tuple[TickBus, MarketClock]:
    bus = TickBus()
    bus.set_speed(speed)
    return bus, MarketClock(bus, calendar, wall=lambda: WALL)


async def test_before_any_tick_the_clock_is_the_wall_clock_and_infinitely_stale(calendar):
    bus, clock = make(calendar)
    assert not clock.synced
    assert clock.now() == WALL
    assert clock.staleness() == timedelta.max
    assert clock.today() == date(2030, 6, 1)


async def test_at_real_time_market_time_runs_with_trio_time(calendar, bare_tick, autojump_clock):
    bus, clock = make(calendar)
    bus.publish(bare_tick(1, T0))
    assert clock.now() == T0 and clock.staleness() == timedelta(0)
    await trio.sleep(2.5)
    assert clock.now() == T0 + timedelta(seconds=2.5)
    assert clock.staleness() == timedelta(seconds=2.5)
    bus.publish(bare_tick(2, T0 + timedelta(seconds=3)))
    assert clock.now() == T0 + timedelta(seconds=3) and clock.staleness() == timedelta(0)


async def test_at_sixty_times_a_second_of_trio_time_is_a_market_minute(calendar, bare_tick, autojump_clock):
    bus, clock = make(calendar, 60.0)
    bus.publish(bare_tick(1, T0))
    await trio.sleep(1)
    assert clock.now() == T0 + timedelta(minutes=1)
    assert clock.staleness() == timedelta(minutes=1)


async def test_at_max_speed_market_time_is_the_last_tick(calendar, bare_tick, autojump_clock):
    bus, clock = make(calendar, "max")
    bus.publish(bare_tick(1, T0))
    await trio.sleep(100)
    assert clock.now() == T0 and clock.staleness() == timedelta(0)


async def test_paused_market_time_stands_still(calendar, bare_tick, autojump_clock):
    bus, clock = make(calendar, 0.0)
    bus.publish(bare_tick(1, T0))
    await trio.sleep(100)
    assert clock.now() == T0


async def test_a_speed_change_keeps_market_time_continuous(calendar, bare_tick, autojump_clock):
    bus, clock = make(calendar)
    bus.publish(bare_tick(1, T0))
    await trio.sleep(10)
    bus.set_speed(10.0)
    assert clock.now() == T0 + timedelta(seconds=10)
    await trio.sleep(1)
    assert clock.now() == T0 + timedelta(seconds=20)


async def test_today_and_is_open_are_judged_on_market_time(calendar, bare_tick):
    bus, clock = make(calendar, "max")
    bus.publish(bare_tick(1, datetime(2025, 1, 16, 2, tzinfo=UTC)))  # 21:00 on the 15th in NY
    assert clock.today() == date(2025, 1, 15) and not clock.is_open()
    bus.publish(bare_tick(2, datetime(2025, 1, 16, 14, 30, tzinfo=UTC)))
    assert clock.today() == date(2025, 1, 16) and clock.is_open()
    session = clock.session()
    assert session is not None and session.date == date(2025, 1, 16)
    bus.publish(bare_tick(3, datetime(2025, 1, 16, 21, tzinfo=UTC)))
    assert not clock.is_open()


async def test_wait_until_sleeps_market_time_divided_by_speed(calendar, bare_tick, autojump_clock):
    bus, clock = make(calendar, 60.0)
    bus.publish(bare_tick(1, T0))
    start = trio.current_time()
    with trio.fail_after(10):
        await clock.wait_until(T0 + timedelta(minutes=2))
    assert trio.current_time() - start == pytest.approx(2.0)
    assert clock.now() >= T0 + timedelta(minutes=2)
    start = trio.current_time()
    await clock.sleep(30)  # a nudge_after_seconds timer: half a trio second at 60x
    assert trio.current_time() - start == pytest.approx(0.5)


async def test_wait_until_in_the_past_returns_at_once(calendar, bare_tick, autojump_clock):
    bus, clock = make(calendar)
    bus.publish(bare_tick(1, T0))
    start = trio.current_time()
    await clock.wait_until(T0 - timedelta(hours=1))
    assert trio.current_time() == start


async def test_wait_until_at_max_speed_wakes_on_the_tick_that_reaches_the_moment(calendar, bare_tick, autojump_clock):
    bus, clock = make(calendar, "max")
    bus.publish(bare_tick(1, T0))
    woke_at: list[datetime] = []

    async def timer():
        await clock.wait_until(T0 + timedelta(seconds=30))
        woke_at.append(clock.now())

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(timer)
            for seq in range(2, 40):
                await trio.testing.wait_all_tasks_blocked()
                if woke_at:
                    break
                bus.publish(bare_tick(seq, T0 + timedelta(seconds=seq - 1)))
    assert woke_at == [T0 + timedelta(seconds=30)]


async def test_wait_until_follows_a_speed_up(calendar, bare_tick, autojump_clock):
    bus, clock = make(calendar, 1.0)
    bus.publish(bare_tick(1, T0))
    start = trio.current_time()
    with trio.fail_after(100):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(clock.wait_until, T0 + timedelta(seconds=60))
            await trio.sleep(10)  # 10 market seconds at 1x, 50 to go
            bus.set_speed(10.0)  # 5 trio seconds
    assert trio.current_time() - start == pytest.approx(15.0)


async def test_wait_until_raises_feed_ended_when_time_stops_short(calendar, bare_tick, autojump_clock):
    bus, clock = make(calendar, "max")
    bus.publish(bare_tick(1, T0, closing=True))
    bus.close()
    with trio.fail_after(1), pytest.raises(FeedEnded):
        await clock.wait_until(T0 + timedelta(seconds=1))


async def test_after_the_feed_ends_at_real_time_market_time_goes_on(calendar, bare_tick, autojump_clock):
    bus, clock = make(calendar, 2.0)
    bus.publish(bare_tick(1, T0, closing=True))
    bus.close()
    with trio.fail_after(100):
        await clock.wait_until(T0 + timedelta(seconds=60))
    assert clock.staleness() >= timedelta(seconds=60)


async def test_before_the_first_tick_wait_until_wakes_on_it(calendar, bare_tick, autojump_clock):
    bus = TickBus()
    bus.set_speed("max")
    clock = MarketClock(bus, calendar, wall=lambda: T0 - timedelta(hours=1))
    done = False

    async def timer():
        nonlocal done
        await clock.wait_until(T0)
        done = True

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(timer)
            await trio.testing.wait_all_tasks_blocked()
            assert not done
            bus.publish(bare_tick(1, T0))
    assert done
