"""Fixtures of the market tests: the calendar (loaded once) and small tick builders."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from odted.domain.chain import Tick
from odted.market.calendar import TradingCalendar, default_calendar

T0 = datetime(2025, 1, 15, 14, 30, tzinfo=UTC)


@pytest.fixture(scope="session")
def calendar() -> TradingCalendar:
    return default_calendar()


@pytest.fixture
def bare_tick() -> Callable[..., Tick]:
    """Build a tick with an empty chain; see `make_bare_tick`."""
    return make_bare_tick


def make_bare_tick(seq: int, ts: datetime | None = None, *, closing: bool = False) -> Tick:
    """A tick with an empty chain, `seq` seconds after 2025-01-15 09:30 ET unless `ts`."""
    return Tick.build(
        seq=seq,
        ts=ts or T0 + timedelta(seconds=seq),
        spx=Decimal("5950.00"),
        vix=Decimal("15.80"),
        spx_expected_move=Decimal("0.0048"),
        chain=[],
        closing=closing,
    )
