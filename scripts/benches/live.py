"""Live trading benchmarks (issue 6).

    ./scripts/bench live [--connections 64] [--seconds 10] [--sims 1000,5000] [--ticks 30]

1. Durable `POST /live/orders` at N concurrent clients, one user and one live simulation
   per client, against a daemon process: requests/s and p99, next to the bare ceiling
   measured in the same run (`POST /__echo`: the same body decoded and encoded, nothing
   else). Each client alternates a market `buy to open` and `sell to close` of one call,
   so every order fills and commits its order, transactions, events and idempotency
   record before the reply.
2. Tick cost: N live simulations, each with two resting orders, driven in-process by
   the real supervisor on a real (embedded) PostgreSQL: time from publishing a tick
   until every actor has taken it, and CPU per session-tick. `shared`: every session
   rests on the same two options (bots running one strategy: the combo memo prices each
   structure once per tick); `distinct`: two-leg verticals over 1,600 strike pairs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import statistics
import time
import urllib.request
from decimal import Decimal
from pathlib import Path

from _daemon import daemon, machine
from _loadgen import post_json, run_load
from _runtime import DAY, runtime

CALL = f"SPXW  {DAY:%y%m%d}C05950000"
FAR_PUT = f"SPXW  {DAY:%y%m%d}P05500000"
FAR_CALL = f"SPXW  {DAY:%y%m%d}C06400000"


def _post(url: str, body: dict, token: str | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json", **({"Authorization": token} if token else {})})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def register(base: str, state: Path, email: str) -> str:
    status, body = _post(f"{base}/auth/verify-email", {"email": email})
    assert status == 204, body
    code = None
    for path in sorted((state / "outbox").glob("*.eml"), key=lambda p: p.stat().st_mtime, reverse=True):
        text = path.read_text()
        if email in text:
            code = re.search(r"\b(\d{6})\b", text.split("\n\n", 1)[-1]).group(1)  # type: ignore[union-attr]
            break
    assert code, f"no code for {email}"
    status, body = _post(f"{base}/auth/register", {"email": email, "verification_code": code})
    assert status == 201, body
    return json.loads(body)["token"]


def bench_orders(connections: int, seconds: float) -> list[str]:
    env = {
        "ODTED_SERVER_ECHO_ROUTE": "true",
        "ODTED_FEED_SYNTHETIC_DATE": str(DAY),
        "ODTED_FEED_SYNTHETIC_START_TIME": "10:00:00",
        "ODTED_RATELIMIT_CLIENT_CAPACITY": "1000000",
        "ODTED_RATELIMIT_CLIENT_REFILL_PER_SECOND": "1000000",
        "ODTED_RATELIMIT_USER_CAPACITY": "1000000",
        "ODTED_RATELIMIT_USER_REFILL_PER_SECOND": "1000000",
    }
    with daemon(env=env) as d:
        host, port = d
        base = f"http://{host}:{port}"
        tokens = [register(base, d.state, f"bench{i}@example.com") for i in range(connections)]
        for t in tokens:
            status, body = _post(f"{base}/live", {"starting_capital": "1000000"}, t)
            assert status == 201, body

        def order(i: int) -> bytes:
            action = "buy to open" if (i % 1_000_000) % 2 == 0 else "sell to close"
            return json.dumps({"type": "market", "legs": [{"instrument": CALL, "quantity": "1", "action": action}]}).encode()

        def headers(i: int) -> dict[str, str]:
            return {"Authorization": tokens[i // 1_000_000], "Idempotency-Key": f"k{i}"}

        echo = post_json("/__echo", order, headers)
        place = post_json("/live/orders", order, headers)
        run_load(host, port, echo, connections=connections, duration=2)  # warm up
        bare = run_load(host, port, echo, connections=connections, duration=seconds)
        orders = run_load(host, port, place, connections=connections, duration=seconds)
    ratio = orders.rps / bare.rps if bare.rps else 0
    return [
        f"bare ceiling  POST /__echo,       {connections} clients: {bare.summary()}",
        f"durable       POST /live/orders,  {connections} clients: {orders.summary()}",
        f"orders / ceiling: {ratio:.0%} (goal >= 50%), p99 {orders.pct(99) * 1000:.0f} ms (goal <= 100 ms)",
    ]


async def _tick_cost(sims: int, ticks: int, shapes: str) -> str:
    import trio

    from odted.domain.orders import OrderLeg, OrderRequest
    from odted.runtime.live import PlaceOrder

    def orders_for(k: int) -> list[OrderRequest]:
        if shapes == "shared":  # every session rests on the same two options
            return [OrderRequest(type="limit", price=Decimal("0.05"), price_effect="debit",
                                 legs=(OrderLeg(inst, Decimal(1), "buy to open"),))
                    for inst in (FAR_PUT, FAR_CALL)]
        # distinct: two put debit verticals near the money per session, 1,600 strike pairs
        out = []
        for j in (0, 1):
            lo = 5800 + 5 * ((k + j * 7) % 40)  # near the money: worth far more than 0.05
            hi = lo + 5 * (1 + (k // 40 + j) % 40)
            out.append(OrderRequest(type="limit", price=Decimal("0.05"), price_effect="debit", legs=(
                OrderLeg(f"SPXW  {DAY:%y%m%d}P{hi * 1000:08d}", Decimal(1), "buy to open"),
                OrderLeg(f"SPXW  {DAY:%y%m%d}P{lo * 1000:08d}", Decimal(1), "sell to open"))))
        return out

    async with trio.open_nursery() as nursery:
        async with runtime(nursery, at=dt.time(10)) as rt:
            users = await rt.users(sims)
            actors = []
            limiter = trio.CapacityLimiter(64)

            async def open_one(k, u):
                async with limiter:
                    actor = await rt.live.open_simulation(u, starting_capital=Decimal(100000), description=None)
                    for req in orders_for(k):
                        await rt.live.ask(actor, PlaceOrder(req))
                    actors.append(actor)

            t0 = time.perf_counter()
            async with trio.open_nursery() as n:
                for k, u in enumerate(users):
                    n.start_soon(open_one, k, u)
            setup = time.perf_counter() - t0
            pending = sum(len(a.tickets) for a in actors)
            walls, cpus, _ = await rt.timed_ticks(ticks)
            nursery.cancel_scope.cancel()
    med_wall = statistics.median(walls)
    med_cpu = statistics.median(cpus)
    return (f"{sims:>6} sims, {pending} resting orders ({shapes} structures): tick to all done median "
            f"{med_wall * 1000:.1f} ms (p90 {sorted(walls)[int(len(walls) * 0.9)] * 1000:.1f} ms), CPU per "
            f"session-tick {med_cpu / sims * 1e6:.2f} µs (goal <= 10 µs); setup {setup:.1f} s")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--sims", default="1000,5000")
    ap.add_argument("--ticks", type=int, default=30)
    ap.add_argument("--skip-http", action="store_true")
    ap.add_argument("--shapes", default="shared,distinct", help="resting structures: shared, distinct or both")
    args = ap.parse_args()
    import trio

    print(f"# live  {dt.date.today()}  {machine()}")
    if not args.skip_http:
        for line in bench_orders(args.connections, args.seconds):
            print(line)
    for shapes in args.shapes.split(","):
        for n in (int(x) for x in args.sims.split(",") if x):
            print(trio.run(_tick_cost, n, args.ticks, shapes))


if __name__ == "__main__":
    main()
