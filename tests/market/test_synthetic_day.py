import hashlib
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import msgspec
import pytest

from odted.domain.chain import OptionQuote, Tick
from odted.market.calendar import TradingCalendar
from odted.market.synthetic import Jump, SyntheticConfig, SyntheticDay

DAY = date(2025, 1, 15)
NICKEL = Decimal("0.05")
DIME = Decimal("0.10")


def config(**kw) -> SyntheticConfig:
    return SyntheticConfig(**{"date": DAY, "seed": 7, **kw})


def digest(ticks: list[Tick]) -> str:
    return hashlib.sha256(msgspec.msgpack.encode(ticks)).hexdigest()


def sample(day: SyntheticDay) -> list[Tick]:
    """The open, a few minutes through the day, and the run into the close."""
    ticks = day.block(0, 30)
    for lo in range(1_800, day.n_ticks - 200, 3_600):
        ticks += day.block(lo, lo + 5)
    return ticks + day.block(day.n_ticks - 30, day.n_ticks)


def on_grid(price: Decimal) -> bool:
    return price % (NICKEL if price <= 3 else DIME) == 0


@pytest.fixture(scope="module")
def day(calendar: TradingCalendar) -> SyntheticDay:
    return SyntheticDay(config(), calendar)


@pytest.fixture(scope="module")
def ticks(day: SyntheticDay) -> list[Tick]:
    return sample(day)


def test_same_seed_gives_a_byte_identical_day(calendar: TradingCalendar):
    a = SyntheticDay(config(), calendar)
    b = SyntheticDay(config(), calendar)
    assert digest(sample(a)) == digest(sample(b))


def test_another_seed_or_date_gives_another_day(calendar: TradingCalendar, ticks: list[Tick]):
    other_seed = sample(SyntheticDay(config(seed=8), calendar))
    other_date = sample(SyntheticDay(config(date=date(2025, 1, 16)), calendar))
    assert digest(other_seed) != digest(ticks)
    assert [t.spx for t in other_seed[1:]] != [t.spx for t in ticks[1:]]
    assert [t.spx for t in other_date[1:]] != [t.spx for t in ticks[1:]]


def test_a_day_runs_from_the_open_to_the_close_second_by_second(day: SyntheticDay):
    assert day.n_ticks == 23_401
    first, last = day.tick_at(0), day.tick_at(day.n_ticks - 1)
    assert first.ts == datetime(2025, 1, 15, 14, 30, tzinfo=UTC)
    assert last.ts == datetime(2025, 1, 15, 21, tzinfo=UTC)
    assert (first.seq, last.seq) == (1, 23_401)
    assert first.spx == Decimal("5950.00") and first.vix == Decimal("15.80")


def test_only_the_close_second_is_the_closing_tick(ticks: list[Tick], day: SyntheticDay):
    assert [t.closing for t in ticks].count(True) == 1
    assert ticks[-1].closing and ticks[-1].ts == day.session.close_utc


def test_an_early_close_day_ends_at_1300(calendar: TradingCalendar):
    d = SyntheticDay(config(date=date(2024, 11, 29)), calendar)
    assert d.n_ticks == 12_601
    last = d.tick_at(d.n_ticks - 1)
    assert last.closing and last.ts == datetime(2024, 11, 29, 18, tzinfo=UTC)


def test_strikes_every_five_points_six_hundred_each_side_fixed_for_the_day(ticks: list[Tick]):
    strikes = ticks[0].strikes
    assert len(strikes) == 241
    assert (strikes[0], strikes[-1]) == (5350, 6550)
    assert all(b - a == 5 for a, b in zip(strikes, strikes[1:]))
    assert all(t.strikes == strikes and tuple(s.strike for s in t.chain) == strikes for t in ticks)


def quotes(t: Tick) -> list[OptionQuote]:
    return [q for s in t.chain for q in (s.call, s.put)]


def test_bids_are_below_asks_and_never_negative(ticks: list[Tick]):
    for t in ticks:
        for q in quotes(t):
            assert Decimal(0) <= q.bid < q.ask
            assert q.ask >= NICKEL


def test_every_price_is_on_the_spx_tick_grid(ticks: list[Tick]):
    for t in ticks:
        for q in quotes(t):
            assert on_grid(q.bid) and on_grid(q.ask), q
            assert q.bid.as_tuple().exponent == -2


