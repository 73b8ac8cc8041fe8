"""Helpers the bots tests import (fixtures come from `bots_fixtures.py`)."""

from __future__ import annotations

import copy
import uuid
from typing import Any

SPREAD: dict[str, Any] = {
    "legs": [
        {"direction": "sell", "type": "put", "qty": 1, "strike": {"method": "delta", "value": 0.3}},
        {"direction": "buy", "type": "put", "qty": 1, "strike": {"method": "delta", "value": 0.2}},
    ],
    "entry": {"times": ["10:00"]},
    "exit": {"profit_target_pct": 50, "time": "15:55"},
}


def spread(**exit_changes: Any) -> dict[str, Any]:
    """The walkthrough's 30/20-delta put spread, with exit fields changed."""
    config = copy.deepcopy(SPREAD)
    config["exit"].update(exit_changes)
    return config


async def save_strategy(c, config: dict[str, Any] | None = None, *, status: int = 201, **fields: Any) -> dict:
    r = await c.post("/strategies", json={"config": config or SPREAD, **fields})
    assert r.status_code == status, r.text
    return r.json()


async def new_bot(env, *, token: str | None = None, config: dict[str, Any] | None = None,
                  capital: str = "25000", name: str | None = None, **fields: Any):
    """A user (unless `token` is given), their client, a saved strategy and a bot of it."""
    if token is None:
        _, token = await env.user()
    c = env.client(token)
    r = await c.post("/strategies", json={"config": config or SPREAD})
    assert r.status_code in (200, 201), r.text
    body = {"strategy_id": r.json()["id"], "name": name or f"bot {uuid.uuid4().hex[:8]}",
            "starting_capital": capital, **fields}
    r = await c.post("/bots", json=body)
    assert r.status_code == 201, r.text
    return c, r.json()


def goto(env, hh: int, mm: int, ss: int = 0):
    """Publish the synthetic day's tick at New York hh:mm:ss."""
    import datetime as dt

    from odted.market.calendar import ny_datetime

    day = env.market.day
    ts = ny_datetime(day.date, dt.time(hh, mm, ss)).astimezone(dt.timezone.utc)
    env.market.index = int((ts - day.session.open_utc).total_seconds()) - 1
    return env.market.step()


async def settle(env) -> None:
    """Wait until every actor has taken the last published tick and committed its work."""
    import trio

    with trio.fail_after(20):
        await env.service.supervisor.wait_tick_done(env.market.seq)


def flat_spread_quotes(tick, legs, net_credit, width=None):
    """Quotes for the short and long put of a credit spread's `legs` (OrderLeg Structs or
    wire dicts) whose credit mid is `net_credit`, each `width` wide."""
    from decimal import Decimal

    width = Decimal("0.10") if width is None else width

    def strike(leg) -> int:
        instrument = leg["instrument"] if isinstance(leg, dict) else leg.instrument
        return int(instrument[-8:]) // 1000

    def action(leg) -> str:
        return leg["action"] if isinstance(leg, dict) else leg.action

    ks = strike(next(leg for leg in legs if action(leg) == "sell to open"))
    kl = strike(next(leg for leg in legs if action(leg) == "buy to open"))
    lq = tick.quote(kl, "P")
    long_mid = (lq.bid + lq.ask) / 2
    short_mid = long_mid + Decimal(net_credit)
    return {(ks, "P"): (str(short_mid - width / 2), str(short_mid + width / 2)),
            (kl, "P"): (str(long_mid - width / 2), str(long_mid + width / 2))}
