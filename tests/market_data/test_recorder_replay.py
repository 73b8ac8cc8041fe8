import datetime as dt
from collections.abc import Sequence

import msgspec
import pytest
import trio
import trio.testing

from md_fixtures import DAY, calendar, config, ticks_of  # noqa: F401 - fixtures
from odted.domain.chain import Tick
from odted.market.bus import FeedEnded, TickBus
from odted.market.recorder import Recorder
from odted.market.replay import ReplayConfig, ReplayFeed
from odted.market.synthetic import SyntheticConfig, SyntheticFeed
from odted.store.ticks import TickStore

UTC = dt.UTC


async def collect(bus: TickBus, into: list[tuple[float, Tick]], *,
                  task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """Take every tick as a pacer, with the trio time it came, until the feed ends."""
    with bus.pacer() as pacer:
        task_status.started()
        try:
            while True:
                tick = await bus.wait_tick_after(pacer.seq)
                into.append((trio.current_time(), tick))
                pacer.done(tick.seq)
        except FeedEnded:
            pass


class MemorySource:
    """Recorded sessions in a list, as the store would serve them."""

    def __init__(self, ticks: Sequence[Tick]) -> None:
        self.ticks = list(ticks)
        self.reads = 0

    async def session_dates(self) -> list[dt.date]:
        return sorted({t.ts.date() for t in self.ticks})

    async def read_ticks(self, day: dt.date, start: dt.datetime, limit: int) -> list[Tick]:
        self.reads += 1
        await trio.lowlevel.checkpoint()
        return [t for t in self.ticks if t.ts >= start][:limit]


class MemoryWriter:
    """A recorder's `write` that keeps what it is given; `fail` makes calls fail."""

    def __init__(self) -> None:
        self.written: list[Tick] = []
        self.calls: list[tuple[dt.date, dt.datetime, dt.datetime, int]] = []
        self.fail = 0
        self.refuse: set[int] = set()

    async def __call__(self, day, start, end, ticks) -> int:
        await trio.lowlevel.checkpoint()
        if self.fail:
            self.fail -= 1
            raise RuntimeError("database away")
        if self.refuse & {t.seq for t in ticks}:
            raise ValueError("cannot store that")
        self.calls.append((day, start, end, len(ticks)))
        self.written.extend(ticks)
        return len(ticks)


def synthetic(calendar, start: dt.time, **kw) -> SyntheticFeed:
    return SyntheticFeed(SyntheticConfig(date=DAY, seed=5, start_time=start, on_close="end", **kw), calendar)


# -- the round trip through PostgreSQL --------------------------------------------------


async def test_replay_plays_back_exactly_the_ticks_the_recorder_stored(db, calendar):
    store = TickStore(db)
    published: list[tuple[float, Tick]] = []
    recorder = Recorder(store.append, calendar, interval=0.05, batch=64, buffer=128)
    bus = TickBus()
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            await nursery.start(recorder.run, bus)
            await nursery.start(collect, bus, published)
            await synthetic(calendar, dt.time(15, 55), speed="max").run(bus)
    original = [t for _, t in published]
    assert len(original) == 301 and original[-1].closing
    state = recorder.state()
    assert (state.taken, state.stored, state.pending, state.missed) == (301, 301, 0, 0)

    replayed: list[tuple[float, Tick]] = []
    feed = ReplayFeed(ReplayConfig(date=DAY, start_time=dt.time(15, 55), speed="max"), store, page=100)
    bus = TickBus()
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            await nursery.start(collect, bus, replayed)
            await feed.run(bus)
    assert [t for _, t in replayed] == original
    assert bus.closed and feed.state().ended and feed.state().ticks_published == 301


async def test_replay_without_a_date_plays_the_latest_session_from_its_start_time(db, calendar):
    store = TickStore(db)
    older = ticks_of(calendar, dt.date(2025, 1, 14), n=5, start=dt.time(15, 0))
    latest = ticks_of(calendar, DAY, n=20, start=dt.time(15, 0))
    await store.append(dt.date(2025, 1, 14), older[0].ts, older[-1].ts, older)
    await store.append(DAY, latest[0].ts, latest[-1].ts, latest)
    got: list[tuple[float, Tick]] = []
    bus = TickBus()
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            await nursery.start(collect, bus, got)
            await ReplayFeed(ReplayConfig(start_time=dt.time(15, 0, 10), speed="max"), store).run(bus)
    assert [t for _, t in got] == latest[10:]


# -- replay pacing ----------------------------------------------------------------------


async def test_replay_keeps_the_recorded_spacing_divided_by_the_speed(calendar, autojump_clock):
    recorded = ticks_of(calendar, n=6)
    recorded = recorded[:3] + [msgspec.structs.replace(t, ts=t.ts + dt.timedelta(seconds=10)) for t in recorded[3:]]
    got: list[tuple[float, Tick]] = []
    bus = TickBus()
    source = MemorySource(recorded)
    with trio.fail_after(100):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(collect, bus, got)
            await trio.testing.wait_all_tasks_blocked()
            await ReplayFeed(ReplayConfig(date=DAY, speed=2.0), source, page=2).run(bus)
    times = [at - got[0][0] for at, _ in got]
    assert times == pytest.approx([0, 0.5, 1.0, 6.5, 7.0, 7.5])
    assert [t for _, t in got] == recorded
    assert source.reads == 4  # pages of two, and the empty read that ends it


async def test_replay_at_speed_zero_publishes_the_first_tick_and_holds_it(calendar, autojump_clock):
    bus = TickBus()
    feed = ReplayFeed(ReplayConfig(date=DAY, speed=0.0), MemorySource(ticks_of(calendar, n=3)))
    with trio.fail_after(100):
        async with trio.open_nursery() as nursery:
            await nursery.start(feed.run, bus)
            await trio.sleep(50)
            assert bus.published == 1 and feed.state().connected
            nursery.cancel_scope.cancel()
    assert not feed.state().connected and not bus.closed


async def test_replay_numbers_its_ticks_after_the_bus_latest(calendar, autojump_clock):
    recorded = ticks_of(calendar, n=3)
    bus = TickBus()
    bus.publish(msgspec.structs.replace(recorded[0], seq=recorded[0].seq + 100))
    with trio.fail_after(100):
        await ReplayFeed(ReplayConfig(date=DAY, speed="max"), MemorySource(recorded)).run(bus)
    assert bus.latest.seq == recorded[0].seq + 103
    assert bus.latest == msgspec.structs.replace(recorded[-1], seq=recorded[0].seq + 103)


async def test_replay_with_nothing_recorded_ends_the_feed_and_says_why(autojump_clock):
    bus = TickBus()
    feed = ReplayFeed(ReplayConfig(speed="max"), MemorySource([]))
    with trio.fail_after(100):
        async with trio.open_nursery() as nursery:
            await nursery.start(feed.run, bus)
    state = feed.state()
    assert bus.closed and state.ended and "no recorded session" in state.error


# -- the recorder -----------------------------------------------------------------------


async def test_a_full_buffer_holds_the_feed_until_storage_is_back(calendar, autojump_clock):
    writer = MemoryWriter()
    writer.fail = 3
    published: list[tuple[float, Tick]] = []
    recorder = Recorder(writer, calendar, interval=1.0, batch=8, buffer=16)
    bus = TickBus()
    with trio.fail_after(1000):
        async with trio.open_nursery() as nursery:
            await nursery.start(recorder.run, bus)
            await nursery.start(collect, bus, published)
            await synthetic(calendar, dt.time(15, 59, 0), speed="max").run(bus)
    assert writer.written == [t for _, t in published]
    state = recorder.state()
    assert (state.stored, state.failures, state.missed, state.pending) == (61, 3, 0, 0)
    assert state.last_error == "RuntimeError: database away"
    # the feed waited: with 16 ticks held, the 18th came after the backoffs (1 + 2 + 4 s)
    assert published[17][0] - published[16][0] >= 1 + 2 + 4


async def test_a_tick_the_store_refuses_is_dropped_and_the_others_kept(calendar, autojump_clock):
    writer = MemoryWriter()
    ticks = ticks_of(calendar, n=5)
    writer.refuse = {ticks[2].seq}
    recorder = Recorder(writer, calendar, interval=1.0)
    bus = TickBus()
    with trio.fail_after(100):
        async with trio.open_nursery() as nursery:
            await nursery.start(recorder.run, bus)
            for t in ticks:
                bus.publish(t)
                await bus.wait_paced(t.seq)
            bus.close()
    assert writer.written == ticks[:2] + ticks[3:]
    assert recorder.state().rejected == 1


async def test_cancelling_the_recorder_writes_what_it_holds(calendar, autojump_clock):
    writer = MemoryWriter()
    ticks = ticks_of(calendar, n=5)
    recorder = Recorder(writer, calendar, interval=3600.0)
    bus = TickBus()
    with trio.fail_after(100):
        async with trio.open_nursery() as nursery:
            await nursery.start(recorder.run, bus)
            for t in ticks:
                bus.publish(t)
                await bus.wait_paced(t.seq)
            assert recorder.state().pending == 5 and not writer.written
            nursery.cancel_scope.cancel()
    assert writer.written == ticks
    assert not recorder.state().recording


async def test_ticks_a_feed_did_not_wait_for_are_counted_as_missed(calendar, autojump_clock):
    writer = MemoryWriter()
    ticks = ticks_of(calendar, n=10)
    recorder = Recorder(writer, calendar, interval=1.0)
    bus = TickBus()
    with trio.fail_after(100):
        async with trio.open_nursery() as nursery:
            await nursery.start(recorder.run, bus)
            bus.publish(ticks[0])
            await bus.wait_paced(ticks[0].seq)
            for t in ticks[1:]:  # an upstream burst: no waiting
                bus.publish(t)
            await trio.testing.wait_all_tasks_blocked()
            bus.close()
    assert writer.written == [ticks[0], ticks[-1]]
    assert recorder.state().missed == 8


async def test_a_batch_across_midnight_is_written_per_trading_day(calendar, autojump_clock):
    writer = MemoryWriter()
    day1 = ticks_of(calendar, dt.date(2025, 1, 14), n=2, start=dt.time(15, 59, 59))
    day2 = [msgspec.structs.replace(t, seq=t.seq + 100_000) for t in ticks_of(calendar, DAY, n=2)]
    recorder = Recorder(writer, calendar, interval=1.0)
    bus = TickBus()
    with trio.fail_after(100):
        async with trio.open_nursery() as nursery:
            await nursery.start(recorder.run, bus)
            for t in day1 + day2:
                bus.publish(t)
                await bus.wait_paced(t.seq)
            bus.close()
    s14 = calendar.session(dt.date(2025, 1, 14))
    s15 = calendar.session(DAY)
    assert writer.calls == [(s14.date, s14.open_utc, s14.close_utc, 2), (s15.date, s15.open_utc, s15.close_utc, 2)]
