"""The upstream feed: ticks from another server's `/__ws` (issue 4, item 5).

A trio-websocket client of the spec's protocol (api-walkthrough Part 11): it sends
`{"token": ...}` (or `{"auth": "public"}` without a token), subscribes to
`live_aggregate_data` and, with a token, `live_option_chain`, and assembles a `Tick` per
second:
- an aggregate frame carries the second (`datetime`) and SPX, VIX, expected move; a
  chain frame carries the chain and no time. A tick is published when an aggregate for
  a new second has arrived and a chain has arrived since the last tick, in either
  order; an aggregate that is overtaken by the next before any chain comes is dropped.
  A public connection gets no chain: its ticks have an empty chain, one per aggregate;
- values are brought to what the recorder stores exactly: prices to cents, deltas
  unsigned with three decimals, SPX and VIX to cents, the expected move to four places;
- `seq` continues the bus's numbering; a frame for a second at or before the last one
  published is ignored, so a reconnect never republishes an old tick as new;
- `closing` is set on the tick at the session's close (from the trading calendar).

The connection is made again whenever it is lost: failures before the first tick of a
connection back off exponentially with jitter (tenacity, `reconnect_min` ..
`reconnect_max` seconds, forever: a feed keeps trying), a connection that delivered
ticks and then dropped is made again at once. Connecting, authenticating and
subscribing must finish within `connect_timeout`; `silence_timeout` seconds without a
frame count as a lost connection (a half-open socket), as does `end_of_data` (the
public stream cap).

The feed cannot wait for pacers: it publishes as frames arrive. `FeedState.connected`
is true while the socket is open and streaming (from its first frame), `latency_ms` is the arrival time of
the last tick minus its `ts` (wall clock, UTC), `reconnects` counts the connections
made again.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal

import msgspec
import tenacity
import trio
import trio_websocket

from odted.domain.chain import OptionQuote, StrikeQuotes, Tick
from odted.market.bus import TickBus
from odted.market.calendar import TradingCalendar, trading_date
from odted.market.clock import wall_clock_utc
from odted.market.feed import FeedState

__all__ = ["UpstreamConfig", "UpstreamFeed", "UpstreamLost"]

log = logging.getLogger("odted.market.upstream")


class UpstreamConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Knobs of the upstream feed (config section `[feed.upstream]`)."""

    url: str = ""
    """The upstream `/__ws` URL, `ws://` or `wss://` (required for `source = "upstream"`)."""
    token: str = ""
    """The token to authenticate with; empty: public (aggregates only, no chain)."""
    connect_timeout: float = 10.0
    """Seconds to connect, authenticate and subscribe."""
    silence_timeout: float = 10.0
    """Seconds without a frame after which the connection counts as lost."""
    reconnect_min: float = 0.5
    """First backoff after a failed connection, in seconds (doubling, with jitter)."""
    reconnect_max: float = 30.0
    """Longest backoff between connection attempts, in seconds."""

    def __post_init__(self) -> None:
        if self.url and not self.url.startswith(("ws://", "wss://")):
            raise ValueError("url must start with ws:// or wss://")
        if min(self.connect_timeout, self.silence_timeout, self.reconnect_min) <= 0:
            raise ValueError("timeouts and reconnect_min must be > 0")
        if self.reconnect_max < self.reconnect_min:
            raise ValueError("reconnect_max must be >= reconnect_min")


class UpstreamLost(Exception):
    """The upstream connection ended or went silent."""


class _Frame(msgspec.Struct):
    channel: str
    payload: msgspec.Raw = msgspec.Raw(b"null")


class _Aggregate(msgspec.Struct):
    datetime: dt.datetime
    spx: Decimal
    vix: Decimal
    spx_expected_move: Decimal


class _Quote(msgspec.Struct):
    bid: Decimal
    ask: Decimal
    delta: float


class _Strike(msgspec.Struct):
    strike: int | float
    call: _Quote
    put: _Quote


_frame = msgspec.json.Decoder(_Frame)
_aggregate = msgspec.json.Decoder(_Aggregate)
_chain = msgspec.json.Decoder(list[_Strike])

_CENT = Decimal("0.01")
_BP = Decimal("0.0001")
_RETRYABLE = (
    OSError,
    trio.TooSlowError,
    trio.BrokenResourceError,
    trio_websocket.HandshakeError,
    trio_websocket.ConnectionClosed,
    UpstreamLost,
)


