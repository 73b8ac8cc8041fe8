import random

import pytest
import trio
import trio.testing

from odted.domain.chain import Tick
from odted.market.bus import FeedEnded, TickBus


async def test_wait_tick_after_returns_a_newer_tick_at_once(bare_tick):
    bus = TickBus()
    bus.publish(bare_tick(1))
    bus.publish(bare_tick(2))
    with trio.fail_after(1):
        assert (await bus.wait_tick_after(0)).seq == 2
        assert (await bus.wait_tick_after(1)).seq == 2


async def test_wait_tick_after_waits_for_the_next_publish(bare_tick):
    bus = TickBus()
    bus.publish(bare_tick(1))
    got: list[Tick] = []

    async def subscriber():
        got.append(await bus.wait_tick_after(1))

    with trio.fail_after(1):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(subscriber)
            await trio.testing.wait_all_tasks_blocked()
            assert got == [] and bus.waiting == 1
            bus.publish(bare_tick(2))
    assert [t.seq for t in got] == [2]


async def test_a_slow_subscriber_gets_only_the_latest_and_never_goes_back(bare_tick):
    bus = TickBus()
    seen: list[int] = []
    release = trio.Event()

    async def slow():
        seq = 0
        while True:
            tick = await bus.wait_tick_after(seq)
            seen.append(tick.seq)
            seq = tick.seq
            await release.wait()

    with trio.fail_after(1):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(slow)
            bus.publish(bare_tick(1))
            await trio.testing.wait_all_tasks_blocked()
            for seq in range(2, 6):  # the subscriber is busy with tick 1 meanwhile
                bus.publish(bare_tick(seq))
            release.set()
            await trio.testing.wait_all_tasks_blocked()
            nursery.cancel_scope.cancel()
    assert seen == [1, 5]


async def test_the_feed_is_never_held_back_by_subscribers(bare_tick):
    bus = TickBus()

    async def stuck():
        await bus.wait_tick_after(0)
        await trio.sleep_forever()

    with trio.fail_after(1):
        async with trio.open_nursery() as nursery:
            for _ in range(10):
                nursery.start_soon(stuck)
            await trio.testing.wait_all_tasks_blocked()
            for seq in range(1, 1001):
                bus.publish(bare_tick(seq))  # synchronous: returns at once every time
            assert bus.latest is not None and bus.latest.seq == 1000
            nursery.cancel_scope.cancel()


async def test_subscribers_see_strictly_increasing_seqs_whatever_their_pace(bare_tick, autojump_clock):
    bus = TickBus()
    rng = random.Random(4)
    seen: dict[int, list[int]] = {i: [] for i in range(20)}

    async def subscriber(i: int, delay: float):
        seq = 0
        try:
            while True:
                tick = await bus.wait_tick_after(seq)
                seen[i].append(tick.seq)
                seq = tick.seq
                await trio.sleep(delay)
        except FeedEnded:
            pass

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            for i in range(20):
                nursery.start_soon(subscriber, i, rng.choice([0, 0.001, 0.003, 0.01]))
            for seq in range(1, 301):
                bus.publish(bare_tick(seq))
                await trio.sleep(rng.choice([0, 0.001, 0.002]))
            bus.close()
    for s in seen.values():
        assert s == sorted(set(s)) and s[-1] == 300


async def test_closing_the_bus_ends_waiters_after_they_have_the_last_tick(bare_tick):
    bus = TickBus()
    bus.publish(bare_tick(1))
    bus.publish(bare_tick(2, closing=True))
    bus.close()
    with trio.fail_after(1):
        assert (await bus.wait_tick_after(1)).closing
        with pytest.raises(FeedEnded):
            await bus.wait_tick_after(2)


