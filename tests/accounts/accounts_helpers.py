"""Helpers the accounts tests import (fixtures come from `tests/live/live_fixtures.py`)."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any


async def new_account(env, *, capital: str = "100000", name: str | None = None, token: str | None = None,
                      **fields: Any):
    """A fresh user (unless `token` is given), a client of theirs, and a new account."""
    if token is None:
        _, token = await env.user()
    c = env.client(token)
    r = await c.post("/accounts", json={"name": name or f"acct {uuid.uuid4().hex[:8]}",
                                        "starting_capital": capital, **fields})
    assert r.status_code == 201, r.text
    return c, r.json()


async def open_session(c, account: dict, *, status: int = 201) -> dict:
    r = await c.post(f"/accounts/{account['id']}/sessions", json={})
    assert r.status_code == status, r.text
    return r.json()


async def settled_earlier_day(env, account: dict, closing_balance: Decimal,
                              day: dt.date = dt.date(2025, 1, 14)) -> uuid.UUID:
    """Store a session of an earlier trading day and settle it through the live-trading
    repository's settlement, which carries its closing balance into the account."""
    from odted.store import live as repo

    sim_id = uuid.uuid4()
    start = dt.datetime.combine(day, dt.time(14, 30), tzinfo=dt.UTC)
    end = dt.datetime.combine(day, dt.time(21, 0), tzinfo=dt.UTC)

    async def unit(conn) -> None:
        user_id = await conn.fetchval("SELECT user_id FROM accounts WHERE id = $1", uuid.UUID(account["id"]))
        await conn.execute(
            "INSERT INTO simulations (id, user_id, account_id, date, starting_capital, status, start_time,"
            " end_time, created_at) VALUES ($1, $2, $3, $4, $5, 'open', $6, $7, $6)",
            sim_id, user_id, uuid.UUID(account["id"]), day, Decimal(account["cash_balance"]), start, end)
        await repo.settle_simulation(conn, sim_id, end, closing_balance)

    await env.db.run(unit)
    return sim_id
