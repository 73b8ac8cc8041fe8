"""Bot-session benchmarks (issue 7).

    ./scripts/bench bots [--sessions 1000,5000,10000] [--ticks 30] [--scenario resting,holding]

N bot sessions run the 30/20-delta put credit spread on one synthetic feed. Each is
started before 10:00 (memory per idle session is measured then: resident memory and
the Python objects tracemalloc counts, over the sessions' creation, the shared chain not
counted; every size runs in a process of its own), all enter at 10:00:00, then `--ticks` ticks follow and the benchmark measures,
per tick, the time from publishing it until every session has taken it and finished the
work it left, and the CPU per session-tick.

Scenarios:
- `resting`: the entries rest under re-pricing: slippage 0.50 keeps them from filling
  while the walk (a nudge every 5 s, 4 s apart at least, capped at 0.20) re-prices them,
  so every tick each session matches its resting order and steps its walk.
- `holding`: slippage 0.05 and the default re-pricing: the entries fill within a few
  ticks, then every session holds a spread and checks its exit, its drawdown guard and
  its marks every tick.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import statistics
import subprocess
import sys
import time
import tracemalloc
from decimal import Decimal

import trio

from _daemon import machine
from _runtime import PUT_SPREAD, rss_bytes, runtime
from odted.daemon import tune_gc
from odted.domain.reprice import OpeningReprice, RepricePolicy
from odted.domain.risk import RiskPolicy

SCENARIOS = {
    "resting": (Decimal("0.50"), RepricePolicy(opening=OpeningReprice(nudge_after_seconds=5))),
    "holding": (Decimal("0.05"), RepricePolicy()),
}


async def bench(n: int, ticks: int, scenario: str, traced: bool) -> str:
    slippage, reprice = SCENARIOS[scenario]
    async with trio.open_nursery() as nursery:
        async with runtime(nursery, slippage=slippage) as rt:
            users = await rt.users(n)
            bots = await rt.make_bots(users, PUT_SPREAD, risk=RiskPolicy(max_open_orders=50), reprice=reprice)
            tick = rt.publish_at(9, 59, 55)
            await rt.done(tick.seq)
            await rt.bots.start_session(users[0], bots[0])  # what is shared exists before measuring
            gc.collect()
            rss0 = rss_bytes()
            if traced:
                tracemalloc.start()
            t0 = time.perf_counter()
            limiter = trio.CapacityLimiter(64)

            async def start(u, b):
                async with limiter:
                    await rt.bots.start_session(u, b)

            async with trio.open_nursery() as n2:
                for u, b in zip(users[1:], bots[1:]):
                    n2.start_soon(start, u, b)
            setup = time.perf_counter() - t0
            tick = rt.step()  # waiting_for_data -> running (a commit per session)
            await rt.done(tick.seq)
            gc.collect()
            per_session = (rss_bytes() - rss0) / (n - 1)
            traced_per = ""
            if traced:
                traced_per = f", {tracemalloc.get_traced_memory()[0] / (n - 1) / 1024:.1f} KiB traced"
                tracemalloc.stop()
            tune_gc()  # as the daemon does once serving
            tick = rt.publish_at(10, 0, 0)  # every session places its entry
            t1 = time.perf_counter()
            await rt.done(tick.seq)
            entry_tick = time.perf_counter() - t1
            resting = sum(1 for a in rt.bots.bots() for o in a.orders.values() if o.is_pending)
            walls, cpus, fanouts = await rt.timed_ticks(ticks)
            orders = [o for a in rt.bots.bots() for o in a.orders.values()]
            replaced = sum(1 for o in orders if o.status == "canceled")
            filled = sum(1 for o in orders if o.status == "filled")
            still = sum(1 for o in orders if o.is_pending)
            nursery.cancel_scope.cancel()
    walls.sort()
    return (f"{scenario:>7} {n:>6} sessions: per tick median {statistics.median(walls) * 1000:.1f} ms, "
            f"p99 {walls[min(len(walls) - 1, int(len(walls) * 0.99))] * 1000:.1f} ms, "
            f"CPU per session-tick {statistics.median(cpus) / n * 1e6:.2f} µs (the synchronous pass over the "
            f"sessions {statistics.median(fanouts) / n * 1e6:.2f} µs); "
            f"{resting} entries at 10:00 ({entry_tick * 1000:.0f} ms), over {ticks} ticks {replaced} re-pricing "
            f"replacements, {filled} fills, {still} orders resting at the end; memory per idle session "
            f"{per_session / 1024:.1f} KiB resident{traced_per}; setup {setup:.1f} s")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", default="1000,5000,10000")
    ap.add_argument("--ticks", type=int, default=30)
    ap.add_argument("--scenario", default="resting,holding")
    ap.add_argument("--traced", action="store_true", help="also count Python objects with tracemalloc (slower setup)")
    ap.add_argument("--quiet-header", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if not args.quiet_header:
        print(f"# bots  {dt.date.today()}  {machine()}", flush=True)
    runs = [(sc, int(n)) for sc in args.scenario.split(",") for n in args.sessions.split(",") if n]
    if len(runs) == 1:
        print(trio.run(bench, runs[0][1], args.ticks, runs[0][0], args.traced), flush=True)
        return
    for scenario, n in runs:  # each in a fresh process, so its memory is its own
        cmd = [sys.executable, __file__, "--sessions", str(n), "--scenario", scenario, "--ticks", str(args.ticks),
               "--quiet-header"] + (["--traced"] if args.traced else [])
        subprocess.run(cmd, check=True)


if __name__ == "__main__":
    main()
