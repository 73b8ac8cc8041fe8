"""Live-trading fixtures: the real app with the live service, a tick bus the test steps
with ticks of the real synthetic day, and users with tokens.

Conftests import them (`from live_fixtures import *`): this folder's and those of other
test folders that run live sessions (they put this folder on `sys.path` first)."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import AsyncIterator

import httpx
import hypercorn.trio
import msgspec
import pytest
import trio

from odted.api.app import create_app
from odted.daemon import hypercorn_config
from odted.domain.chain import OptionQuote, StrikeQuotes, Tick
from odted.market.bus import TickBus
from odted.market.calendar import default_calendar
from odted.market.clock import MarketClock
from odted.market.synthetic import SyntheticConfig, SyntheticDay
from odted.runtime.bots import BotService
from odted.runtime.service import LiveService
from odted.runtime.settings import settings_cache_for

from live_helpers import DAY

__all__ = ["LiveEnv", "Market", "live_env"]


class Market:
    """Steps the bus through the synthetic day, or publishes hand-made ticks."""

    def __init__(self, bus: TickBus) -> None:
        self.bus = bus
        self.day = SyntheticDay(SyntheticConfig(seed=7, date=DAY), default_calendar())
        self.index = 0
        self.seq = 0

    def publish(self, tick: Tick) -> Tick:
        self.seq = max(self.seq + 1, tick.seq)
        tick = msgspec.structs.replace(tick, seq=self.seq)
        self.bus.publish(tick)
        return tick

    def step(self, seconds: int = 1) -> Tick:
        """Publish the synthetic day's tick `seconds` after the last one."""
        self.index += seconds
        return self.publish(self.day.tick_at(self.index))

    def current(self) -> Tick:
        return self.bus.latest  # type: ignore[return-value]

    def with_quotes(self, quotes: dict[tuple[int, str], tuple[str, str]], *, closing: bool = False,
                    seconds: int = 1) -> Tick:
        """The next second of the day with some quotes overridden: {(strike, "C"): (bid, ask)}."""
        self.index += seconds
        base = self.day.tick_at(self.index)
        chain = []
        for s in base.chain:
            call, put = s.call, s.put
            if (s.strike, "C") in quotes:
                b, a = quotes[(s.strike, "C")]
                call = OptionQuote(Decimal(b), Decimal(a), call.delta)
            if (s.strike, "P") in quotes:
                b, a = quotes[(s.strike, "P")]
                put = OptionQuote(Decimal(b), Decimal(a), put.delta)
            chain.append(StrikeQuotes(s.strike, call, put))
        tick = Tick.build(base.seq, base.ts, base.spx, base.vix, base.spx_expected_move, chain, closing=closing)
        return self.publish(tick)

    def close(self) -> Tick:
        """The closing tick of the day."""
        last = self.day.n_ticks - 1
        self.index = last
        return self.publish(msgspec.structs.replace(self.day.tick_at(last), closing=True))


class LiveEnv:
    def __init__(self, services, service: LiveService, market: Market, url: str) -> None:
        self.services = services
        self.db = services.db
        self.service = service
        self.market = market
        self.url = url

    async def user(self, email: str | None = None) -> tuple[uuid.UUID, str]:
        """A registered user (through the real users service) and a token of theirs."""
        email = email or f"{uuid.uuid4().hex[:10]}@example.com"
        row = await self.services.users.add(email, None)
        return row.id, await self.services.users.mint_token(email)

    def client(self, token: str | None = None) -> httpx.AsyncClient:
        headers = {"Authorization": token} if token else {}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=10)


@pytest.fixture
async def live_env(db, services, nursery) -> AsyncIterator[LiveEnv]:
    bus = TickBus()
    bus.set_speed("max")  # market time is the last tick's time: the test steps it
    clock = MarketClock(bus, default_calendar())

    service = LiveService(db, bus, clock, settings_cache_for(services.users))
    services.auth = services.users.authenticator
    services.live = service
    services.bots = BotService(service, clock, logs_dir=services.config.logs_dir)
    market = Market(bus)
    market.step(0)  # the open
    await nursery.start(service.run)
    await nursery.start(services.bots.run)
    app = create_app(services)
    await nursery.start(services.ws_hub.run)
    shutdown = trio.Event()
    binds = await nursery.start(lambda task_status: hypercorn.trio.serve(
        app, hypercorn_config(services.config), shutdown_trigger=shutdown.wait, task_status=task_status))
    yield LiveEnv(services, service, market, binds[0])
    shutdown.set()
