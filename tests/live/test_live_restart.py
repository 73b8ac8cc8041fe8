"""A real daemon stopped (SIGTERM, kill -9) and started again on the same database:
the live simulation comes back with the same state and its event ids carry on."""

from __future__ import annotations

import httpx
import pytest
import trio

from live_helpers import leg
from odted.config import load_config
from odted.daemon import open_store

pytestmark = pytest.mark.slow

TOKEN = "restart-test-token"
ENV = {
    "ODTED_AUTH_STATIC_TOKENS": f'["{TOKEN}"]',
    "ODTED_FEED_SYNTHETIC_DATE": "2025-01-15",
    "ODTED_FEED_SYNTHETIC_START_TIME": "10:00:00",
    "ODTED_LOGGING_LEVEL": "warning",
}
H = {"Authorization": TOKEN}


def query(state_dir, sql: str, *args):
    cfg = load_config(None, env={}, overrides={"state.dir": str(state_dir)})

    async def run():
        async with open_store(cfg, migrate=False) as db:
            return await db.run(lambda conn: conn.fetch(sql, *args))

    return trio.run(run)


def snapshot(url: str) -> dict:
    return {
        "live": httpx.get(f"{url}/live", headers=H).json(),
        "orders": httpx.get(f"{url}/live/orders", headers=H).json(),
        "transactions": httpx.get(f"{url}/live/transactions", headers=H).json(),
        "positions": [{k: p[k] for k in ("id", "instrument", "direction", "quantity", "cost_basis")}
                      for p in httpx.get(f"{url}/live/positions", headers=H).json()],
    }


def stable(snap: dict) -> dict:
    live = snap["live"]
    return {
        "id": live["id"], "cash": (live["deposits"], live["credits"], live["debits"], live["fees"]),
        "orders": [(o["id"], o["status"], o.get("fill_price")) for o in snap["orders"]],
        "transactions": snap["transactions"], "positions": snap["positions"],
    }


@pytest.mark.parametrize("stop", ["sigterm", "kill9"])
def test_a_restarted_daemon_resumes_the_simulation_with_the_same_state(daemon_factory, tmp_path, stop):
    d = daemon_factory(env=ENV).start()
    r = httpx.post(f"{d.url}/live", json={"starting_capital": "50000"}, headers=H)
    assert r.status_code == 201, r.text
    filled = httpx.post(f"{d.url}/live/orders", headers={**H, "Idempotency-Key": "m1"},
                        json={"type": "market", "legs": [leg(5950, "C", "buy to open")]})
    assert filled.status_code == 201 and filled.json()["status"] == "filled", filled.text
    resting = httpx.post(f"{d.url}/live/orders", headers=H, json={
        "type": "limit", "price": "0.05", "price_effect": "debit", "legs": [leg(5955, "C", "buy to open")]})
    assert resting.status_code == 201 and resting.json()["status"] == "pending", resting.text
    before = snapshot(d.url)

    if stop == "sigterm":
        assert d.terminate() == 0
    else:
        d.kill()
    d2 = daemon_factory(d.state_dir, env=ENV).start()
    after = snapshot(d2.url)
    assert stable(after) == stable(before)

    # the idempotency record survived: the retry gets the original answer, no second order
    again = httpx.post(f"{d2.url}/live/orders", headers={**H, "Idempotency-Key": "m1"},
                       json={"type": "market", "legs": [leg(5950, "C", "buy to open")]})
    assert again.status_code == 201 and again.json()["id"] == filled.json()["id"]
    # the resumed actor still owns the pending order and keeps trading
    assert httpx.delete(f"{d2.url}/live/orders/{resting.json()['id']}", headers=H).status_code == 204
    more = httpx.post(f"{d2.url}/live/orders", headers=H,
                      json={"type": "market", "legs": [leg(5960, "C", "buy to open")]})
    assert more.status_code == 201, more.text
    assert len(httpx.get(f"{d2.url}/live/orders", headers=H).json()) == 3
    assert d2.terminate() == 0

    ids = [r[0] for r in query(d.state_dir, "SELECT id FROM simulation_events ORDER BY id")]
    assert ids == list(range(1, len(ids) + 1)), "event ids carry on across restarts, without gaps or reuse"
    assert len(ids) >= 6
