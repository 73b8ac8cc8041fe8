"""Market-data speed (issue 4): ./scripts/bench market [--rounds N] [--subscribers N]

Measures, in one process:
- generating a full synthetic day (23,401 ticks x 241 strikes) with `SyntheticDay`;
- the same day through `SyntheticFeed` at speed "max" onto a `TickBus` with one pacer;
- publishing one tick to N tasks parked in `TickBus.wait_tick_after`: time from
  `publish` until the last of them has it (median and p90 over rounds), and the cost of
  the `publish` call itself;
- encoding one tick (msgspec JSON), the unit the WebSocket hub sends;
- the `/__ws` fan-out: the hub (`odted.api.ws`) behind QuartTrio and hypercorn in this
  process, N lean raw-socket WebSocket clients subscribed to `live_option_chain` in a
  child process (the other core); per round, the time from `publish` (the hub's channel task
  then encodes the frame once and queues it to every connection) until the last client
  has the whole frame, both read on the system's monotonic clock;
- the recorder: a full synthetic day at speed "max" through `Recorder` into
  `TickStore` on an embedded PostgreSQL (fsync off): ticks/s end to end, and the bytes
  `market_ticks` takes per tick (table, index, TOAST).
Prints a Markdown table for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import os
import statistics
import subprocess
import sys
import tempfile
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


def websocket_fan_out(args: argparse.Namespace) -> list[Row]:
    import hypercorn.config
    import hypercorn.trio
    from quart_trio import QuartTrio

    from odted.api import market_data, ws
    from odted.api.services import StaticTokens
    from odted.daemon import tune_gc

    n = args.clients
    day = SyntheticDay(SyntheticConfig(date=DAY, seed=1), default_calendar())
    ticks = day.block(3600, 3600 + args.ws_rounds + 1)

    async def main() -> tuple[list[float], int]:
        bus = TickBus()
        hub = ws.WebSocketHub(outbox_frames=256)
        services = _Namespace(ws_hub=hub, market=_Namespace(bus=bus), status={}, auth=StaticTokens(["bench"]))
        app = QuartTrio("bench")
        market_data.register_channels(hub, services)
        ws.register(app, services)
        cfg = hypercorn.config.Config()
        cfg.bind = ["127.0.0.1:0"]
        cfg.accesslog = None
        cfg.websocket_max_message_size = 64 * 1024
        took: list[float] = []
        async with trio.open_nursery() as nursery:
            binds = await nursery.start(lambda task_status: hypercorn.trio.serve(app, cfg, task_status=task_status))
            await nursery.start(hub.run)
            url = binds[0].replace("http://", "ws://") + "/__ws"
            child = await trio.lowlevel.open_process(
                [sys.executable, __file__, "--ws-clients-child", url, str(n)], stdout=subprocess.PIPE)
            lines = _lines(child.stdout)
            assert await lines.__anext__() == "ready"
            with trio.fail_after(60):
                while hub.channel("live_option_chain").subscribers < n:
                    await trio.sleep(0.05)
            tune_gc()  # as the daemon does once serving
            for tick in ticks:
                await trio.sleep(0.2)  # let both processes settle
                t0 = time.perf_counter()
                bus.publish(tick)
                last = float(await lines.__anext__())
                took.append(last - t0)
            child.kill()
            await child.wait()
            nursery.cancel_scope.cancel()
        return took[1:], len(day.tick_at(0).chain)

    took, strikes = trio.run(main)
    frame = market_data.chain_frame(ticks[0])
    q = statistics.quantiles(took, n=10)
    return [(
        f"one chain frame ({len(frame):,} bytes, {strikes} strikes) to {n} WebSocket clients, to the last client "
        "(goal <= 100 ms)",
        f"{statistics.median(took) * 1000:.0f} ms median",
        f"p90 {q[8] * 1000:.0f} ms, max {max(took) * 1000:.0f} ms over {len(took)} rounds; "
        "DESIGN.md bare stack 52-64 ms",
    )]


class _Namespace:
    def __init__(self, **kw: object) -> None:
        self.__dict__.update(kw)


async def _lines(stream):  # type: ignore[no-untyped-def]
    buf = b""
    while True:
        while b"\n" not in buf:
            data = await stream.receive_some(65536)
            if not data:
                return
            buf += data
        line, buf = buf.split(b"\n", 1)
        yield line.decode()


def ws_clients_child(url: str, n: int) -> None:
    """The client side of `websocket_fan_out`: N lean raw-socket WebSocket clients in one
    `selectors` loop (no frame parsing beyond the headers, so the time measured is the
    server's); per frame round, print the monotonic time the last of them had it."""
    import base64
    import selectors
    import socket
    import struct
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host, port = parts.hostname, parts.port

    def masked(text: bytes) -> bytes:
        assert len(text) < 126
        mask = os.urandom(4)
        return bytes((0x81, 0x80 | len(text))) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(text))

    socks = []
    for _ in range(n):
        s = socket.create_connection((host, port))
        key = base64.b64encode(os.urandom(16)).decode()
        s.sendall((f"GET {parts.path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                   f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += s.recv(4096)
        assert head.startswith(b"HTTP/1.1 101"), head[:100]
        s.sendall(masked(b'{"token": "bench"}') + masked(b'{"action": "subscribe", "channel": "live_option_chain"}'))
        s.setblocking(False)
        socks.append(s)
    print("ready", flush=True)

    sel = selectors.DefaultSelector()
    state = {}
    for s in socks:
        sel.register(s, selectors.EVENT_READ)
        state[s] = [bytearray(), 0, 0]  # header bytes, payload bytes left, frames done
    arrived: dict[int, int] = {}
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    while True:
        for key, _ in sel.select():
            s = key.fileobj
            got = s.recv_into(buf)
            if not got:
                return
            st = state[s]
            i = 0
            while i < got:
                if st[1]:
                    take = min(st[1], got - i)
                    st[1] -= take
                    i += take
                else:
                    st[0] += view[i:i + 1]
                    i += 1
                    h = st[0]
                    if len(h) < 2:
                        continue
                    size = h[1] & 0x7F
                    need = 2 + (2 if size == 126 else 8 if size == 127 else 0)
                    if len(h) < need:
                        continue
                    size = struct.unpack(">H", h[2:4])[0] if size == 126 else (
                        struct.unpack(">Q", h[2:10])[0] if size == 127 else size)
                    st[0] = bytearray()
                    st[1] = size
                if not st[1] and not st[0]:
                    at = time.perf_counter()
                    st[2] += 1
                    k = st[2]
                    arrived[k] = arrived.get(k, 0) + 1
                    if arrived[k] == n:
                        print(f"{at:.6f}", flush=True)


def recorder_day(args: argparse.Namespace) -> list[Row]:
    from odted.market.recorder import Recorder
    from odted.store import migrate
    from odted.store.db import ensure_database_exists, open_bridge, open_database
    from odted.store.embedded import EmbeddedPostgres
    from odted.store.ticks import TickStore

    calendar = default_calendar()
    feed = SyntheticFeed(SyntheticConfig(date=DAY, seed=1, speed="max", on_close="end"), calendar)

    async def main(pg: EmbeddedPostgres) -> tuple[float, int, int]:
        async with open_bridge() as loop:
            await ensure_database_exists(loop, pg.dsn("postgres"), "bench")
            async with open_database(pg.dsn("bench"), loop=loop, min_size=1, max_size=4) as db:
                await migrate.migrate(db)
                store = TickStore(db)
                recorder = Recorder(store.append, calendar)
                bus = TickBus()
                t = time.perf_counter()
                async with trio.open_nursery() as nursery:
                    await nursery.start(recorder.run, bus)
                    await feed.run(bus)
                took = time.perf_counter() - t
                n, size = await store.storage()
                return took, n, size

    with tempfile.TemporaryDirectory(prefix="odted-bench-") as tmp:
        pg = EmbeddedPostgres(Path(tmp) / "pg", durable=False)
        pg.start()
        try:
            took, n, size = trio.run(main, pg)
        finally:
            pg.stop()
    return [
        (
            'full day via SyntheticFeed at speed "max" with the recorder into PostgreSQL',
            f"{n / took:,.0f} ticks/s",
            f"{took:.1f} s for all {n:,} ticks (generation, packing, batched inserts)",
        ),
        (
            "recorder bytes per tick (241 strikes)",
            f"{size / n:,.0f} bytes",
            f"`market_ticks` with its index: {size / 2**20:.1f} MiB for the day",
        ),
    ]


MEASUREMENTS: list[Callable[[argparse.Namespace], list[Row]]] = [
    full_day_generation,
    full_day_through_the_bus,
    bus_fan_out,
    tick_encoding,
    websocket_fan_out,
    recorder_day,
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=21, help="fan-out rounds (default 21)")
    parser.add_argument("--subscribers", type=int, default=10_000, help="bus subscribers (default 10,000)")
    parser.add_argument("--clients", type=int, default=500, help="WebSocket clients (default 500)")
    parser.add_argument("--ws-rounds", type=int, default=21, help="WebSocket fan-out rounds (default 21)")
    parser.add_argument("--only", help="run only the measurements whose function name contains this")
    parser.add_argument("--ws-clients-child", nargs=2, metavar=("URL", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.ws_clients_child:
        ws_clients_child(args.ws_clients_child[0], int(args.ws_clients_child[1]))
        return
    rows: list[Row] = []
    for measure in MEASUREMENTS:
        if args.only and args.only not in measure.__name__:
            continue
        rows += measure(args)
        print(f"  {rows[-1][0]}: {rows[-1][1]}", file=sys.stderr)
    print(f"\n{machine()}, {dt.date.today().isoformat()}\n")
    print("| measurement | result | note |")
    print("|---|---|---|")
    for name, result, note in rows:
        print(f"| {name} | {result} | {note} |")


if __name__ == "__main__":
    main()
