import datetime as dt
from decimal import Decimal

import msgspec
import pytest

from md_fixtures import DAY, calendar, config, synthetic_day, ticks_of  # noqa: F401 - fixtures
from odted.domain.chain import OptionQuote, StrikeQuotes, Tick
from odted.store.ticks import TickCodec, TickStore, atm_extrinsic, otm_bids

UTC = dt.UTC
OPEN = dt.datetime(2025, 1, 15, 14, 30, tzinfo=UTC)
CLOSE = dt.datetime(2025, 1, 15, 21, 0, tzinfo=UTC)


def quote(bid: str, ask: str, delta: float) -> OptionQuote:
    return OptionQuote(Decimal(bid), Decimal(ask), delta)


def small_tick(seq: int = 1, spx: str = "5952.00", **kw) -> Tick:
    chain = [
        StrikeQuotes(5945, quote("8.10", "8.30", 0.61), quote("1.20", "1.30", 0.39)),
        StrikeQuotes(5950, quote("4.20", "4.40", 0.523), quote("2.60", "2.80", 0.477)),
        StrikeQuotes(5955, quote("1.70", "1.85", 0.41), quote("5.00", "5.20", 0.59)),
    ]
    return Tick.build(seq, kw.pop("ts", OPEN + dt.timedelta(seconds=seq)), Decimal(spx), Decimal("15.80"),
                      Decimal("0.0048"), kw.pop("chain", chain), **kw)


def test_a_packed_tick_decodes_to_an_equal_tick(calendar):
    codec = TickCodec()
    day = synthetic_day(calendar)
    ticks = day.block(0, 50) + [day.tick_at(day.n_ticks - 1), small_tick(), small_tick(chain=[])]
    for tick in ticks:
        row = codec.encode(tick)
        back = codec.decode(row._asdict())
        assert back == tick
        assert msgspec.json.encode(back) == msgspec.json.encode(tick)  # the same digits too
    assert codec.decode(codec.encode(ticks[50])._asdict()).closing


def test_the_packed_series_agree_with_their_definitions(calendar):
    codec = TickCodec()
    day = synthetic_day(calendar)
    ticks = day.block(0, 30) + day.block(12_000, 12_030) + [day.tick_at(day.n_ticks - 1)]
    ticks += [small_tick(spx=spx) for spx in ("5952.00", "5952.50", "5950.00", "5940.01", "5999.99")]
    for tick in ticks + [small_tick(chain=[])]:
        row = codec.encode(tick)
        assert (str(row.spx_otm_bids), str(row.spx_extrinsic)) == (str(otm_bids(tick)), str(atm_extrinsic(tick)))


def test_a_241_strike_chain_packs_into_well_under_a_kilobyte(calendar):
    codec = TickCodec()
    ticks = ticks_of(calendar, n=100, start=dt.time(11, 0))
    sizes = [len(codec.encode(t).chain) for t in ticks]
    assert len(ticks[0].chain) == 241
    assert max(sizes) < 800, sizes


@pytest.mark.parametrize("bad", [
    {"bid": Decimal("4.205")},
    {"ask": Decimal("-0.05")},
    {"delta": 0.5234},
    {"delta": float("nan")},
])
def test_values_that_cannot_be_stored_exactly_are_refused(bad):
    q = msgspec.structs.replace(quote("4.20", "4.40", 0.523), **bad)
    tick = small_tick(chain=[StrikeQuotes(5950, q, quote("2.60", "2.80", 0.477))])
    with pytest.raises(ValueError):
        TickCodec().encode(tick)


def test_otm_bids_sum_the_calls_above_and_the_puts_below_spx():
    # SPX 5952: calls 5955 (1.70) are OTM; puts 5945 (1.20) and 5950 (2.60) are OTM.
    assert otm_bids(small_tick()) == Decimal("5.50")
    # SPX exactly on a strike: that strike's options are neither.
    assert otm_bids(small_tick(spx="5950.00")) == Decimal("2.90")
    assert otm_bids(small_tick(chain=[])) == Decimal("0.00")


