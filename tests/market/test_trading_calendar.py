from datetime import UTC, date, datetime, time

import pytest

from odted.market.calendar import NEW_YORK, CalendarRangeError, TradingCalendar, ny_datetime, trading_date


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_regular_winter_session_is_1430_to_2100_utc(calendar: TradingCalendar):
    s = calendar.session(date(2025, 1, 15))
    assert s is not None
    assert (s.open_utc, s.close_utc, s.early_close) == (utc(2025, 1, 15, 14, 30), utc(2025, 1, 15, 21), False)
    assert s.seconds == 23_400


def test_summer_session_is_1330_to_2000_utc(calendar: TradingCalendar):
    s = calendar.session(date(2024, 8, 5))
    assert s is not None
    assert (s.open_utc, s.close_utc) == (utc(2024, 8, 5, 13, 30), utc(2024, 8, 5, 20))


def test_holidays_and_weekends_have_no_session(calendar: TradingCalendar):
    for day in (date(2024, 12, 25), date(2025, 1, 1), date(2025, 7, 4), date(2025, 1, 18)):
        assert not calendar.is_trading_day(day)
        assert calendar.session(day) is None


def test_the_national_day_of_mourning_of_2025_01_09_is_closed(calendar: TradingCalendar):
    assert not calendar.is_trading_day(date(2025, 1, 9))
    assert calendar.next_trading_day(date(2025, 1, 8)) == date(2025, 1, 10)


@pytest.mark.parametrize("day", [date(2024, 11, 29), date(2024, 12, 24), date(2025, 7, 3)])
def test_early_closes_are_at_1300_new_york(calendar: TradingCalendar, day: date):
    s = calendar.session(day)
    assert s is not None and s.early_close
    assert s.close_utc.astimezone(NEW_YORK).time() == time(13, 0)
    assert s.open_utc.astimezone(NEW_YORK).time() == time(9, 30)
    assert s.seconds == 12_600


def test_the_day_before_an_early_close_is_a_full_day(calendar: TradingCalendar):
    s = calendar.session(date(2024, 11, 27))
    assert s is not None and not s.early_close


def test_spring_dst_change_moves_the_utc_open_from_1430_to_1330(calendar: TradingCalendar):
    before = calendar.session(date(2025, 3, 7))  # Friday before the second Sunday of March
    after = calendar.session(date(2025, 3, 10))
    assert before is not None and after is not None
    assert before.open_utc == utc(2025, 3, 7, 14, 30)
    assert after.open_utc == utc(2025, 3, 10, 13, 30)
    assert after.close_utc == utc(2025, 3, 10, 20)


def test_autumn_dst_change_moves_the_utc_open_from_1330_to_1430(calendar: TradingCalendar):
    before = calendar.session(date(2025, 10, 31))
    after = calendar.session(date(2025, 11, 3))
    assert before is not None and after is not None
    assert before.open_utc == utc(2025, 10, 31, 13, 30)
    assert after.open_utc == utc(2025, 11, 3, 14, 30)


def test_next_and_previous_trading_day_skip_weekends_and_holidays(calendar: TradingCalendar):
    assert calendar.next_trading_day(date(2024, 12, 24)) == date(2024, 12, 26)
    assert calendar.previous_trading_day(date(2024, 12, 26)) == date(2024, 12, 24)
    assert calendar.next_trading_day(date(2025, 1, 17)) == date(2025, 1, 21)  # MLK Monday
    assert calendar.previous_trading_day(date(2025, 1, 21)) == date(2025, 1, 17)
    assert calendar.next_trading_day(date(2025, 1, 18)) == date(2025, 1, 21)


def test_session_at_judges_the_new_york_date(calendar: TradingCalendar):
    # 02:00 UTC on the 16th is still the evening of the 15th in New York.
    s = calendar.session_at(utc(2025, 1, 16, 2))
    assert s is not None and s.date == date(2025, 1, 15)
    assert trading_date(utc(2025, 1, 16, 2)) == date(2025, 1, 15)
    assert calendar.session_at(utc(2025, 1, 18, 15)) is None


def test_is_open_from_the_open_second_until_before_the_close(calendar: TradingCalendar):
    assert not calendar.is_open(utc(2025, 1, 15, 14, 29, 59))
    assert calendar.is_open(utc(2025, 1, 15, 14, 30))
    assert calendar.is_open(utc(2025, 1, 15, 20, 59, 59))
    assert not calendar.is_open(utc(2025, 1, 15, 21))
    assert not calendar.is_open(utc(2024, 11, 29, 18))  # early close at 13:00 ET


def test_current_or_next_session_rolls_after_the_close_and_over_weekends(calendar: TradingCalendar):
    assert calendar.current_or_next_session(utc(2025, 1, 15, 12)).date == date(2025, 1, 15)
    assert calendar.current_or_next_session(utc(2025, 1, 15, 20)).date == date(2025, 1, 15)
    assert calendar.current_or_next_session(utc(2025, 1, 15, 21)).date == date(2025, 1, 16)
    assert calendar.current_or_next_session(utc(2025, 1, 18, 15)).date == date(2025, 1, 21)


def test_sessions_lists_a_range_in_order(calendar: TradingCalendar):
    days = [s.date for s in calendar.sessions(date(2024, 12, 23), date(2025, 1, 3))]
    assert days == [
        date(2024, 12, 23), date(2024, 12, 24), date(2024, 12, 26), date(2024, 12, 27),
        date(2024, 12, 30), date(2024, 12, 31), date(2025, 1, 2), date(2025, 1, 3),
    ]


def test_dates_outside_the_loaded_range_raise_rather_than_guess(calendar: TradingCalendar):
    with pytest.raises(CalendarRangeError):
        calendar.is_trading_day(date(1990, 1, 2))
    with pytest.raises(CalendarRangeError):
        calendar.session(date(2099, 1, 2))


def test_a_calendar_can_be_built_from_sessions_without_the_library():
    s = TradingCalendar.load(date(2025, 1, 13), date(2025, 1, 17)).session(date(2025, 1, 15))
    assert s is not None
    small = TradingCalendar([s], first_day=date(2025, 1, 15), last_day=date(2025, 1, 15))
    assert small.is_trading_day(date(2025, 1, 15))
    assert ny_datetime(date(2025, 1, 15), time(9, 30)) == s.open_utc
