"""The actor machinery: mailbox, ask deadlines, conflated ticks, supervision."""

from datetime import datetime, timedelta, timezone
from decimal import Decimal

from functools import partial
from uuid import uuid4

import pytest
import trio
import trio.testing

from odted.domain.chain import OptionQuote, StrikeQuotes, Tick
from odted.domain.fees import FeeSchedule
from odted.market.bus import TickBus
from odted.runtime.actor import Actor, ActorBusy, ActorStopped
from odted.runtime.errors import Refusal
from odted.runtime.supervisor import Supervisor

T0 = datetime(2025, 1, 15, 14, 30, tzinfo=timezone.utc)


def tick(seq: int) -> Tick:
    q = OptionQuote(Decimal("1.00"), Decimal("1.10"), 0.5)
    return Tick.build(seq, T0 + timedelta(seconds=seq), Decimal("5950"), Decimal("15"), Decimal("0.005"),
                      [StrikeQuotes(5950, q, q)])


class Recorder(Actor):
    loads = 0

    def __init__(self, key="a", *, gate: trio.Event | None = None, crash_on: str | None = None,
                 tick_work: bool = False):
        super().__init__(key)
        self.handled: list[str] = []
        self.ticks: list[int] = []
        self.worked: list[int] = []
        self.gate = gate
        self.crash_on = crash_on
        self.want_tick_work = tick_work

    async def load(self):
        type(self).loads += 1

    async def handle(self, message):
        if message == "refuse":
            raise Refusal.invalid("nope", "refused")
        if message == self.crash_on:
            raise RuntimeError("boom")
        if self.gate is not None:
            await self.gate.wait()
        self.handled.append(message)
        return f"done {message}"

    def on_tick(self, t):
        self.ticks.append(t.seq)
        if self.want_tick_work:
            async def work():
                await trio.sleep(0.01)
                self.worked.append(t.seq)
            return work
        return None


async def test_ask_returns_the_reply_and_messages_run_one_at_a_time_in_order(nursery):
    a = Recorder()
    await nursery.start(a.run)
    replies = []

    async def ask(m):
        replies.append(await a.ask(m, timeout=1))

    async with trio.open_nursery() as n:
        for m in "abc":
            n.start_soon(ask, m)
            await trio.testing.wait_all_tasks_blocked()
    assert a.handled == ["a", "b", "c"]
    assert sorted(replies) == ["done a", "done b", "done c"]


async def test_a_refusal_is_an_answer_and_the_actor_keeps_running(nursery):
    a = Recorder()
    await nursery.start(a.run)
    with pytest.raises(Refusal):
        await a.ask("refuse", timeout=1)
    assert await a.ask("x", timeout=1) == "done x"


async def test_a_busy_actor_times_out_and_the_abandoned_message_never_runs(nursery, autojump_clock):
    gate = trio.Event()
    a = Recorder(gate=gate)
    await nursery.start(a.run)
    nursery.start_soon(partial(a.ask, "first", timeout=100))
    await trio.testing.wait_all_tasks_blocked()
    with pytest.raises(ActorBusy):
        await a.ask("second", timeout=0.5)
    gate.set()
    await trio.testing.wait_all_tasks_blocked()
    assert a.handled == ["first"]


async def test_a_full_mailbox_is_busy_at_once(nursery):
    gate = trio.Event()
    a = Recorder(gate=gate)
    a.mailbox_size = 1
    a.__init__(gate=gate)
    await nursery.start(a.run)
    nursery.start_soon(partial(a.ask, "running", timeout=100))
    await trio.testing.wait_all_tasks_blocked()
    nursery.start_soon(partial(a.ask, "queued", timeout=100))
    await trio.testing.wait_all_tasks_blocked()
    with pytest.raises(ActorBusy):
        await a.ask("overflow", timeout=100)
    gate.set()


