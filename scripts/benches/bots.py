"""Bot-session benchmarks (issue 7).

    ./scripts/bench bots [--sessions 1000,5000,10000] [--ticks 30]

N bot sessions, each running the 30/20-delta put credit spread, enter at 10:00 and rest
their entries at the mid while re-pricing walks them; the benchmark then publishes
`--ticks` ticks of the synthetic day and measures, per tick, the time from publishing
until every session has taken it and finished the work it left (re-pricing
replacements, fills), the CPU per session-tick, and the memory per session (RSS growth
over the sessions' creation, idle, before the entry; the shared chain is not counted).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import statistics
import time

import trio

from _daemon import machine
from _runtime import PUT_SPREAD, rss_bytes, runtime
from odted.domain.risk import RiskPolicy


async def bench(n: int, ticks: int) -> str:
    async with trio.open_nursery() as nursery:
        async with runtime(nursery) as rt:
            users = await rt.users(n)
            bots = await rt.make_bots(users, PUT_SPREAD, risk=RiskPolicy(max_open_orders=50))
            tick = rt.publish_at(9, 59, 55)
            await rt.done(tick.seq)
            gc.collect()
            rss0 = rss_bytes()
            t0 = time.perf_counter()
            limiter = trio.CapacityLimiter(64)

            async def start(u, b):
                async with limiter:
                    await rt.bots.start_session(u, b)

            async with trio.open_nursery() as n2:
                for u, b in zip(users, bots):
                    n2.start_soon(start, u, b)
            setup = time.perf_counter() - t0
            tick = rt.step()  # waiting_for_data -> running (a commit per session)
            await rt.done(tick.seq)
            gc.collect()
            per_session = (rss_bytes() - rss0) / n
            tick = rt.publish_at(10, 0, 0)  # every session places its entry
            t1 = time.perf_counter()
            await rt.done(tick.seq)
            entry_tick = time.perf_counter() - t1
            resting = sum(1 for a in rt.bots.bots() for o in a.orders.values() if o.is_pending)
            gc.collect()
            gc.freeze()
            walls, cpus = [], []
            for _ in range(ticks):
                c0, w0 = time.process_time(), time.perf_counter()
                tick = rt.step()
                await rt.done(tick.seq)
                walls.append(time.perf_counter() - w0)
                cpus.append(time.process_time() - c0)
            gc.unfreeze()
            replaced = sum(1 for a in rt.bots.bots() for o in a.orders.values() if o.status == "canceled")
            filled = sum(1 for a in rt.bots.bots() for o in a.orders.values() if o.status == "filled")
            nursery.cancel_scope.cancel()
    walls.sort()
    return (f"{n:>6} sessions ({resting} resting entries at 10:00): per tick median {statistics.median(walls) * 1000:.1f} ms, "
            f"p99 {walls[min(len(walls) - 1, int(len(walls) * 0.99))] * 1000:.1f} ms, "
            f"CPU per session-tick {statistics.median(cpus) / n * 1e6:.2f} µs; over {ticks} ticks "
            f"{replaced} re-pricing replacements, {filled} fills; the 10:00 entry tick {entry_tick * 1000:.0f} ms; "
            f"memory {per_session / 1024:.1f} KiB per idle session; setup {setup:.1f} s")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", default="1000,5000,10000")
    ap.add_argument("--ticks", type=int, default=30)
    args = ap.parse_args()
    print(f"# bots  {dt.date.today()}  {machine()}")
    for n in (int(x) for x in args.sessions.split(",") if x):
        print(trio.run(bench, n, args.ticks))


if __name__ == "__main__":
    main()
