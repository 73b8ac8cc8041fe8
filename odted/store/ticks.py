"""Recorded market data in PostgreSQL: every tick a feed published, and the sessions.

Storage (migration 0003): one `market_ticks` row per tick. The scalars are exact
NUMERICs; the chain is one `bytea` packed by `TickCodec`:

    byte 0     format (1)
    bytes 1..  zlib (level 6) of 7 rows x n strikes of little-endian int32, each row
               differenced along the strikes (first value, then steps) and the whole
               block byte-shuffled (all first bytes, then all second bytes, ...):
               strike, call bid, call ask, put bid, put ask (cents),
               call delta, put delta (thousandths)

A 241-strike chain packs into about 520 bytes, a row with its index entry takes about
0.7 KB, a full session (23,401 ticks) about 16 MB. Decoding gives back an equal `Tick`
(`seq`, `ts`, every price and delta, `closing`) for any tick whose prices are whole cents
and whose deltas have at most three decimals (what the spec quotes and every feed
publishes); `TickCodec.encode` refuses anything else rather than store a rounded value.

Two series are derived from the chain when a tick is recorded, so the historical
endpoint never unpacks chains:
- `spx_otm_bids`: the sum of the bids of every out-of-the-money option in the chain
  (calls struck above SPX, puts struck below), dollars per share: what selling the whole
  OTM chain would take in, a gauge of how much premium the day still prices;
- `spx_extrinsic`: the time value of the at-the-money straddle (the strike nearest SPX,
  the lower one on a tie): call mid + put mid - |SPX - strike|, dollars per share, three
  decimals: the market's price of the move still to come.
"""

from __future__ import annotations

import operator
import zlib
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple

import msgspec
import numpy as np
import trio

from odted.domain.chain import OptionQuote, StrikeQuotes, Tick
from odted.store.db import Conn, Database

__all__ = [
    "FORMAT",
    "SeriesRow",
    "SessionRow",
    "TickCodec",
    "TickRow",
    "TickStore",
    "atm_extrinsic",
    "otm_bids",
]

FORMAT = 1
"""The chain format byte this module writes (and the only one it reads)."""
_LEVEL = 6  # zlib: level 1 is 15% larger, level 9 2% smaller and twice as slow
_ROWS = 7
_DECODE_CHUNK = 64  # ticks decoded between checkpoints (~10 ms)
_CENTS_CACHE_LIMIT = 500_000

_CALL = operator.attrgetter("call")
_PUT = operator.attrgetter("put")
_BID = operator.attrgetter("bid")
_ASK = operator.attrgetter("ask")
_DELTA = operator.attrgetter("delta")
_MILLS = Decimal("0.001")
_MILLS_ZERO = Decimal("0.000")
_CENT = Decimal("0.00")


class TickRow(NamedTuple):
    """The columns of one `market_ticks` row but `session_date`."""

    ts: datetime
    seq: int
    closing: bool
    spx: Decimal
    vix: Decimal
    spx_expected_move: Decimal
    spx_otm_bids: Decimal
    spx_extrinsic: Decimal
    chain: bytes


class SessionRow(msgspec.Struct, frozen=True):
    """A recorded trading day."""

    date: date
    start_time: datetime
    end_time: datetime
    data_start_time: datetime
    data_end_time: datetime
    ticks: int
    strikes: tuple[int, ...] = ()


class SeriesRow(NamedTuple):
    """One second of the historical series."""

    ts: datetime
    spx: Decimal
    vix: Decimal
    spx_expected_move: Decimal
    spx_otm_bids: Decimal
    spx_extrinsic: Decimal


class _Cents(dict[Decimal, int]):
    """Decimal price -> whole cents, remembered (ticks share their price objects, and a
    Decimal caches its hash, so a hit costs a dict probe)."""

    def __missing__(self, price: Decimal) -> int:
        scaled = price.scaleb(2)
        if not price.is_finite() or price < 0 or scaled != scaled.to_integral_value():
            raise ValueError(f"price {price} is not a non-negative whole number of cents")
        if len(self) >= _CENTS_CACHE_LIMIT:
            self.clear()
        cents = self[price] = int(scaled)
        return cents