async def test_an_idle_actor_takes_ticks_synchronously_and_a_busy_one_only_the_newest(nursery):
    gate = trio.Event()
    a = Recorder(gate=gate)
    await nursery.start(a.run)
    assert a.offer_tick(tick(1)) is False
    assert a.ticks == [1]
    nursery.start_soon(partial(a.ask, "slow", timeout=100))
    await trio.testing.wait_all_tasks_blocked()
    for s in (2, 3, 4):
        a.offer_tick(tick(s))
    assert a.ticks == [1]
    gate.set()
    await trio.testing.wait_all_tasks_blocked()
    assert a.ticks == [1, 4]
    a.offer_tick(tick(3))
    assert a.ticks == [1, 4], "an older tick is never processed after a newer one"


async def test_supervisor_rebuilds_a_crashed_actor_then_gives_up_after_too_many(nursery, autojump_clock):
    crashes, gave_up = [], []

    async def on_crash(key, exc, n):
        crashes.append((key, n))

    async def on_give_up(key, exc, n):
        gave_up.append(key)

    sup = Supervisor(TickBus(), max_restarts=2, on_crash=on_crash, on_give_up=on_give_up)
    await nursery.start(sup.run)
    Recorder.loads = 0
    a = await sup.start("s1", lambda: Recorder("s1", crash_on="crash"))
    with pytest.raises(ActorStopped):
        await a.ask("crash", timeout=1)
    await trio.sleep(1)
    b = sup.get("s1")
    assert b is not None and b is not a and Recorder.loads == 2
    assert await b.ask("ok", timeout=1) == "done ok"
    for _ in range(2):
        with pytest.raises(ActorStopped):
            await sup.get("s1").ask("crash", timeout=1)
        await trio.sleep(30)
    assert [n for _, n in crashes] == [1, 2, 3]
    assert gave_up == ["s1"]
    assert sup.get("s1") is None


async def test_engine_feeds_every_actor_and_waits_for_tick_work_at_max_speed(nursery):
    bus = TickBus()
    bus.set_speed("max")
    sup = Supervisor(bus)
    await nursery.start(sup.run)
    actors = [await sup.start(f"k{i}", lambda i=i: Recorder(f"k{i}", tick_work=True)) for i in range(3)]
    for s in range(1, 6):
        bus.publish(tick(s))
        with trio.fail_after(5):
            await bus.wait_paced(s)
        assert all(a.worked[-1] == s for a in actors), "the tick's work is done before the next tick"
    assert all(a.ticks == [1, 2, 3, 4, 5] for a in actors)


async def test_idle_actors_hold_no_task_and_work_is_drained_in_a_task_that_ends(nursery):
    sup = Supervisor(TickBus())
    await nursery.start(sup.run)
    await trio.testing.wait_all_tasks_blocked()
    before = trio.lowlevel.current_statistics().tasks_living
    actors = [await sup.start(f"k{i}", lambda i=i: Recorder(f"k{i}")) for i in range(50)]
    await trio.testing.wait_all_tasks_blocked()
    assert trio.lowlevel.current_statistics().tasks_living == before, "an idle actor has no task"
    gate = trio.Event()
    actors[0].gate = gate
    nursery.start_soon(partial(actors[0].ask, "slow", timeout=10))
    await trio.testing.wait_all_tasks_blocked()
    assert trio.lowlevel.current_statistics().tasks_living == before + 2  # the asker and one drain
    gate.set()
    await trio.testing.wait_all_tasks_blocked()
    assert actors[0].handled == ["slow"]
    assert trio.lowlevel.current_statistics().tasks_living == before, "the drain ended with its work"
    assert await actors[1].ask("x", timeout=1) == "done x"


async def test_stopping_the_supervisor_fails_what_its_actors_had_queued(autojump_clock):
    gate = trio.Event()
    results = []
    async with trio.open_nursery() as outer:
        sup = Supervisor(TickBus())
        with trio.CancelScope() as scope:
            async with trio.open_nursery() as n:
                await n.start(sup.run)
                a = await sup.start("k", lambda: Recorder("k", gate=gate))

                async def ask(m):
                    try:
                        results.append(await a.ask(m, timeout=100))
                    except ActorStopped:
                        results.append("stopped")

                outer.start_soon(ask, "first")
                await trio.testing.wait_all_tasks_blocked()
                outer.start_soon(ask, "queued")
                await trio.testing.wait_all_tasks_blocked()
                scope.cancel()
        await trio.testing.wait_all_tasks_blocked()
    assert results == ["stopped", "stopped"]
    assert not a.running


