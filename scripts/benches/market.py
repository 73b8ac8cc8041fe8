"""Market-data speed (issue 4): ./scripts/bench market [--rounds N] [--subscribers N]

Measures, in one process:
- generating a full synthetic day (23,401 ticks x 241 strikes) with `SyntheticDay`;
- the same day through `SyntheticFeed` at speed "max" onto a `TickBus` with one pacer;
- publishing one tick to N tasks parked in `TickBus.wait_tick_after`: time from
  `publish` until the last of them has it (median and p90 over rounds), and the cost of
  the `publish` call itself;
- encoding one tick (msgspec JSON), the unit the WebSocket hub sends.
Rows for measurements that need parts not built yet (WebSocket fan-out to 500 clients,
recorder bytes per tick) are listed as pending; add each as a function in MEASUREMENTS.
Prints a Markdown table for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import statistics
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import msgspec
import trio
import trio.testing

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from _daemon import machine  # noqa: E402  (scripts/benches helper)

from odted.domain.chain import Tick  # noqa: E402
from odted.market import FeedEnded, SyntheticConfig, SyntheticDay, SyntheticFeed, TickBus, default_calendar  # noqa: E402

DAY = dt.date(2025, 1, 15)
Row = tuple[str, str, str]  # measurement, result, note


def full_day_generation(args: argparse.Namespace) -> list[Row]:
    t = time.perf_counter()
    calendar = default_calendar()
    load = time.perf_counter() - t
    day = SyntheticDay(SyntheticConfig(date=DAY, seed=1, speed="max"), calendar)
    t = time.perf_counter()
    n = 0
    for _ in day.ticks():
        n += 1
    took = time.perf_counter() - t
    return [
        ("calendar load (XNYS 2000-2040, with imports)", f"{load * 1000:.0f} ms", "once per process"),
        (
            f"generate a full day ({n:,} ticks x {len(day.strikes)} strikes)",
            f"{n / took:,.0f} ticks/s",
            f"{took:.2f} s per day, {took / n * 1e6:.0f} µs per tick",
        ),
    ]


def full_day_through_the_bus(args: argparse.Namespace) -> list[Row]:
    calendar = default_calendar()
    feed = SyntheticFeed(SyntheticConfig(date=DAY, seed=1, speed="max", on_close="end"), calendar)
    seen = 0

    async def main() -> float:
        nonlocal seen
        bus = TickBus()

        async def pacer(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            nonlocal seen
            with bus.pacer() as p:
                task_status.started()
                try:
                    while True:
                        tick = await bus.wait_tick_after(p.seq)
                        seen += 1
                        p.done(tick.seq)
                except FeedEnded:
                    pass

        async with trio.open_nursery() as nursery:
            await nursery.start(pacer)
            t = time.perf_counter()
            await feed.run(bus)
            return time.perf_counter() - t

    took = trio.run(main)
    return [
        (
            'full day via SyntheticFeed at speed "max", one pacer',
            f"{seen / took:,.0f} ticks/s",
            f"{took:.2f} s; the pacer saw all {seen:,} ticks",
        )
    ]


def bus_fan_out(args: argparse.Namespace) -> list[Row]:
    rows = _fan_out(args, tuned_gc=False)
    thresholds = gc.get_threshold()
    try:
        return rows + _fan_out(args, tuned_gc=True)
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


def _fan_out(args: argparse.Namespace, *, tuned_gc: bool) -> list[Row]:
    n = args.subscribers
    day = SyntheticDay(SyntheticConfig(date=DAY, seed=1), default_calendar())
    ticks = day.block(0, args.rounds + 1)

    async def main() -> tuple[list[float], list[float]]:
        bus = TickBus()
        arrived = 0
        all_in = trio.Event()
        last_at = 0.0

        async def subscriber() -> None:
            nonlocal arrived, all_in, last_at
            seq = 0
            while True:
                tick = await bus.wait_tick_after(seq)
                seq = tick.seq
                arrived += 1
                if arrived == n:
                    last_at = time.perf_counter()
                    all_in.set()

        fan_out: list[float] = []
        publish: list[float] = []
        async with trio.open_nursery() as nursery:
            for _ in range(n):
                nursery.start_soon(subscriber)
            await trio.testing.wait_all_tasks_blocked()
            if tuned_gc:
                gc.collect()
                gc.freeze()
                gc.set_threshold(100_000, 50, 1000)
            for tick in ticks:
                await trio.testing.wait_all_tasks_blocked()
                assert bus.waiting == n
                arrived = 0
                all_in = trio.Event()
                t = time.perf_counter()
                bus.publish(tick)
                publish.append(time.perf_counter() - t)
                await all_in.wait()
                fan_out.append(last_at - t)
            nursery.cancel_scope.cancel()
        return fan_out[1:], publish[1:]  # the first round warms up

    fan_out, publish = trio.run(main)
    q = statistics.quantiles(fan_out, n=10)
    gc_note = "gc.freeze() + gc.set_threshold(100_000, 50, 1000)" if tuned_gc else "default GC"
    return [
        (
            f"one tick to {n:,} bus subscribers (wait_tick_after), {gc_note}",
            f"{statistics.median(fan_out) * 1000:.1f} ms median",
            f"p90 {q[8] * 1000:.1f} ms over {len(fan_out)} rounds; DESIGN.md floor 42-68 ms",
        ),
        (
            f"  of which the publish() call (unpark {n:,}), {gc_note}",
            f"{statistics.median(publish) * 1000:.2f} ms median",
            f"{statistics.median(publish) / n * 1e9:.0f} ns per parked task",
        ),
    ]


def tick_encoding(args: argparse.Namespace) -> list[Row]:
    tick: Tick = SyntheticDay(SyntheticConfig(date=DAY, seed=1), default_calendar()).tick_at(3600)
    encoder = msgspec.json.Encoder(decimal_format="number")
    enc = msgspec.json.Encoder()
    rounds = 2000
    t = time.perf_counter()
    for _ in range(rounds):
        data = enc.encode(tick)
    took = (time.perf_counter() - t) / rounds
    as_numbers = encoder.encode(tick)
    return [
        (
            "encode one tick, msgspec JSON (Decimals as strings)",
            f"{took * 1e6:.0f} µs",
            f"{len(data):,} bytes ({len(as_numbers):,} with decimal_format='number')",
        )
    ]


def pending(what: str) -> Callable[[argparse.Namespace], list[Row]]:
    def measure(args: argparse.Namespace) -> list[Row]:
        return [(what, "pending", "not built yet")]

    return measure


MEASUREMENTS: list[Callable[[argparse.Namespace], list[Row]]] = [
    full_day_generation,
    full_day_through_the_bus,
    bus_fan_out,
    tick_encoding,
    pending("one chain frame to 500 WebSocket clients, to the last client (goal <= 100 ms)"),
    pending("recorder bytes per tick"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=21, help="fan-out rounds (default 21)")
    parser.add_argument("--subscribers", type=int, default=10_000, help="bus subscribers (default 10,000)")
    args = parser.parse_args()
    rows: list[Row] = []
    for measure in MEASUREMENTS:
        rows += measure(args)
        print(f"  {rows[-1][0]}: {rows[-1][1]}", file=sys.stderr)
    print(f"\n{machine()}, {dt.date.today().isoformat()}\n")
    print("| measurement | result | note |")
    print("|---|---|---|")
    for name, result, note in rows:
        print(f"| {name} | {result} | {note} |")


if __name__ == "__main__":
    main()
