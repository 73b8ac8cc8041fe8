"""An in-process odted runtime for benchmarks: embedded PostgreSQL (fsync off), the live
and bot services, and a tick bus the benchmark steps through a synthetic day."""

from __future__ import annotations

import ctypes
import datetime as dt
import gc
import os
import tempfile
import time
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, AsyncIterator

import trio

from odted.market.bus import TickBus
from odted.market.calendar import default_calendar, ny_datetime
from odted.market.clock import MarketClock
from odted.market.synthetic import SyntheticConfig, SyntheticDay
from odted.runtime.bots import BotService
from odted.runtime.service import LiveService
from odted.runtime.settings import UserSettingsCache
from odted.store import migrate
from odted.store.db import ensure_database_exists, open_bridge, open_database
from odted.store.embedded import EmbeddedPostgres

DAY = dt.date(2025, 1, 15)


@dataclass
class Runtime:
    db: Any
    bus: TickBus
    live: LiveService
    bots: BotService
    day: SyntheticDay
    index: int = 0

    def publish_at(self, hh: int, mm: int, ss: int = 0):
        ts = ny_datetime(self.day.date, dt.time(hh, mm, ss)).astimezone(dt.timezone.utc)
        self.index = int((ts - self.day.session.open_utc).total_seconds())
        tick = self.day.tick_at(self.index)
        self.bus.publish(tick)
        return tick

    def step(self):
        self.index += 1
        tick = self.day.tick_at(self.index)
        self.bus.publish(tick)
        return tick

    async def done(self, seq: int) -> None:
        await self.live.supervisor.wait_tick_done(seq)

    async def users(self, n: int) -> list[uuid.UUID]:
        ids = [uuid.uuid4() for _ in range(n)]
        await self.db.run(lambda conn: conn.executemany(
            "INSERT INTO users (id, email, created_at) VALUES ($1, $2, now())", [(u, f"{u.hex}@example.com") for u in ids]))
        return ids


    async def make_bots(self, users: list[uuid.UUID], config: dict, *, risk: Any = None, reprice: Any = None) -> list[uuid.UUID]:
        """One bot per user, all pinned to the strategy `config` (made straight in the database)."""
        import msgspec

        from odted.domain.reprice import RepricePolicy
        from odted.domain.risk import RiskPolicy
        from odted.domain.strategy import canonical_source, compile_strategy, parse_config

        compiled = compile_strategy(parse_config(config))
        source = canonical_source(compiled.config).decode()
        bots = [uuid.uuid4() for _ in users]
        links = [uuid.uuid4() for _ in users]
        risk_json = msgspec.json.encode(risk or RiskPolicy()).decode()
        reprice_json = msgspec.json.encode(reprice or RepricePolicy()).decode()

        async def insert(conn: Any) -> None:
            await conn.execute("INSERT INTO strategies (source_hash, source, config, description) "
                               "VALUES ($1, $2, $3::jsonb, $4) ON CONFLICT DO NOTHING", compiled.source_hash, source,
                               source, compiled.description)
            await conn.executemany("INSERT INTO strategy_links (id, user_id, source_hash) VALUES ($1, $2, $3)",
                                   [(link, u, compiled.source_hash) for link, u in zip(links, users)])
            await conn.executemany(
                "INSERT INTO accounts (id, user_id, name, engine, type, starting_capital, cash_balance) "
                "VALUES ($1, $2, $3, 'live_sim', 'bot', 100000, 100000)",
                [(b, u, f"bot {b.hex[:8]}") for b, u in zip(bots, users)])
            await conn.executemany(
                "INSERT INTO bots (account_id, strategy_link_id, source_hash, risk, reprice) "
                "VALUES ($1, $2, $3, $4::jsonb, $5::jsonb)",
                [(b, link, compiled.source_hash, risk_json, reprice_json) for b, link in zip(bots, links)])

        await self.db.run(insert)
        return bots


    async def timed_ticks(self, ticks: int) -> tuple[list[float], list[float], list[float]]:
        """Step `ticks` ticks, each until every actor is done with it, with the collector's
        long-lived objects frozen; per tick: wall time, CPU time, and the supervisor's
        synchronous pass over the actors."""
        gc.collect()
        gc.freeze()
        walls, cpus, passes = [], [], []
        try:
            for _ in range(ticks):
                c0, w0 = time.process_time(), time.perf_counter()
                tick = self.step()
                await self.done(tick.seq)
                walls.append(time.perf_counter() - w0)
                cpus.append(time.process_time() - c0)
                passes.append(self.live.supervisor.fanout_seconds)
        finally:
            gc.unfreeze()
        return walls, cpus, passes


PUT_SPREAD = {
    "legs": [
        {"direction": "sell", "type": "put", "qty": 1, "strike": {"method": "delta", "value": 0.3}},
        {"direction": "buy", "type": "put", "qty": 1, "strike": {"method": "delta", "value": 0.2}},
    ],
    "entry": {"times": ["10:00"]},
    "exit": {"profit_target_pct": 50, "time": "15:55"},
}
"""The 30/20-delta put credit spread the bot benchmarks and the soak run."""


def rss_bytes() -> int:
    """Resident memory, after handing freed heap pages back to the system (so it counts
    what is live, not the high-water mark of transient allocations)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@asynccontextmanager
async def runtime(nursery: trio.Nursery, *, seed: int = 1, at: dt.time = dt.time(9, 30),
                  slippage: Decimal = Decimal("0.05")) -> AsyncIterator[Runtime]:
    with tempfile.TemporaryDirectory(prefix="odted-bench-") as tmp:
        pg = EmbeddedPostgres(Path(tmp) / "pg", durable=False)
        pg.start()
        try:
            async with open_bridge() as loop:
                await ensure_database_exists(loop, pg.dsn("postgres"), "odted")
                async with open_database(pg.dsn("odted"), loop=loop, max_size=10) as db:
                    await migrate.migrate(db)
                    day = SyntheticDay(SyntheticConfig(seed=seed, date=DAY), default_calendar())
                    bus = TickBus()
                    bus.set_speed("max")
                    clock = MarketClock(bus, default_calendar())

                    async def no_settings(uid):
                        return None

                    live = LiveService(db, bus, clock, UserSettingsCache(no_settings, default_slippage=slippage))
                    bots = BotService(live, clock, logs_dir=Path(tmp) / "logs")
                    rt = Runtime(db, bus, live, bots, day)
                    rt.publish_at(at.hour, at.minute, at.second)
                    async with trio.open_nursery() as inner:
                        await inner.start(live.run)
                        await inner.start(bots.run)
                        yield rt
                        inner.cancel_scope.cancel()
        finally:
            pg.stop()