class TickCodec:
    """Packs ticks into `TickRow`s and back. Holds look-up tables only; not thread-safe."""

    def __init__(self) -> None:
        self._cents = _Cents()
        self._prices: list[Decimal] = []

    # -- encode ---------------------------------------------------------------------

    def encode(self, tick: Tick) -> TickRow:
        """The row for `tick`; ValueError when a value cannot be stored exactly."""
        m = self._matrix(tick)
        chain = bytes((FORMAT,)) + zlib.compress(_shuffle(np.diff(m, axis=1, prepend=0)), _LEVEL)
        return TickRow(
            ts=tick.ts,
            seq=tick.seq,
            closing=tick.closing,
            spx=tick.spx,
            vix=tick.vix,
            spx_expected_move=tick.spx_expected_move,
            spx_otm_bids=_otm_bids(m, tick.spx),
            spx_extrinsic=_atm_extrinsic(m, tick.spx) if len(tick.chain) else _MILLS_ZERO,
            chain=chain,
        )

    def _matrix(self, tick: Tick) -> np.ndarray:
        chain = tick.chain
        n = len(chain)
        calls = list(map(_CALL, chain))
        puts = list(map(_PUT, chain))
        cents = self._cents.__getitem__
        m = np.empty((_ROWS, n), dtype=np.int64)
        m[0] = np.fromiter(tick.strikes, np.int64, n)
        m[1] = np.fromiter(map(cents, map(_BID, calls)), np.int64, n)
        m[2] = np.fromiter(map(cents, map(_ASK, calls)), np.int64, n)
        m[3] = np.fromiter(map(cents, map(_BID, puts)), np.int64, n)
        m[4] = np.fromiter(map(cents, map(_ASK, puts)), np.int64, n)
        deltas = np.empty((2, n), dtype=np.float64)
        deltas[0] = np.fromiter(map(_DELTA, calls), np.float64, n)
        deltas[1] = np.fromiter(map(_DELTA, puts), np.float64, n)
        scaled = deltas * 1000.0
        rounded = np.rint(scaled)
        if n and not np.all(np.abs(scaled - rounded) < 1e-6):  # NaN fails too
            raise ValueError("a delta has more than three decimals (or is not a number)")
        m[5:] = rounded
        if n and (np.abs(m).max() >= 2**31 or (n > 1 and np.any(np.diff(m[0]) <= 0))):
            raise ValueError("strikes must ascend and every value fit in 32 bits")
        return m

    # -- decode ---------------------------------------------------------------------

    def decode(self, row: Mapping[str, Any]) -> Tick:
        """The tick of a `market_ticks` row (any mapping with its columns)."""
        chain, strikes = self.unpack_chain(row["chain"])
        return Tick(
            seq=row["seq"],
            ts=row["ts"],
            spx=row["spx"],
            vix=row["vix"],
            spx_expected_move=row["spx_expected_move"],
            chain=chain,
            strikes=strikes,
            closing=row["closing"],
        )

    def unpack_chain(self, blob: bytes) -> tuple[tuple[StrikeQuotes, ...], tuple[int, ...]]:
        """The chain and its strikes from a packed `chain` column."""
        if not blob or blob[0] != FORMAT:
            raise ValueError(f"unknown chain format {blob[:1]!r}")
        raw = zlib.decompress(blob[1:])
        if len(raw) % (4 * _ROWS):
            raise ValueError("a packed chain of the wrong length")
        n = len(raw) // (4 * _ROWS)
        m = np.cumsum(_unshuffle(raw).reshape(_ROWS, n).astype(np.int64), axis=1)
        top = int(m[1:5].max()) if n else 0
        if top >= len(self._prices):
            self._grow(top)
        price = self._prices.__getitem__
        strikes = tuple(m[0].tolist())
        deltas = (m[5:] / 1000.0).tolist()
        calls = map(OptionQuote, map(price, m[1].tolist()), map(price, m[2].tolist()), deltas[0])
        puts = map(OptionQuote, map(price, m[3].tolist()), map(price, m[4].tolist()), deltas[1])
        return tuple(map(StrikeQuotes, strikes, calls, puts)), strikes

    def _grow(self, top: int) -> None:
        size = max(2 * top, 4096)
        self._prices.extend(Decimal(c).scaleb(-2) for c in range(len(self._prices), size))


def _shuffle(m: np.ndarray) -> bytes:
    raw = m.astype("<i4").tobytes()
    return np.frombuffer(raw, np.uint8).reshape(-1, 4).T.tobytes()


