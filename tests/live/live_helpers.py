"""Helpers the live tests import (fixtures live in this folder's conftest.py)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import trio

DAY = dt.date(2025, 1, 15)


def osi(strike: int, right: str) -> str:
    return f"SPXW  {DAY:%y%m%d}{right}{strike * 1000:08d}"


def leg(strike: int, right: str, action: str, qty: str = "1") -> dict[str, str]:
    return {"instrument": osi(strike, right), "quantity": qty, "action": action}


def mid(tick, strike: int, right: str) -> Decimal:
    q = tick.quote(strike, right)
    return (q.bid + q.ask) / 2


def on_grid(x: Decimal, step: Decimal) -> Decimal:
    return (x / step).to_integral_value() * step


async def settle_down(env) -> None:
    """Wait until the actors have taken the last published tick and committed its work."""
    with trio.fail_after(10):
        await env.service.supervisor.wait_tick_done(env.market.seq)
