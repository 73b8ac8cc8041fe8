"""Helpers the reliability tests import: a user with one of everything (so the fuzzer and
the cross-user checks reach every route's deep paths), and a snapshot of the database to
prove that a refused request changed nothing."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx

from odted.config import Config, load_config

from bots_helpers import SPREAD
from live_helpers import leg

__all__ = ["World", "populate", "snapshot", "PATH_PARAMS", "unlimited_config"]


@dataclass
class World:
    """One user's objects: a `/live` simulation with a pending and a filled order, an
    account with an open session and its orders, a private and a public strategy, a bot
    and its running session."""

    user_id: uuid.UUID
    email: str
    token: str
    live_id: str
    live_order_id: str
    account_id: str
    session_id: str
    session_order_id: str
    strategy_id: str
    public_strategy_id: str
    bot_id: str
    bot_session_id: str

    def path_params(self, path: str = "/live") -> dict[str, str]:
        """The value of every path parameter of `path` (an OpenAPI path), for this user's objects."""
        bots = path.startswith("/bots/")
        return {
            "account_id": self.account_id, "bot_id": self.bot_id, "strategy_id": self.strategy_id,
            "session_id": self.bot_session_id if bots else self.session_id,
            "order_id": self.session_order_id if path.startswith("/accounts/") else self.live_order_id,
            "day": "2025-01-15", "timestamp": "2025-01-15T14:30:00",
        }

    def routes_with_ids(self) -> list[tuple[str, str, Any]]:
        """(method, path, body) for every route that names one of this user's objects."""
        a = f"/accounts/{self.account_id}"
        s = f"{a}/sessions/{self.session_id}"
        b = f"/bots/{self.bot_id}"
        bs = f"{b}/sessions/{self.bot_session_id}"
        st = f"/strategies/{self.strategy_id}"
        order = order_body(resting_strike(None))
        out: list[tuple[str, str, Any]] = [
            ("GET", f"/live/orders/{self.live_order_id}", None),
            ("DELETE", f"/live/orders/{self.live_order_id}", None),
            ("PUT", "/live/orders", {**order, "order_id": self.live_order_id}),
            ("GET", a, None), ("PATCH", a, {"name": "taken over"}), ("DELETE", a, None),
            ("GET", f"{a}/sessions", None), ("POST", f"{a}/sessions", {}),
            ("GET", f"{a}/sessions/current", None), ("GET", f"{a}/sessions/head", None),
            ("GET", s, None), ("PATCH", s, {}), ("DELETE", s, None),
            ("GET", f"{s}/orders", None), ("POST", f"{s}/orders", order),
            ("POST", f"{s}/orders/dry-run", order), ("PUT", f"{s}/orders", {**order, "order_id": self.session_order_id}),
            ("GET", f"{s}/orders/{self.session_order_id}", None), ("DELETE", f"{s}/orders/{self.session_order_id}", None),
            ("GET", f"{s}/positions", None), ("GET", f"{s}/transactions", None), ("GET", f"{s}/history", None),
            ("GET", st, None), ("PATCH", st, {"privacy": "public"}), ("DELETE", st, None),
            ("GET", b, None), ("PATCH", b, {"name": "taken over"}), ("DELETE", b, None),
            ("GET", f"{b}/summary", None), ("GET", f"{b}/sessions", None), ("POST", f"{b}/sessions", None),
            ("GET", bs, None), ("DELETE", bs, None), ("POST", f"{bs}/cancel-all-orders", None),
            ("GET", f"{bs}/decision-log", None), ("GET", f"{bs}/financials", None),
            ("GET", f"{bs}/orders", None), ("GET", f"{bs}/orders/{self.session_order_id}", None),
            ("GET", f"{bs}/positions", None), ("GET", f"{bs}/transactions", None), ("GET", f"{bs}/history", None),
        ]
        return out


def resting_strike(tick) -> int:
    """A call strike far out of the money: a 0.05 bid on it rests."""
    return 6300


