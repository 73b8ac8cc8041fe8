"""Soak: a synthetic day at `speed = "max"` with many bots and manual simulations.

    ./scripts/soak [--bots 1000] [--sims 100] [--minutes 390] [--json]

The real synthetic feed publishes the day as fast as the actors keep up (they pace it);
bots run the 30/20-delta put credit spread (entry 10:00, exit at target or 15:55) and
each manual simulation rests two orders and trades a little every half hour. Every 10
simulated minutes the run samples RSS, open file descriptors, living trio tasks and
database connections. It reports the samples and the RSS slope (KiB per simulated hour,
after the first hour's warm-up). `--json` prints one JSON document for tests.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import sys
import time
from decimal import Decimal

import trio

sys.path.insert(0, os.path.dirname(__file__))
from _runtime import DAY, PUT_SPREAD, rss_bytes, runtime  # noqa: E402
from odted.domain.orders import OrderLeg, OrderRequest  # noqa: E402
from odted.market.bus import FeedEnded  # noqa: E402
from odted.market.synthetic import SyntheticConfig, SyntheticFeed  # noqa: E402
from odted.market.calendar import default_calendar  # noqa: E402
from odted.runtime.live import PlaceOrder  # noqa: E402


def osi(strike: int, right: str) -> str:
    return f"SPXW  {DAY:%y%m%d}{right}{strike * 1000:08d}"


async def soak(n_bots: int, n_sims: int, minutes: int) -> dict:
    samples: list[dict] = []
    async with trio.open_nursery() as nursery:
        async with runtime(nursery) as rt:
            users = await rt.users(n_bots + n_sims)
            bots = await rt.make_bots(users[:n_bots], PUT_SPREAD)
            limiter = trio.CapacityLimiter(32)
            sims = []

            async def start_bot(u, b):
                async with limiter:
                    await rt.bots.start_session(u, b)

            async def start_sim(u):
                async with limiter:
                    actor = await rt.live.open_simulation(u, starting_capital=Decimal(100000), description="soak")
                    for k in (5800, 6100):
                        req = OrderRequest(type="limit", price=Decimal("0.05"), price_effect="debit",
                                           legs=(OrderLeg(osi(k, "P" if k < 5950 else "C"), Decimal(1), "buy to open"),))
                        await rt.live.ask(actor, PlaceOrder(req))
                    sims.append(actor)

            async with trio.open_nursery() as n:
                for u, b in zip(users, bots):
                    n.start_soon(start_bot, u, b)
                for u in users[n_bots:]:
                    n.start_soon(start_sim, u)

            async def trade_now_and_then():
                """Manual sims buy and sell a call every 30 simulated minutes."""
                last = None
                while True:
                    try:
                        tick = await rt.bus.wait_tick_after(rt.bus.latest_seq)
                    except FeedEnded:
                        return
                    slot = (tick.ts.hour, tick.ts.minute // 30)
                    if slot == last:
                        continue
                    last = slot
                    for i, actor in enumerate(sims):
                        if actor.ended:
                            continue
                        action = "buy to open" if (slot[1] + i) % 2 == 0 or not actor.book.has_positions else "sell to close"
                        req = OrderRequest(type="market", legs=(OrderLeg(osi(5950, "C"), Decimal(1), action),))
                        try:
                            await rt.live.ask(actor, PlaceOrder(req))
                        except Exception:
                            pass

            nursery.start_soon(trade_now_and_then)
            gc.collect()
            # the feed picks up where the stepped setup left off, at max speed
            cfg = SyntheticConfig(seed=1, date=DAY, start_time=dt.time(9, 30), speed="max", on_close="end")
            feed = SyntheticFeed(cfg, default_calendar())
            t0 = time.perf_counter()
            end_ts = rt.day.session.open_utc + dt.timedelta(minutes=minutes)
            next_sample = rt.day.session.open_utc

            async def sampler():
                nonlocal next_sample
                seen = 0
                while True:
                    try:
                        tick = await rt.bus.wait_tick_after(seen)
                    except FeedEnded:
                        return
                    seen = tick.seq
                    if tick.ts >= next_sample:
                        # between ticks: an actor has a task only while it drains a tick's work
                        await rt.done(tick.seq)
                        sample = {
                            "market_time": tick.ts.isoformat(), "wall_s": round(time.perf_counter() - t0, 1),
                            "rss_kib": rss_bytes() // 1024, "fds": len(os.listdir("/proc/self/fd")),
                            "tasks": trio.lowlevel.current_statistics().tasks_living,
                            "actors": len(rt.live.supervisor),
                        }
                        sample["db_connections"] = await rt.db.fetchval(
                            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
                        samples.append(sample)
                        print("sample", json.dumps(samples[-1]), file=sys.stderr, flush=True)  # progress
                        next_sample = tick.ts + dt.timedelta(minutes=10)
                    if tick.ts >= end_ts or tick.closing:
                        await rt.done(tick.seq)  # the close settles before the run ends
                        return

            async with trio.open_nursery() as run:
                run.start_soon(feed.run, rt.bus)
                await sampler()
                run.cancel_scope.cancel()
            wall = time.perf_counter() - t0
            nursery.cancel_scope.cancel()
    warm = [s for s in samples if s["market_time"] >= (rt.day.session.open_utc + dt.timedelta(hours=1)).isoformat()]
    slope = None
    if len(warm) >= 3:
        xs = [i / 6 for i in range(len(warm))]  # hours (a sample per 10 minutes)
        ys = [s["rss_kib"] for s in warm]
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    return {"bots": n_bots, "sims": n_sims, "minutes": minutes, "wall_seconds": round(wall, 1),
            "samples": samples, "rss_slope_kib_per_hour": slope}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bots", type=int, default=1000)
    ap.add_argument("--sims", type=int, default=100)
    ap.add_argument("--minutes", type=int, default=390)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    result = trio.run(soak, args.bots, args.sims, args.minutes)
    if args.json:
        print(json.dumps(result))
        return
    from _daemon import machine

    print(f"# soak  {dt.date.today()}  {machine()}")
    print(f"{args.bots} bots, {args.sims} manual sims, {args.minutes} simulated minutes in {result['wall_seconds']} s")
    print("market time           wall s   RSS KiB   fds  tasks  db conns  actors")
    for s in result["samples"]:
        print(f"{s['market_time'][:19]}  {s['wall_s']:>7}  {s['rss_kib']:>8}  {s['fds']:>4}  {s['tasks']:>5}  "
              f"{s['db_connections']:>8}  {s['actors']:>6}")
    slope = result["rss_slope_kib_per_hour"]
    print(f"RSS slope after the first hour: {slope:.0f} KiB per simulated hour" if slope is not None else "too short for a slope")


if __name__ == "__main__":
    main()
