"""Market data: `/market-data/*` (recorded sessions, strikes, chain snapshots, series)
and the market channels of `/__ws`.

Spec: api-walkthrough Part 3. Data comes from the recorder's tables
(`odted.store.ticks`); "now" is the market clock's (the wall clock when no feed runs).

Access: without a token (or with one that does not authenticate) only the current
session (the one whose regular hours contain market time now) and the most recent
completed one (the latest whose close is at or before now) can be read; the others are
`401` and are listed with `restricted: true`. With a token every session is open.
`400 invalid_input` for a malformed date, timestamp or series; `404 not_found` for a
day with no recorded session or a second with no recorded quote.

Decisions where the spec is silent:
- a snapshot timestamp is UTC (`YYYY-MM-DDTHH:MM:SS`, a trailing `Z` is accepted) and
  answers the last recorded chain at or before it, if that is at most 60 s older and
  the second is not past the session's data (quotes hold until they change; a gap in
  the recording longer than a minute is 404);
- snapshot and chain values are JSON numbers (`bid`, `ask` in dollars, `delta`
  unsigned); historical series are decimal strings;
- `spxOTMBids` (key `spx_otm_bids`) is the sum of the bids of every out-of-the-money
  option (calls struck above SPX, puts below), and `spxExtrinsic` (key
  `spx_extrinsic`) the time value of the at-the-money straddle: both in dollars per
  share, defined in `odted.store.ticks`;
- rate-limit costs: sessions 1, strikes 5, a snapshot 10, a historical day 20.

The `/__ws` market channels (`MarketChannel`, registered on the hub like any other
channel) wait on the tick bus (`wait_tick_after`: they conflate, never pace the feed),
encode each tick's frame once and hand the same bytes to every subscriber; a new
subscriber gets the latest frame at once:
- `live_aggregate_data` (anyone): `{"datetime", "datetimeUnix", "spx", "vix",
  "spx_expected_move", "spx_otm_bids", "spx_extrinsic"}`, decimals as strings as in
  `/market-data/historical`;
- `live_option_chain` (tokens only): `[{"strike", "call": {"bid", "ask", "delta"},
  "put": {...}}, ...]`, every value a JSON number.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import msgspec
import trio
from msgspec import UNSET, UnsetType
from quart import Response, g, request

from odted.api.codec import json_response, raw_json_response
from odted.api.errors import ApiError
from odted.api.routes import Api
from odted.api.services import Services
from odted.api.ws import Connection, WebSocketHub
from odted.domain.chain import StrikeQuotes, Tick
from odted.market.bus import FeedEnded
from odted.market.calendar import trading_date
from odted.store.ticks import SessionRow, TickStore, atm_extrinsic, otm_bids

__all__ = [
    "Aggregate",
    "HistoricalRow",
    "MarketChannel",
    "MarketSession",
    "SERIES",
    "SnapshotQuote",
    "aggregate_frame",
    "aggregate_of",
    "chain_frame",
    "register",
    "register_channels",
]

SERIES = {
    "spx": "spx",
    "vix": "vix",
    "spxExpectedMove": "spx_expected_move",
    "spxOTMBids": "spx_otm_bids",
    "spxExtrinsic": "spx_extrinsic",
}
"""Selectable series -> the key each row carries it under."""
DEFAULT_SERIES = ("spx", "spxExpectedMove")
SNAPSHOT_LOOKBACK = timedelta(seconds=60)
_CACHE_ENTRIES = 8

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z?$")


class MarketSession(msgspec.Struct, frozen=True, omit_defaults=True, rename="kebab"):
    """One recorded trading day (times UTC)."""

    start_time: datetime
    """The session's regular open."""
    end_time: datetime
    """The session's regular close (13:00 ET on early-close days)."""
    data_start_time: datetime
    """The first recorded tick."""
    data_end_time: datetime
    """The last recorded tick."""
    current: bool = False
    """Today's in-progress session."""
    restricted: bool = False
    """Unauthenticated callers cannot read it."""


class SnapshotQuote(msgspec.Struct, frozen=True):
    """One option of a chain snapshot (`call_<strike>` / `put_<strike>`)."""

    bid: float
    ask: float
    delta: float
    """Unsigned, 0..1."""


class HistoricalRow(msgspec.Struct, frozen=True, omit_defaults=True):
    """One second of a session; only the selected series are present."""

    datetime: datetime
    datetimeUnix: int
    spx: Decimal | UnsetType = UNSET
    vix: Decimal | UnsetType = UNSET
    spx_expected_move: Decimal | UnsetType = UNSET
    spx_otm_bids: Decimal | UnsetType = UNSET
    spx_extrinsic: Decimal | UnsetType = UNSET


_numbers = msgspec.json.Encoder(decimal_format="number")
_strings = msgspec.json.Encoder(decimal_format="string")