def test_far_wings_quote_zero_bid_and_the_minimum_ask(ticks: list[Tick]):
    t = ticks[0]
    assert t.chain[0].put == OptionQuote(Decimal("0.00"), NICKEL, 0.0)
    assert t.chain[-1].call == OptionQuote(Decimal("0.00"), NICKEL, 0.0)


def test_deltas_run_zero_to_one_calls_falling_and_puts_rising_with_the_strike(ticks: list[Tick]):
    for t in ticks:
        calls = [s.call.delta for s in t.chain]
        puts = [s.put.delta for s in t.chain]
        assert all(0.0 <= d <= 1.0 for d in calls + puts)
        assert calls == sorted(calls, reverse=True)
        assert puts == sorted(puts)
        assert all(abs(c + p - 1.0) < 1e-9 for c, p in zip(calls, puts))
    opening = ticks[0]
    assert opening.chain[0].call.delta == 1.0 and opening.chain[-1].call.delta == 0.0
    assert 0.45 < opening.quote(5950, "C").delta < 0.55  # type: ignore[union-attr]


def test_puts_and_calls_agree_with_parity_within_the_spread(ticks: list[Tick]):
    for t in ticks:
        for s in t.chain:
            c, p = s.call, s.put
            gap = abs((c.mid - p.mid) - (t.spx - s.strike))
            assert gap <= ((c.ask - c.bid) + (p.ask - p.bid)) / 2 + Decimal("0.01"), (t.ts, s)


def test_puts_carry_a_skew_over_equidistant_calls(ticks: list[Tick]):
    t = ticks[0]
    put_100_down = t.quote(5850, "P")
    call_100_up = t.quote(6050, "C")
    assert put_100_down is not None and call_100_up is not None
    assert put_100_down.mid > 2 * call_100_up.mid


def test_spreads_widen_with_price_and_are_wide_relative_to_price_on_cheap_wings(ticks: list[Tick]):
    for t in ticks[:30]:
        for side in ("call", "put"):
            qs = sorted((getattr(s, side) for s in t.chain), key=lambda q: q.mid)
            spreads = [q.ask - q.bid for q in qs]
            for i in range(1, len(spreads)):  # non-decreasing up to a dime of snapping
                assert spreads[i] >= max(spreads[:i]) - DIME
            cheap = [q for q in qs if Decimal("0.05") < q.mid < Decimal("1")]
            atm = [q for q in qs if 0.4 <= q.delta <= 0.6]
            assert cheap and atm
            assert all((q.ask - q.bid) / q.mid >= Decimal("0.09") for q in cheap)
            assert all((q.ask - q.bid) / q.mid < Decimal("0.05") for q in atm)
            assert max(spreads) > 10 * min(spreads)


def test_mids_move_every_second(ticks: list[Tick]):
    pairs = [(a, b) for a, b in zip(ticks, ticks[1:]) if b.seq == a.seq + 1]
    assert len(pairs) > 50
    for a, b in pairs:
        moved = sum(x.call.mid != y.call.mid or x.put.mid != y.put.mid for x, y in zip(a.chain, b.chain))
        assert moved >= 1, b.ts
        assert a.spx != b.spx
    early = pairs[:25]
    average = sum(
        sum(x.call.mid != y.call.mid for x, y in zip(a.chain, b.chain)) for a, b in early
    ) / len(early)
    assert average > 50