def order_body(strike: int, *, price: str = "0.05", action: str = "buy to open") -> dict[str, Any]:
    return {"type": "limit", "price": price, "price_effect": "debit", "legs": [leg(strike, "C", action)]}


async def populate(env, *, email: str | None = None) -> World:
    """A new user with one of everything."""
    email = email or f"{uuid.uuid4().hex[:10]}@example.com"
    user_id, token = await env.user(email)
    async with env.client(token) as c:
        r = await c.post("/live", json={"starting_capital": "100000", "description": "fuzzed"})
        assert r.status_code == 201, r.text
        live_id = r.json()["id"]
        strike = near_money(env)
        r = await c.post("/live/orders", json={"type": "market", "legs": [leg(strike, "C", "buy to open")]})
        assert r.status_code == 201 and r.json()["status"] == "filled", r.text
        r = await c.post("/live/orders", json=order_body(strike + 100))
        assert r.status_code == 201 and r.json()["status"] == "pending", r.text
        live_order_id = r.json()["id"]

        r = await c.post("/accounts", json={"name": f"acct {uuid.uuid4().hex[:6]}", "starting_capital": "50000"})
        assert r.status_code == 201, r.text
        account_id = r.json()["id"]
        r = await c.post(f"/accounts/{account_id}/sessions", json={})
        assert r.status_code == 201, r.text
        session_id = r.json()["id"]
        base = f"/accounts/{account_id}/sessions/{session_id}"
        r = await c.post(f"{base}/orders", json={"type": "market", "legs": [leg(strike, "C", "buy to open")]})
        assert r.status_code == 201, r.text
        r = await c.post(f"{base}/orders", json=order_body(strike + 100))
        assert r.status_code == 201 and r.json()["status"] == "pending", r.text
        session_order_id = r.json()["id"]

        r = await c.post("/strategies", json={"config": SPREAD})
        assert r.status_code == 201, r.text
        strategy_id = r.json()["id"]
        public = {**SPREAD, "entry": {"times": ["11:00"]}}
        r = await c.post("/strategies", json={"config": public, "privacy": "public"})
        assert r.status_code == 201, r.text
        public_strategy_id = r.json()["id"]
        r = await c.post("/bots", json={"strategy_id": strategy_id, "name": f"bot {uuid.uuid4().hex[:6]}",
                                        "starting_capital": "25000"})
        assert r.status_code == 201, r.text
        bot_id = r.json()["id"]
        r = await c.post(f"/bots/{bot_id}/sessions")
        assert r.status_code == 201, r.text
        bot_session_id = r.json()["id"]
    return World(user_id, email, token, live_id, live_order_id, account_id, session_id, session_order_id,
                 strategy_id, public_strategy_id, bot_id, bot_session_id)


def near_money(env) -> int:
    """The strike nearest the money on the latest tick (multiple of 5)."""
    tick = env.market.current()
    return int(round(tick.spx / 5) * 5)


PATH_PARAMS = ("account_id", "session_id", "order_id", "bot_id", "strategy_id", "day", "timestamp")


async def snapshot(db) -> dict[str, list[tuple]]:
    """Every row of every table of the public schema, for before/after comparisons."""
    async def read(conn) -> dict[str, list[tuple]]:
        tables = await conn.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
            " AND table_type = 'BASE TABLE' ORDER BY table_name")
        out = {}
        for t in tables:
            rows = await conn.fetch(f'SELECT * FROM "{t["table_name"]}"')
            out[t["table_name"]] = sorted((tuple(r.values()) for r in rows), key=repr)
        return out

    return await db.run(read)


def unlimited_config(tmp_path) -> Config:
    """The test config with rate limits far above what a fuzzer spends, so it gets past them."""
    return load_config(None, env={}, overrides={
        "state.dir": str(tmp_path / "state"),
        "server.bind": "127.0.0.1:0",
        "ratelimit.user_capacity": 1_000_000,
        "ratelimit.client_capacity": 1_000_000,
        "ratelimit.client_refill_per_second": 1000.0,
    })
