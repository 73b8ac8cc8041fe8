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