async def test_closing_wakes_parked_waiters_with_feed_ended(bare_tick):
    bus = TickBus()
    ended = 0

    async def waiter():
        nonlocal ended
        with pytest.raises(FeedEnded):
            await bus.wait_tick_after(0)
        ended += 1

    with trio.fail_after(1):
        async with trio.open_nursery() as nursery:
            for _ in range(3):
                nursery.start_soon(waiter)
            await trio.testing.wait_all_tasks_blocked()
            bus.close()
    assert ended == 3


async def test_publishing_an_old_seq_or_after_close_fails_fast(bare_tick):
    bus = TickBus()
    bus.publish(bare_tick(5))
    with pytest.raises(ValueError):
        bus.publish(bare_tick(5))
    with pytest.raises(ValueError):
        bus.publish(bare_tick(4))
    bus.close()
    with pytest.raises(trio.ClosedResourceError):
        bus.publish(bare_tick(6))


async def test_ten_thousand_subscribers_all_receive_a_tick(bare_tick):
    bus = TickBus()
    received = 0

    async def subscriber():
        nonlocal received
        tick = await bus.wait_tick_after(0)
        assert tick.seq == 1
        received += 1

    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            for _ in range(10_000):
                nursery.start_soon(subscriber)
            await trio.testing.wait_all_tasks_blocked()
            assert bus.waiting == 10_000
            bus.publish(bare_tick(1))
    assert received == 10_000 and bus.waiting == 0


async def test_wait_paced_returns_at_once_without_pacers(bare_tick):
    bus = TickBus()
    bus.publish(bare_tick(1))
    with trio.fail_after(1):
        await bus.wait_paced(1)


async def test_wait_paced_waits_for_every_pacer_to_take_the_tick(bare_tick):
    bus = TickBus()
    a, b = bus.pacer(), bus.pacer()
    bus.publish(bare_tick(1))
    paced = False

    async def feed():
        nonlocal paced
        await bus.wait_paced(1)
        paced = True

    with trio.fail_after(1):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(feed)
            await trio.testing.wait_all_tasks_blocked()
            a.done(1)
            await trio.testing.wait_all_tasks_blocked()
            assert not paced
            b.done(1)
    assert paced


async def test_a_closed_pacer_or_a_closed_bus_releases_the_feed(bare_tick):
    bus = TickBus()
    bus.publish(bare_tick(1))
    with trio.fail_after(1):
        with bus.pacer() as p:
            assert p.seq == 0  # a new pacer owes the latest tick
            async with trio.open_nursery() as nursery:
                nursery.start_soon(bus.wait_paced, 1)
                await trio.testing.wait_all_tasks_blocked()
                p.close()
        bus.pacer()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(bus.wait_paced, 1)
            await trio.testing.wait_all_tasks_blocked()
            bus.close()
    assert bus.pacers == 1


async def test_pacers_see_every_tick_while_others_conflate(bare_tick, autojump_clock):
    bus = TickBus()
    paced_seen: list[int] = []
    conflated_seen: list[int] = []

    async def recorder(task_status=trio.TASK_STATUS_IGNORED):
        with bus.pacer() as pacer:
            task_status.started()
            try:
                while True:
                    tick = await bus.wait_tick_after(pacer.seq)
                    paced_seen.append(tick.seq)
                    await trio.sleep(0.001)  # slower than the feed would go
                    pacer.done(tick.seq)
            except FeedEnded:
                pass

    async def watcher():
        seq = 0
        try:
            while True:
                tick = await bus.wait_tick_after(seq)
                conflated_seen.append(tick.seq)
                seq = tick.seq
                await trio.sleep(0.0035)
        except FeedEnded:
            pass

    async def feed_at_max_speed():
        for seq in range(1, 201):
            if seq > 1:
                await bus.wait_paced(seq - 1)
            bus.publish(bare_tick(seq))
        bus.close()

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            await nursery.start(recorder)
            nursery.start_soon(watcher)
            nursery.start_soon(feed_at_max_speed)
    assert paced_seen == list(range(1, 201))
    assert conflated_seen[-1] == 200 and len(conflated_seen) < 100
    assert conflated_seen == sorted(set(conflated_seen))