class UpstreamFeed:
    """Publishes another server's live market data; see the module docstring."""

    name = "upstream"

    def __init__(self, config: UpstreamConfig, calendar: TradingCalendar, *,
                 wall: Callable[[], dt.datetime] = wall_clock_utc) -> None:
        if not config.url:
            raise ValueError("feed.upstream.url is required for the upstream feed")
        self._config = config
        self._calendar = calendar
        self._wall = wall
        self._prices: dict[Decimal, Decimal] = {}
        self._connected = False
        self._last: Tick | None = None
        self._published = 0
        self._latency_ms: float | None = None
        self._reconnects = 0
        self._connections = 0
        self._error: str | None = None
        # assembly state of the current connection
        self._pending: _Aggregate | None = None
        self._chain: tuple[StrikeQuotes, ...] = ()
        self._chain_fresh = False

    @property
    def config(self) -> UpstreamConfig:
        return self._config

    def state(self) -> FeedState:
        """The feed's state for `/status`."""
        last = self._last
        return FeedState(
            source=self.name,
            connected=self._connected,
            speed=1.0,
            session_date=None if last is None else trading_date(last.ts),
            last_tick_ts=None if last is None else last.ts,
            seq=None if last is None else last.seq,
            ticks_published=self._published,
            latency_ms=self._latency_ms,
            reconnects=self._reconnects,
            error=self._error,
        )

    async def run(self, bus: TickBus, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Publish upstream ticks onto `bus` until cancelled; `task_status.started()` at
        once (the feed is ready to try; ticks come when the connection does)."""
        bus.set_speed(1.0)
        task_status.started()
        cfg = self._config
        while True:
            retrying = tenacity.AsyncRetrying(
                sleep=trio.sleep,
                wait=tenacity.wait_exponential_jitter(multiplier=cfg.reconnect_min, max=cfg.reconnect_max,
                                                      jitter=cfg.reconnect_min),
                retry=tenacity.retry_if_exception_type(_RETRYABLE),
                before_sleep=self._log_retry,
                reraise=True,
            )
            async for attempt in retrying:
                with attempt:
                    await self._connection(bus)

    def _log_retry(self, retry_state: tenacity.RetryCallState) -> None:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        wait = retry_state.next_action.sleep if retry_state.next_action else 0.0
        log.warning("upstream %s: %s; trying again in %.1f s", self._config.url, exc, wait)

    async def _connection(self, bus: TickBus) -> None:
        """One connection: returns after it delivered ticks and then ended, raises a
        `_RETRYABLE` error when it failed before delivering any."""
        cfg = self._config
        delivered = False
        self._pending, self._chain, self._chain_fresh = None, (), False
        try:
            async with trio_websocket.open_websocket_url(
                cfg.url, connect_timeout=cfg.connect_timeout, disconnect_timeout=1.0,
                max_message_size=4 * 1024 * 1024,
            ) as ws:
                with trio.fail_after(cfg.connect_timeout):
                    await ws.send_message(_auth_message(cfg.token))
                    await ws.send_message(_subscribe_message(bool(cfg.token)))
                while True:
                    with trio.move_on_after(cfg.silence_timeout) as silent:
                        message = await ws.get_message()
                    if silent.cancelled_caught:
                        raise UpstreamLost(f"no frame for {cfg.silence_timeout:g} s")
                    if not self._connected:  # the first frame: authenticated and subscribed
                        self._connected_now()
                    if self._on_message(message, bus):
                        delivered = True
        except _RETRYABLE as e:
            self._error = f"{type(e).__name__}: {e}"
            if not delivered:
                raise
            log.warning("upstream %s: connection lost (%s); connecting again", cfg.url, self._error)
        finally:
            self._connected = False

    def _connected_now(self) -> None:
        if self._connections:
            self._reconnects += 1
        self._connections += 1
        self._connected = True
        log.info("upstream %s: connected", self._config.url)

    # -- assembly -------------------------------------------------------------------

    def _on_message(self, message: str | bytes, bus: TickBus) -> bool:
        """Take one frame; True when a tick was published."""
        try:
            frame = _frame.decode(message)
            if frame.channel == "live_aggregate_data":
                agg = _aggregate.decode(frame.payload)
                if agg.datetime.tzinfo is None:
                    agg.datetime = agg.datetime.replace(tzinfo=dt.UTC)
                last = self._last
                if last is not None and agg.datetime <= last.ts:
                    return False
                self._pending = agg
            elif frame.channel == "live_option_chain":
                self._chain = self._build_chain(_chain.decode(frame.payload))
                self._chain_fresh = True
            elif frame.channel == "end_of_data":
                raise UpstreamLost("the upstream ended the stream (end_of_data)")
            else:
                return False
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError, ArithmeticError) as e:
            log.warning("upstream: ignoring a malformed frame: %s", e)
            return False
        if self._pending is None or (self._config.token and not self._chain_fresh):
            return False
        self._publish(self._pending, bus)
        self._pending = None
        self._chain_fresh = False
        return True

    def _publish(self, agg: _Aggregate, bus: TickBus) -> None:
        ts = agg.datetime.astimezone(dt.UTC)
        try:
            session = self._calendar.session_at(ts)
        except ValueError:
            session = None
        tick = Tick(
            seq=bus.latest_seq + 1,
            ts=ts,
            spx=agg.spx.quantize(_CENT, ROUND_HALF_UP),
            vix=agg.vix.quantize(_CENT, ROUND_HALF_UP),
            spx_expected_move=agg.spx_expected_move.quantize(_BP, ROUND_HALF_UP),
            chain=self._chain,
            strikes=tuple(s.strike for s in self._chain),
            closing=session is not None and ts >= session.close_utc,
        )
        bus.publish(tick)
        self._last = tick
        self._published += 1
        self._latency_ms = round((self._wall() - ts).total_seconds() * 1000, 1)

    def _build_chain(self, strikes: list[_Strike]) -> tuple[StrikeQuotes, ...]:
        by_strike: dict[int, StrikeQuotes] = {}
        for s in strikes:
            k = int(s.strike)
            by_strike[k] = StrikeQuotes(k, self._quote(s.call), self._quote(s.put))
        return tuple(by_strike[k] for k in sorted(by_strike))

    def _quote(self, q: _Quote) -> OptionQuote:
        return OptionQuote(self._price(q.bid), self._price(q.ask), round(min(abs(q.delta), 1.0), 3))

    def _price(self, value: Decimal) -> Decimal:
        price = self._prices.get(value)
        if price is None:
            if len(self._prices) > 200_000:
                self._prices.clear()
            price = self._prices[value] = value.quantize(_CENT, ROUND_HALF_UP)
        return price


def _auth_message(token: str) -> str:
    return msgspec.json.encode({"token": token} if token else {"auth": "public"}).decode()


def _subscribe_message(with_chain: bool) -> str:
    channels = ["live_aggregate_data", "live_option_chain"] if with_chain else ["live_aggregate_data"]
    return msgspec.json.encode({"action": "subscribe", "channels": channels}).decode()
