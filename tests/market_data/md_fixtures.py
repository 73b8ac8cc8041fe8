"""Fixtures and helpers of the market-data tests (imported by each test module: a
conftest.py here would shadow the root one for `from conftest import ...`)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
import trio
import trio_websocket

from odted.config import Config, load_config
from odted.daemon import Market
from odted.domain.chain import Tick
from odted.market.bus import TickBus
from odted.market.calendar import TradingCalendar, default_calendar
from odted.market.clock import MarketClock
from odted.market.synthetic import SyntheticConfig, SyntheticDay

DAY = dt.date(2025, 1, 15)
TOKEN = "test-token"


@pytest.fixture(scope="session")
def calendar() -> TradingCalendar:
    return default_calendar()


@pytest.fixture
def config(tmp_path: Path) -> Config:
    """The root config, with rate limits out of the way (these tests read a lot)."""
    return load_config(None, env={}, overrides={
        "state.dir": str(tmp_path / "state"),
        "server.bind": "127.0.0.1:0",
        "auth.static_tokens": [TOKEN],
        "ratelimit.client_capacity": 1_000_000,
        "ratelimit.user_capacity": 1_000_000,
    })


@pytest.fixture
def market(services: Any, calendar: TradingCalendar) -> Market:
    """A tick bus (fed by the test) as the services' market data."""
    bus = TickBus()
    m = Market(bus=bus, clock=MarketClock(bus, calendar), calendar=calendar, feed=None)
    services.market = m
    return m


@pytest.fixture
async def hub(services: Any, market: Market, server: str, nursery: trio.Nursery) -> Any:
    """The services' WebSocket hub behind `server`, running: its market channels follow
    `market.bus`."""
    await nursery.start(services.ws_hub.run)
    return services.ws_hub


@pytest.fixture
async def ws_clients(server: str, nursery: trio.Nursery) -> Any:
    """`await ws_clients(auth=None, **options)`: a `Client` of `server`'s `/__ws`, sent
    `auth` first. Their sockets are cut at teardown (before the server stops), so a test
    that fails with frames unread cannot leave the server blocked writing to them."""
    streams: list[trio.SocketStream] = []
    host, port = server.removeprefix("http://").rsplit(":", 1)

    async def connect(auth: dict[str, Any] | None = None, **options: Any) -> Client:
        stream = await trio.open_tcp_stream(host, int(port))
        streams.append(stream)
        ws = await trio_websocket.wrap_client_stream(nursery, stream, host, "/__ws", **options)
        client = Client(ws)
        if auth is not None:
            await client.send(auth)
        return client

    yield connect
    for stream in streams:
        await trio.aclose_forcefully(stream)


def synthetic_day(calendar: TradingCalendar, day: dt.date = DAY, *, seed: int = 3,
                  start: dt.time = dt.time(9, 30), strikes_each_side: int = 120) -> SyntheticDay:
    return SyntheticDay(SyntheticConfig(date=day, seed=seed, start_time=start,
                                        strikes_each_side=strikes_each_side), calendar)


def ticks_of(calendar: TradingCalendar, day: dt.date = DAY, *, start: dt.time = dt.time(9, 30), n: int = 10,
             **kw: Any) -> list[Tick]:
    """`n` synthetic ticks of `day` from `start` (New York)."""
    d = synthetic_day(calendar, day, start=start, **kw)
    return d.block(d.first_index, d.first_index + n)


def ws_url(server: str) -> str:
    return server.replace("http://", "ws://") + "/__ws"


class Client:
    """A trio-websocket client speaking the `/__ws` JSON protocol."""

    def __init__(self, ws: trio_websocket.WebSocketConnection) -> None:
        self.ws = ws

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send_message(json.dumps(message))

    async def receive(self, timeout: float = 5.0) -> dict[str, Any]:
        with trio.fail_after(timeout):
            return json.loads(await self.ws.get_message())

    async def closed(self, timeout: float = 5.0) -> trio_websocket.CloseReason:
        """Read until the server closes; the close reason."""
        with trio.fail_after(timeout):
            while True:
                try:
                    await self.ws.get_message()
                except trio_websocket.ConnectionClosed as e:
                    return e.reason
