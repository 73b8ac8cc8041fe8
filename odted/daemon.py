"""The daemon: build the service graph and run it under one nursery.

Order of life: state dir → embedded PostgreSQL (when `database.url` is empty) →
the bridge and the pool → migrations → services → HTTP → `READY=1`. SIGTERM or SIGINT:
`STOPPING=1`, stop accepting, give in-flight requests `server.graceful_timeout`, cancel
the services (each finishes its current step under a shielded cleanup), close the pool,
stop the embedded server, return (exit 0).
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import socket
import threading
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable

import hypercorn.config
import hypercorn.trio
import trio

from odted import __version__
from odted.api.app import create_app
from odted.api.ratelimit import RateLimits
from odted.api.services import Services
from odted.api.users import Users
from odted.config import Config
from odted.market.bus import TickBus
from odted.market.calendar import default_calendar
from odted.market.clock import MarketClock
from odted.market.recorder import Recorder
from odted.market.replay import ReplayFeed
from odted.market.synthetic import SyntheticFeed
from odted.market.upstream import UpstreamFeed
from odted.metrics import Registry
from odted.runtime.bots import BotService
from odted.runtime.service import LiveLimits, LiveService
from odted.runtime.settings import settings_cache_for
from odted.sdnotify import Notifier
from odted.store import migrate as migrations
from odted.store.db import Database, ensure_database_exists, open_bridge, open_database
from odted.store.embedded import EmbeddedPostgres
from odted.store.ticks import TickStore

log = logging.getLogger("odted.daemon")

__all__ = ["run", "open_store", "DB_NAME"]

DB_NAME = "odted"


@asynccontextmanager
async def open_store(cfg: Config, *, migrate: bool = True) -> AsyncIterator[Database]:
    """The embedded server when needed, the bridge, and a (migrated) pool; all closed on exit."""
    pg: EmbeddedPostgres | None = None
    dsn = cfg.database.url
    if not dsn:
        pg = EmbeddedPostgres(cfg.state_dir / "pg")
        pg.start()  # main thread: the server's parent-death signal is tied to it
        dsn = pg.dsn(DB_NAME)
    try:
        async with open_bridge() as loop:
            if pg is not None:
                await ensure_database_exists(loop, pg.dsn("postgres"), DB_NAME)
            async with open_database(
                dsn,
                loop=loop,
                min_size=cfg.database.pool_min,
                max_size=cfg.database.pool_max,
                connect_timeout=cfg.database.connect_timeout,
                command_timeout=cfg.database.command_timeout,
                retry_attempts=cfg.database.retry_attempts,
            ) as db:
                if migrate:
                    applied = await migrations.migrate(db)
                    if applied:
                        log.info("applied migrations: %s", ", ".join(f"{m.version:04d}_{m.name}" for m in applied))
                yield db
    finally:
        if pg is not None:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(pg.stop)


@dataclass
class Market:
    """The market data every service shares: the feed, its bus, the clock, the calendar."""

    bus: TickBus
    clock: MarketClock
    calendar: Any
    feed: Any
    recorder: Recorder | None = None

    def readiness(self, stale_after_ms: int) -> Callable[[], Awaitable[str | None]]:
        async def check() -> str | None:
            if self.bus.latest is None:
                return "no tick yet"
            if self.bus.closed:
                return "the feed has ended"
            stale = self.clock.staleness().total_seconds()
            if stale * 1000 > stale_after_ms:
                return f"stale: no tick for {stale:.1f} s of market time"
            return None

        return check


def build_feed(cfg: Config, calendar: Any, ticks: TickStore | None = None) -> Any:
    """The tick source `feed.source` names (replay reads the recorded `ticks`)."""
    if cfg.feed.source == "synthetic":
        return SyntheticFeed(cfg.feed.synthetic, calendar)
    if cfg.feed.source == "replay":
        if ticks is None:
            raise ValueError("the replay feed needs the tick store")
        return ReplayFeed(cfg.feed.replay, ticks)
    return UpstreamFeed(cfg.feed.upstream, calendar)


def build_recorder(cfg: Config, calendar: Any, ticks: TickStore) -> Recorder | None:
    """The recorder when `feed.record` is on."""
    if not cfg.feed.record:
        return None
    f = cfg.feed
    return Recorder(ticks.append, calendar, interval=f.record_interval, batch=f.record_batch, buffer=f.record_buffer)


def _exit_deadline(seconds: float) -> None:
    """Last resort after SIGTERM: if shutdown has not finished in `seconds`, exit anyway.

    Everything acknowledged is already committed, and the embedded PostgreSQL stops by
    its parent-death signal, so exiting is safe; it bounds a shutdown that something
    outside our control holds up (a WebSocket peer that stopped reading can block a
    send inside the server that cannot be cancelled).
    """
    def force() -> None:
        log.error("shutdown did not finish in %.0f s; exiting now", seconds)
        logging.shutdown()
        os._exit(0)

    timer = threading.Timer(seconds, force)
    timer.daemon = True
    timer.start()


def tune_gc() -> None:
    """Freeze what startup allocated and collect the young generation less often.

    The long-lived objects (config, calendar, app, caches) never become garbage, so the
    collector need not traverse them again; with many actors, fewer young collections
    keep per-tick latency flat (DESIGN.md: ~30% less fan-out time).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 50)