def test_extrinsic_is_the_time_value_of_the_straddle_nearest_spx():
    # Nearest 5952 is 5950: mids 4.30 + 2.70 = 7.00, intrinsic 2.00.
    assert atm_extrinsic(small_tick()) == Decimal("5.000")
    # 5952.50 is as near 5950 as 5955: the lower strike.
    assert atm_extrinsic(small_tick(spx="5952.50")) == Decimal("4.500")
    # 5953: 5955 is nearer: mids 1.775 + 5.10 = 6.875, intrinsic 2.00.
    assert atm_extrinsic(small_tick(spx="5953.00")) == Decimal("4.875")
    assert str(atm_extrinsic(small_tick(chain=[]))) == "0.000"


async def test_appended_ticks_read_back_equal_with_their_session(db, calendar):
    store = TickStore(db)
    ticks = ticks_of(calendar, n=30, start=dt.time(10, 0))
    assert await store.append(DAY, OPEN, CLOSE, ticks[:20]) == 20
    assert await store.append(DAY, OPEN, CLOSE, ticks[10:]) == 10  # the first recording of a second wins

    got = await store.read_ticks(DAY, ticks[0].ts, 100)
    assert got == ticks
    assert await store.read_ticks(DAY, ticks[25].ts, 3) == ticks[25:28]

    (session,) = await store.sessions()
    assert (session.date, session.start_time, session.end_time) == (DAY, OPEN, CLOSE)
    assert (session.data_start_time, session.data_end_time, session.ticks) == (ticks[0].ts, ticks[-1].ts, 30)
    assert (await store.session(DAY)).strikes == ticks[0].strikes
    assert await store.session_dates() == [DAY]
    assert await store.session(dt.date(2025, 1, 14)) is None


async def test_strikes_of_a_session_are_every_strike_any_tick_quoted(db):
    store = TickStore(db)
    a = small_tick(1)
    b = small_tick(2, chain=[StrikeQuotes(5960, quote("0.50", "0.60", 0.2), quote("8.00", "8.20", 0.8))])
    await store.append(DAY, OPEN, CLOSE, [a])
    await store.append(DAY, OPEN, CLOSE, [b])
    assert (await store.session(DAY)).strikes == (5945, 5950, 5955, 5960)


async def test_a_snapshot_is_the_last_tick_within_the_lookback(db):
    store = TickStore(db)
    await store.append(DAY, OPEN, CLOSE, [small_tick(1), small_tick(5)])
    at = OPEN + dt.timedelta(seconds=3)
    assert (await store.tick_at(DAY, at, dt.timedelta(seconds=60))).seq == 1
    assert (await store.tick_at(DAY, at + dt.timedelta(seconds=2), dt.timedelta(seconds=60))).seq == 5
    assert await store.tick_at(DAY, at, dt.timedelta(seconds=1)) is None
    assert await store.tick_at(DAY, OPEN, dt.timedelta(seconds=60)) is None


async def test_series_are_read_without_the_chains(db, calendar):
    store = TickStore(db)
    ticks = ticks_of(calendar, n=5)
    await store.append(DAY, OPEN, CLOSE, ticks)
    rows = await store.series(DAY)
    assert [r.ts for r in rows] == [t.ts for t in ticks]
    assert [(r.spx, r.vix, r.spx_expected_move) for r in rows] == [
        (t.spx, t.vix, t.spx_expected_move) for t in ticks]
    assert [r.spx_otm_bids for r in rows] == [otm_bids(t) for t in ticks]
    assert [r.spx_extrinsic for r in rows] == [atm_extrinsic(t) for t in ticks]


async def test_a_recorded_tick_takes_under_a_kilobyte_of_database(db, calendar):
    store = TickStore(db)
    ticks = ticks_of(calendar, n=1000, start=dt.time(12, 0))
    for i in range(0, len(ticks), 250):
        await store.append(DAY, OPEN, CLOSE, ticks[i:i + 250])
    n, size = await store.storage()
    assert n == 1000
    per_tick = size / n
    print(f"recorded tick: {per_tick:.0f} bytes (table, index, TOAST)")
    assert per_tick < 1024