def _unshuffle(raw: bytes) -> np.ndarray:
    planes = np.frombuffer(raw, np.uint8).reshape(4, -1)
    return np.ascontiguousarray(planes.T).view("<i4").reshape(-1)


def _otm_bids(m: np.ndarray, spx: Decimal) -> Decimal:
    """`otm_bids` from a packed matrix (a fifth of the time; the two must agree)."""
    strike_cents = m[0] * 100
    spx_cents = float(spx.scaleb(2))
    total = int(m[1][strike_cents > spx_cents].sum() + m[3][strike_cents < spx_cents].sum())
    return Decimal(total).scaleb(-2)


def _atm_extrinsic(m: np.ndarray, spx: Decimal) -> Decimal:
    """`atm_extrinsic` from a packed matrix with at least one strike."""
    spx_cents = spx.scaleb(2)
    i = int(np.argmin(np.abs(m[0] * 100 - float(spx_cents))))  # the first: the lower on a tie
    mids_x2 = int(m[1][i] + m[2][i] + m[3][i] + m[4][i])
    return (Decimal(mids_x2) / 2 - abs(spx_cents - int(m[0][i]) * 100)).scaleb(-2).quantize(_MILLS)


def otm_bids(tick: Tick) -> Decimal:
    """`spx_otm_bids` of `tick`: the bids of the calls struck above SPX and of the puts
    struck below it, summed (see the module docstring)."""
    spx = tick.spx
    total = sum([s.call.bid for s in tick.chain if s.strike > spx], _CENT)
    total += sum([s.put.bid for s in tick.chain if s.strike < spx], _CENT)
    return total.quantize(_CENT)


def atm_extrinsic(tick: Tick) -> Decimal:
    """`spx_extrinsic` of `tick`: the time value of the straddle at the strike nearest
    SPX, the lower one on a tie (see the module docstring); 0 for an empty chain."""
    strikes = tick.strikes
    if not strikes:
        return _MILLS_ZERO
    spx = tick.spx
    i = bisect_left(strikes, spx)
    if i == len(strikes) or (i > 0 and spx - strikes[i - 1] <= strikes[i] - spx):
        i -= 1
    s = tick.chain[i]
    mids = (s.call.bid + s.call.ask + s.put.bid + s.put.ask) / 2
    return (mids - abs(spx - s.strike)).quantize(_MILLS)


# -- the repository ---------------------------------------------------------------------

_UPSERT_SESSION = """
INSERT INTO market_sessions AS s (date, start_time, end_time, data_start_time, data_end_time, strikes)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (date) DO UPDATE SET
    data_start_time = LEAST(s.data_start_time, EXCLUDED.data_start_time),
    data_end_time = GREATEST(s.data_end_time, EXCLUDED.data_end_time),
    strikes = CASE WHEN EXCLUDED.strikes <@ s.strikes THEN s.strikes
                   ELSE ARRAY(SELECT DISTINCT k FROM unnest(s.strikes || EXCLUDED.strikes) AS k ORDER BY k)
              END,
    updated_at = now()
"""

_INSERT_TICKS = """
INSERT INTO market_ticks (session_date, ts, seq, closing, spx, vix, spx_expected_move,
                          spx_otm_bids, spx_extrinsic, chain)
SELECT $1, * FROM unnest($2::timestamptz[], $3::bigint[], $4::boolean[], $5::numeric[], $6::numeric[],
                         $7::numeric[], $8::numeric[], $9::numeric[], $10::bytea[])
ON CONFLICT (session_date, ts) DO NOTHING
"""

_COUNT_TICKS = "UPDATE market_sessions SET ticks = ticks + $2 WHERE date = $1"

_SESSION_COLUMNS = "date, start_time, end_time, data_start_time, data_end_time, ticks"
_TICK_COLUMNS = "ts, seq, closing, spx, vix, spx_expected_move, chain"