def hypercorn_config(cfg: Config) -> hypercorn.config.Config:
    h = hypercorn.config.Config()
    h.bind = [cfg.server.bind]
    h.graceful_timeout = cfg.server.graceful_timeout
    h.accesslog = None
    h.errorlog = logging.getLogger("hypercorn.error")
    h.keep_alive_timeout = 75
    h.websocket_max_message_size = 64 * 1024
    return h


async def run(cfg: Config, *, notifier: Notifier | None = None,
              task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED) -> None:
    """Run the daemon until SIGTERM/SIGINT (or cancellation). Reports the bound URLs."""
    notifier = notifier or Notifier()
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    started_at = datetime.now(timezone.utc)
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with open_store(cfg) as db:
            start_id = await db.fetchval(
                "INSERT INTO daemon_starts (version, host, pid) VALUES ($1, $2, $3) RETURNING id",
                __version__, socket.gethostname(), os.getpid(),
            )
            calendar = await trio.to_thread.run_sync(default_calendar)
            bus = TickBus()
            ticks = TickStore(db)
            market = Market(bus=bus, clock=MarketClock(bus, calendar), calendar=calendar,
                            feed=build_feed(cfg, calendar, ticks), recorder=build_recorder(cfg, calendar, ticks))
            limits = RateLimits(cfg.ratelimit)
            users = Users.build(cfg, db, limits)
            await users.add_operator_tokens(cfg.auth.static_tokens)
            services = Services(
                config=cfg, db=db, metrics=Registry(), started_at=started_at,
                auth=users.authenticator, version=__version__, market=market, ratelimits=limits, users=users,
            )
            services.live = LiveService(
                db, bus, market.clock, settings_cache_for(users),
                limits=LiveLimits(ask_timeout=cfg.server.ask_timeout, stale_after_ms=cfg.feed.stale_after_ms),
            )
            services.bots = BotService(services.live, market.clock, logs_dir=cfg.logs_dir)
            services.readiness["market data"] = market.readiness(cfg.feed.stale_after_ms)
            services.status["feed"] = lambda: market.feed.state()
            if market.recorder is not None:
                services.status["recorder"] = market.recorder.state
            shutdown = trio.Event()
            try:
                await _serve(cfg, services, signals, shutdown, notifier, task_status)
            finally:
                with trio.move_on_after(3, shield=True):
                    await db.fetchval("UPDATE daemon_starts SET stopped_at = now() WHERE id = $1 RETURNING id", start_id)
    log.info("odted stopped")


async def _serve(cfg: Config, services: Services, signals: Any, shutdown: trio.Event,
                 notifier: Notifier, task_status: trio.TaskStatus[list[str]]) -> None:
    app = create_app(services)
    server_done = trio.Event()

    async def watch_signals() -> None:
        async for sig in signals:
            log.info("received %s, shutting down", signal.Signals(sig).name)
            if not shutdown.is_set():
                _exit_deadline(cfg.server.graceful_timeout + 4)
            shutdown.set()

    async def serve_http(task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            await hypercorn.trio.serve(app, hypercorn_config(cfg), shutdown_trigger=shutdown.wait,
                                       task_status=task_status)
        finally:
            server_done.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(watch_signals)
        if services.market is not None and services.market.recorder is not None:  # before the feed, too
            await nursery.start(services.market.recorder.run, services.market.bus)
        if services.live is not None:  # before the feed: its engine must see the first tick
            await nursery.start(services.live.run)
        if services.bots is not None:
            await nursery.start(services.bots.run)
        await nursery.start(services.ws_hub.run)
        if services.market is not None:
            nursery.start_soon(services.market.feed.run, services.market.bus)
        binds = await nursery.start(serve_http)
        tune_gc()
        log.info("odted %s serving on %s", services.version, ", ".join(binds))
        notifier.ready(f"serving on {', '.join(binds)}")
        nursery.start_soon(notifier.run_watchdog)  # proves the event loop turns; not DB health
        task_status.started(binds)
        await shutdown.wait()
        notifier.stopping()
        services.ws_hub.shutdown()
        with trio.move_on_after(cfg.server.graceful_timeout + 1):
            await server_done.wait()
        nursery.cancel_scope.cancel()