def register(api: Api, services: Services) -> None:
    register_channels(services.ws_hub, services)
    store = TickStore(services.db)
    historical_cache: OrderedDict[tuple[date, tuple[str, ...], int], bytes] = OrderedDict()

    def now() -> datetime:
        market = services.market
        return market.clock.now() if market is not None else datetime.now(UTC)

    async def readable(day: date) -> SessionRow:
        """The session of `day`, if the caller may read it (404 / 401 otherwise)."""
        sessions = await store.sessions()
        session = next((s for s in sessions if s.date == day), None)
        if session is None:
            raise ApiError.not_found(f"recorded session on {day.isoformat()}")
        if g.principal is None and day not in _public_dates(sessions, now()):
            raise ApiError(401, "unauthorized", f"the session of {day.isoformat()} needs a token")
        return session

    @api.route("GET", "/market-data/sessions", summary="The recorded trading sessions",
               response=dict[str, MarketSession], auth=False, auth_optional=True, tags=("market-data",))
    async def sessions() -> Response:
        rows = await store.sessions()
        at = now()
        public = _public_dates(rows, at)
        anonymous = g.principal is None
        body = {
            s.date.isoformat(): MarketSession(
                start_time=s.start_time,
                end_time=s.end_time,
                data_start_time=s.data_start_time,
                data_end_time=s.data_end_time,
                current=s.start_time <= at < s.end_time,
                restricted=anonymous and s.date not in public,
            )
            for s in rows
        }
        return json_response(body)

    @api.route("GET", "/market-data/strikes/<day>", summary="The strikes quoted on a recorded day",
               response=list[int], auth=False, auth_optional=True, errors=(400, 401, 404), cost=5,
               tags=("market-data",))
    async def strikes(day: str) -> Response:
        session = await store.session((await readable(_parse_date(day))).date)
        return json_response(list(session.strikes) if session is not None else [])

    @api.route("GET", "/market-data/option-chain-snapshots/<timestamp>",
               summary="The option chain at a second (UTC, YYYY-MM-DDTHH:MM:SS)",
               response=dict[str, SnapshotQuote], auth=False, auth_optional=True, errors=(400, 401, 404),
               cost=10, tags=("market-data",))
    async def snapshot(timestamp: str) -> Response:
        ts = _parse_timestamp(timestamp)
        day = trading_date(ts)
        latest = services.market.bus.latest if services.market is not None else None
        if latest is not None and latest.ts == ts:
            tick = latest  # market time now: the current session, public, maybe not written yet
        else:
            session = await readable(day)
            tick = None
            if session.data_start_time <= ts <= session.data_end_time:
                tick = await store.tick_at(day, ts, SNAPSHOT_LOOKBACK)
            if tick is None:
                raise ApiError.not_found(f"recorded quote at {ts.isoformat()}")
        body: dict[str, object] = {}
        for s in tick.chain:
            body[f"call_{s.strike}"] = s.call
            body[f"put_{s.strike}"] = s.put
        return raw_json_response(_numbers.encode(body))

    @api.route("GET", "/market-data/historical/<day>", summary="Per-second series of a recorded day",
               response=list[HistoricalRow], auth=False, auth_optional=True, errors=(400, 401, 404), cost=20,
               query=(("series", str, "Comma-separated: " + ", ".join(SERIES) + "; default "
                       + ",".join(DEFAULT_SERIES)),),
               tags=("market-data",))
    async def historical(day: str) -> Response:
        selected = _parse_series(request.args.get("series"))
        session = await readable(_parse_date(day))
        completed = session.end_time <= now()
        key = (session.date, selected, session.ticks)
        if completed and key in historical_cache:
            historical_cache.move_to_end(key)
            return raw_json_response(historical_cache[key])
        wanted = [SERIES[name] for name in selected]
        rows = []
        for r in await store.series(session.date):
            values = r._asdict()
            rows.append(HistoricalRow(
                datetime=r.ts, datetimeUnix=int(r.ts.timestamp()), **{k: values[k] for k in wanted}))
        body = _strings.encode(rows)
        if completed:
            historical_cache[key] = body
            while len(historical_cache) > _CACHE_ENTRIES:
                historical_cache.popitem(last=False)
        return raw_json_response(body)


# -- the market channels of /__ws ------------------------------------------------------


class Aggregate(msgspec.Struct, frozen=True):
    """The `live_aggregate_data` payload: one second of the market's scalars."""

    datetime: datetime
    datetimeUnix: int
    spx: Decimal
    vix: Decimal
    spx_expected_move: Decimal
    spx_otm_bids: Decimal
    spx_extrinsic: Decimal


class _AggregateFrame(msgspec.Struct, frozen=True):
    channel: str
    payload: Aggregate


class _ChainFrame(msgspec.Struct, frozen=True):
    channel: str
    payload: tuple[StrikeQuotes, ...]