class TickStore:
    """The trio-facing repository of recorded market data; each call is one unit of work."""

    def __init__(self, db: Database, codec: TickCodec | None = None) -> None:
        self._db = db
        self._codec = codec or TickCodec()

    @property
    def codec(self) -> TickCodec:
        return self._codec

    # -- writing --------------------------------------------------------------------

    async def append(self, day: date, start: datetime, end: datetime, ticks: Sequence[Tick]) -> int:
        """Record `ticks` of the trading day `day` (regular hours `start`..`end`), and the
        session row; returns how many were new (a second recorded already is kept).

        Ticks that cannot be stored exactly raise ValueError before anything is written.
        """
        if not ticks:
            return 0
        rows: list[TickRow] = []
        for i, tick in enumerate(ticks):
            rows.append(self._codec.encode(tick))
            if i % _DECODE_CHUNK == _DECODE_CHUNK - 1:
                await trio.lowlevel.checkpoint()
        strikes = sorted(set().union(*(t.strikes for t in ticks)))
        first = min(r.ts for r in rows)
        last = max(r.ts for r in rows)
        columns = list(zip(*rows))
        return await self._db.run(_append, day, start, end, first, last, strikes, columns)

    # -- reading --------------------------------------------------------------------

    async def sessions(self) -> list[SessionRow]:
        """Every recorded session, by date (without their strikes)."""
        async def q(conn: Conn) -> list[Any]:
            return await conn.fetch(f"SELECT {_SESSION_COLUMNS} FROM market_sessions ORDER BY date")

        return [SessionRow(*r) for r in await self._db.run(q, transaction=False)]

    async def session(self, day: date) -> SessionRow | None:
        """The recorded session of `day` with its strikes, or None."""
        async def q(conn: Conn) -> Any:
            return await conn.fetchrow(
                f"SELECT {_SESSION_COLUMNS}, strikes FROM market_sessions WHERE date = $1", day)

        r = await self._db.run(q, transaction=False)
        return None if r is None else SessionRow(*r[:6], strikes=tuple(r["strikes"]))

    async def session_dates(self) -> list[date]:
        """The dates of every recorded session, ascending."""
        return [s.date for s in await self.sessions()]

    async def read_ticks(self, day: date, start: datetime, limit: int) -> list[Tick]:
        """Up to `limit` recorded ticks of `day` from `start` (inclusive), in time order."""
        async def q(conn: Conn) -> list[Any]:
            return await conn.fetch(
                f"SELECT {_TICK_COLUMNS} FROM market_ticks WHERE session_date = $1 AND ts >= $2 "
                "ORDER BY ts LIMIT $3", day, start, limit)

        return await self._decode_all(await self._db.run(q, transaction=False))

    async def tick_at(self, day: date, ts: datetime, lookback: timedelta) -> Tick | None:
        """The last tick of `day` at or before `ts`, if one is at most `lookback` older."""
        async def q(conn: Conn) -> Any:
            return await conn.fetchrow(
                f"SELECT {_TICK_COLUMNS} FROM market_ticks WHERE session_date = $1 AND ts <= $2 "
                "AND ts >= $3 ORDER BY ts DESC LIMIT 1", day, ts, ts - lookback)

        r = await self._db.run(q, transaction=False)
        return None if r is None else self._codec.decode(r)

    async def series(self, day: date) -> list[SeriesRow]:
        """Every recorded second of `day`: the scalar series, in time order."""
        async def q(conn: Conn) -> list[Any]:
            return await conn.fetch(
                "SELECT ts, spx, vix, spx_expected_move, spx_otm_bids, spx_extrinsic FROM market_ticks "
                "WHERE session_date = $1 ORDER BY ts", day)

        return [SeriesRow(*r) for r in await self._db.run(q, transaction=False)]

    async def storage(self) -> tuple[int, int]:
        """(ticks recorded, bytes `market_ticks` takes with its index and TOAST)."""
        async def q(conn: Conn) -> tuple[int, int]:
            n = await conn.fetchval("SELECT count(*) FROM market_ticks")
            size = await conn.fetchval("SELECT pg_total_relation_size('market_ticks')")
            return n, size

        return await self._db.run(q, transaction=False)

    async def _decode_all(self, records: list[Any]) -> list[Tick]:
        out = []
        for i, r in enumerate(records):
            out.append(self._codec.decode(r))
            if i % _DECODE_CHUNK == _DECODE_CHUNK - 1:
                await trio.lowlevel.checkpoint()
        return out


async def _append(conn: Conn, day: date, start: datetime, end: datetime, first: datetime, last: datetime,
                  strikes: list[int], columns: list[tuple[Any, ...]]) -> int:
    await conn.execute(_UPSERT_SESSION, day, start, end, first, last, strikes)
    status = await conn.execute(_INSERT_TICKS, day, *columns)
    inserted = int(status.rsplit(" ", 1)[-1])
    if inserted:
        await conn.execute(_COUNT_TICKS, day, inserted)
    return inserted
