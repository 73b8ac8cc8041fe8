"""An in-process odted runtime for benchmarks: embedded PostgreSQL (fsync off), the live
and bot services, and a tick bus the benchmark steps through a synthetic day."""

from __future__ import annotations

import datetime as dt
import os
import tempfile
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


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@asynccontextmanager
async def runtime(nursery: trio.Nursery, *, seed: int = 1) -> AsyncIterator[Runtime]:
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

                    live = LiveService(db, bus, clock, UserSettingsCache(no_settings, default_slippage=Decimal("0.05")))
                    bots = BotService(live, clock, logs_dir=Path(tmp) / "logs")
                    rt = Runtime(db, bus, live, bots, day)
                    rt.publish_at(9, 30)
                    async with trio.open_nursery() as inner:
                        await inner.start(live.run)
                        await inner.start(bots.run)
                        yield rt
                        inner.cancel_scope.cancel()
        finally:
            pg.stop()