def test_expected_move_is_a_fraction_from_vix_and_time_left(ticks: list[Tick]):
    first = ticks[0]
    assert first.spx_expected_move == Decimal("0.0100")  # 0.158 / sqrt(252)
    assert first.spx_expected_move.as_tuple().exponent == -4
    moves = [t.spx_expected_move for t in ticks]
    assert moves[-1] == 0
    assert moves[-31] < moves[len(moves) // 2] < moves[0]


def test_time_value_decays_to_intrinsic_at_the_close(ticks: list[Tick]):
    close = ticks[-1]
    atm = min(close.chain, key=lambda s: abs(s.strike - close.spx))
    for q, intrinsic in ((atm.call, max(close.spx - atm.strike, 0)), (atm.put, max(atm.strike - close.spx, 0))):
        assert q.bid <= intrinsic <= q.ask


def test_a_jump_moves_spx_by_its_size_at_its_second_and_lifts_vix(calendar: TradingCalendar):
    crash = SyntheticDay(config(jumps=(Jump(time(11, 0), -5.0),)), calendar)
    calm = SyntheticDay(config(), calendar)
    j = 90 * 60  # 11:00 is 90 minutes after the open
    before, at = crash.block(j - 1, j + 1)
    assert at.ts == datetime(2025, 1, 15, 16, tzinfo=UTC)
    assert abs(float(at.spx / before.spx) - 0.95) < 0.002
    assert at.vix > before.vix * Decimal("1.3")
    assert digest(crash.block(j - 20, j)) == digest(calm.block(j - 20, j))
    assert crash.tick_at(j + 60).spx < calm.tick_at(j + 60).spx * Decimal("0.96")


def test_a_jump_outside_the_session_is_refused(calendar: TradingCalendar):
    with pytest.raises(ValueError, match="not within the session"):
        SyntheticDay(config(date=date(2024, 11, 29), jumps=(Jump(time(14, 0), -3.0),)), calendar)


def test_drift_trends_the_day(calendar: TradingCalendar):
    up = SyntheticDay(config(drift=0.02, volatility_scale=0.0), calendar)
    close = up.tick_at(up.n_ticks - 1).spx
    assert abs(close / Decimal("5950.00") - Decimal("1.0202")) < Decimal("0.0005")


def test_starting_mid_day_gives_the_suffix_of_the_full_day(calendar: TradingCalendar, day: SyntheticDay):
    late = SyntheticDay(config(start_time=time(15, 58)), calendar)
    from_start = list(late.ticks())
    assert len(from_start) == 121
    assert from_start[0].ts == datetime(2025, 1, 15, 20, 58, tzinfo=UTC)
    assert digest(from_start) == digest(day.block(day.n_ticks - 121, day.n_ticks))
    assert digest(list(day.ticks(from_seq=day.n_ticks - 120))) == digest(from_start)


def test_a_start_before_the_open_starts_at_the_open(calendar: TradingCalendar):
    early = SyntheticDay(config(start_time=time(8, 0)), calendar)
    assert next(early.ticks()).ts == datetime(2025, 1, 15, 14, 30, tzinfo=UTC)


def test_the_next_day_opens_at_the_close_and_numbers_on(calendar: TradingCalendar):
    friday = SyntheticDay(config(date=date(2024, 11, 29), jumps=()), calendar)
    monday = friday.next_day()
    assert monday.date == date(2024, 12, 2)
    assert monday.tick_at(0).spx == friday.tick_at(friday.n_ticks - 1).spx
    assert monday.tick_at(0).seq == friday.last_seq + 1 == 12_602


def test_a_non_trading_day_is_refused(calendar: TradingCalendar):
    with pytest.raises(ValueError, match="not a trading day"):
        SyntheticDay(config(date=date(2025, 1, 18)), calendar)


def test_config_decodes_from_toml_with_max_speed_and_jumps():
    text = b"""
seed = 3
date = 2025-01-15
start_time = 10:00:00
spx_open = "6001.25"
speed = "max"
jumps = [{time = 11:30:00, pct = -4.5}]
on_close = "end"
"""
    cfg = msgspec.toml.decode(text, type=SyntheticConfig)
    assert cfg.speed == "max" and cfg.spx_open == Decimal("6001.25")
    assert cfg.jumps == (Jump(time(11, 30), -4.5),)
    assert msgspec.toml.decode(b"speed = 60", type=SyntheticConfig).speed == 60.0


@pytest.mark.parametrize(
    "text",
    [b"sped = 2", b"speed = -1", b'speed = "fast"', b"seed = -1", b"strike_step = 0", b'on_close = "stop"'],
)
def test_config_refuses_unknown_or_invalid_knobs(text: bytes):
    with pytest.raises(msgspec.ValidationError):
        msgspec.toml.decode(text, type=SyntheticConfig)


def test_default_date_is_the_session_in_progress_or_next(calendar: TradingCalendar):
    d = SyntheticDay(SyntheticConfig(), calendar, today=date(2025, 1, 15))
    assert d.date == DAY
    fallback = SyntheticDay(SyntheticConfig(), calendar)
    assert calendar.is_trading_day(fallback.date)
    assert fallback.date >= (datetime.now(UTC) - timedelta(days=1)).date()