def aggregate_of(tick: Tick) -> Aggregate:
    """The `live_aggregate_data` payload of `tick`."""
    return Aggregate(
        datetime=tick.ts,
        datetimeUnix=int(tick.ts.timestamp()),
        spx=tick.spx,
        vix=tick.vix,
        spx_expected_move=tick.spx_expected_move,
        spx_otm_bids=otm_bids(tick),
        spx_extrinsic=atm_extrinsic(tick),
    )


def aggregate_frame(tick: Tick) -> bytes:
    """The `live_aggregate_data` frame of `tick`."""
    return _strings.encode(_AggregateFrame("live_aggregate_data", aggregate_of(tick)))


def chain_frame(tick: Tick) -> bytes:
    """The `live_option_chain` frame of `tick`: numbers, not strings."""
    return _numbers.encode(_ChainFrame("live_option_chain", tick.chain))


class MarketChannel:
    """A channel that sends one frame per tick to every subscriber (see the module
    docstring); `bus` returns the tick bus, or None when no feed runs."""

    def __init__(self, name: str, encode: Callable[[Tick], bytes], bus: Callable[[], Any], *,
                 requires_token: bool) -> None:
        self.name = name
        self.requires_token = requires_token
        self._encode = encode
        self._bus = bus
        self._subscribers: set[Connection] = set()
        self._watched: set[Connection] = set()
        self._tick: Tick | None = None
        self._frame: bytes | None = None
        self.frames_encoded = 0

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def subscribe(self, conn: Connection, message: dict[str, Any]) -> None:
        if conn in self._subscribers:
            return
        self._subscribers.add(conn)
        if conn not in self._watched:  # one close callback per connection, however often it resubscribes
            self._watched.add(conn)
            conn.on_close(lambda: self._forget(conn))
        frame = self.frame()
        if frame is not None:
            conn.send(frame)

    def unsubscribe(self, conn: Connection, message: dict[str, Any]) -> None:
        self._subscribers.discard(conn)

    def _forget(self, conn: Connection) -> None:
        self._subscribers.discard(conn)
        self._watched.discard(conn)

    def frame(self) -> bytes | None:
        """The latest tick's frame, encoded once."""
        if self._frame is None and self._tick is not None:
            self._frame = self._encode(self._tick)
            self.frames_encoded += 1
        return self._frame

    def publish(self, tick: Tick) -> None:
        """Make `tick` the latest and send its frame to every subscriber."""
        self._tick = tick
        self._frame = None
        if self._subscribers:
            frame = self.frame()
            assert frame is not None
            for conn in list(self._subscribers):
                conn.send(frame)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Follow the bus until the feed ends (conflating: always the newest tick)."""
        task_status.started()
        bus = self._bus()
        if bus is None:
            return
        seq = 0
        while True:
            try:
                tick = await bus.wait_tick_after(seq)
            except FeedEnded:
                return
            seq = tick.seq
            self.publish(tick)


def register_channels(hub: WebSocketHub, services: Services) -> None:
    """Put the market channels on `hub` (once), following `services.market.bus`."""
    def bus() -> Any:
        return None if services.market is None else services.market.bus

    if hub.channel("live_aggregate_data") is None:
        hub.register_channel("live_aggregate_data",
                             MarketChannel("live_aggregate_data", aggregate_frame, bus, requires_token=False))
        hub.register_channel("live_option_chain",
                             MarketChannel("live_option_chain", chain_frame, bus, requires_token=True))


def _public_dates(sessions: list[SessionRow], at: datetime) -> set[date]:
    """The current session and the most recent completed one, by market time `at`."""
    public = {s.date for s in sessions if s.start_time <= at < s.end_time}
    completed = [s.date for s in sessions if s.end_time <= at]
    if completed:
        public.add(max(completed))
    return public


def _parse_date(text: str) -> date:
    if not _DATE.match(text):
        raise ApiError.bad_request("invalid_input", f"date must be YYYY-MM-DD, not {text!r}", field="date")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ApiError.bad_request("invalid_input", f"{text!r} is not a calendar date", field="date") from None


def _parse_timestamp(text: str) -> datetime:
    if not _TIMESTAMP.match(text):
        raise ApiError.bad_request("invalid_input", f"timestamp must be YYYY-MM-DDTHH:MM:SS (UTC), not {text!r}",
                                   field="timestamp")
    try:
        return datetime.fromisoformat(text.rstrip("Z")).replace(tzinfo=UTC)
    except ValueError:
        raise ApiError.bad_request("invalid_input", f"{text!r} is not a valid time", field="timestamp") from None


def _parse_series(text: str | None) -> tuple[str, ...]:
    if text is None:
        return DEFAULT_SERIES
    names = [n.strip() for n in text.split(",")]
    unknown = [n for n in names if n not in SERIES]
    if unknown or not names:
        raise ApiError.bad_request(
            "invalid_input", f"unknown series {', '.join(repr(n) for n in unknown)}; choose from {', '.join(SERIES)}",
            field="series")
    return tuple(dict.fromkeys(names))