async def test_rebuilding_while_the_database_is_down_waits_without_using_up_restarts(nursery, autojump_clock):
    from odted.store.db import DatabaseUnavailable

    down = True
    gave_up = []

    class Flaky(Recorder):
        async def load(self):
            if Recorder.loads and down:  # the first load works; rebuilds fail until it is back
                Recorder.loads += 1
                raise DatabaseUnavailable("down")
            Recorder.loads += 1

    async def on_give_up(key, exc, n):
        gave_up.append(key)

    sup = Supervisor(TickBus(), max_restarts=2, on_give_up=on_give_up)
    await nursery.start(sup.run)
    Recorder.loads = 0
    a = await sup.start("s", lambda: Flaky("s", crash_on="crash"))
    with pytest.raises(ActorStopped):
        await a.ask("crash", timeout=1)
    await trio.sleep(60)  # 60 s of failing reloads: far more than max_restarts
    assert Recorder.loads > 10 and gave_up == [] and sup.get("s") is None
    down = False
    await trio.sleep(2)
    b = sup.get("s")
    assert b is not None and await b.ask("ok", timeout=1) == "done ok"


class Sleeper(Recorder):
    """Leaves a watch after every full tick: quiet until `until` (no price bands)."""

    def __init__(self, watches, until):
        super().__init__()
        self.watches = watches
        self.until = until
        self.quiet: list[int] = []
        self.woken: list[tuple[int, object]] = []

    def on_tick(self, t):
        super().on_tick(t)
        self.watch = self.watches.make(self.until, [])

    def on_quiet_tick(self, t):
        self.quiet.append(t.seq)

    def on_woken(self, t, watch):
        self.woken.append((t.seq, watch))
        return self.on_tick(t)


async def test_a_watch_turns_ticks_into_notes_until_time_a_message_or_new_settings_end_it(nursery):
    from odted.runtime.live import ComboCache
    from odted.runtime.settings import UserSettingsCache
    from odted.runtime.watch import Watches

    async def no_settings(uid):
        return None

    settings = UserSettingsCache(no_settings, default_slippage=Decimal("0.05"))
    watches = Watches(ComboCache(), settings)
    a = Sleeper(watches, until=tick(6).ts)
    other = Sleeper(watches, until=tick(6).ts)
    await nursery.start(a.run)
    await nursery.start(other.run)
    for s in (1, 2, 3):
        a.offer_tick(tick(s))
        other.offer_tick(tick(s))
    assert (a.ticks, a.quiet) == ([1], [2, 3])
    assert a.watch is other.watch, "equal watches are one object"

    await a.ask("x", timeout=1)  # a message may change what the watch was made of
    assert a.watch is None
    a.offer_tick(tick(4))
    assert a.ticks == [1, 4] and a.woken == []

    a.offer_tick(tick(5))
    assert a.quiet == [2, 3, 5]
    watch = a.watch
    a.offer_tick(tick(6))  # the watch's time has come
    assert a.ticks == [1, 4, 6] and a.woken == [(6, watch)]

    a.until = tick(100).ts
    a.offer_tick(tick(7))
    settings.put(uuid4(), FeeSchedule.default(), Decimal("0.10"))  # anyone's new settings end every watch
    a.offer_tick(tick(8))
    assert a.ticks == [1, 4, 6, 7, 8]

    closing = Tick.build(9, tick(9).ts, Decimal("5950"), Decimal("15"), Decimal("0.005"), [], closing=True)
    a.offer_tick(closing)
    assert a.ticks[-1] == 9, "the closing tick is always taken in full"


async def test_a_watch_no_actor_holds_is_forgotten():
    import gc

    from odted.runtime.live import ComboCache
    from odted.runtime.settings import UserSettingsCache
    from odted.runtime.watch import Watches

    async def no_settings(uid):
        return None

    watches = Watches(ComboCache(), UserSettingsCache(no_settings, default_slippage=Decimal("0.05")))
    held = [watches.make(tick(s).ts, []) for s in range(100)]
    assert len(watches) == 100 and watches.make(tick(5).ts, []) is held[5]
    del held[10:]
    gc.collect()
    assert len(watches) == 10
