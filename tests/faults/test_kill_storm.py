"""Crash safety: concurrent order placement with Idempotency-Key retries while the daemon
is killed with SIGKILL again and again. Afterwards every acknowledged order exists
exactly once, every key maps to one order, money reconciles with the transactions,
event ids are gap-free, and the bot session is running again."""

from __future__ import annotations

import random
import threading
import time
from decimal import Decimal

import httpx
import pytest
import trio

from faults_helpers import H, daemon_env, market_order, ok_or_none
from odted.config import load_config
from odted.daemon import open_store

pytestmark = pytest.mark.slow

KILLS = 10
CLIENTS = 8

STRATEGY = {
    "legs": [
        {"direction": "sell", "type": "put", "qty": 1, "strike": {"method": "delta", "value": 0.3}},
        {"direction": "buy", "type": "put", "qty": 1, "strike": {"method": "delta", "value": 0.2}},
    ],
    "entry": {"times": ["10:00"]},
    "exit": {"profit_target_pct": 50, "time": "15:55"},
}


def query(state_dir, sql: str, *args):
    cfg = load_config(None, env={}, overrides={"state.dir": str(state_dir)})

    async def run():
        async with open_store(cfg, migrate=False) as db:
            return await db.run(lambda conn: conn.fetch(sql, *args))

    return trio.run(run)


def test_orders_survive_a_storm_of_kill_9(daemon_factory, tmp_path):
    rng = random.Random(20261122)
    env = daemon_env(ODTED_FEED_SYNTHETIC_START_TIME="09:59:55")
    d = daemon_factory(env=env).start()
    current = {"url": d.url}
    assert httpx.post(f"{d.url}/live", json={"starting_capital": "1000000"}, headers=H).status_code == 201
    strategy = httpx.post(f"{d.url}/strategies", json={"config": STRATEGY}, headers=H)
    assert strategy.status_code in (200, 201), strategy.text
    bot = httpx.post(f"{d.url}/bots", headers=H, json={
        "strategy_id": strategy.json()["id"], "name": "storm bot", "starting_capital": "50000"})
    assert bot.status_code == 201, bot.text
    bot_id = bot.json()["id"]
    started = httpx.post(f"{d.url}/bots/{bot_id}/sessions", headers=H)
    assert started.status_code == 201, started.text

    answers: dict[str, tuple[int, str | None]] = {}
    lock = threading.Lock()
    stop = threading.Event()

    def client(n: int) -> None:
        i = 0
        while not stop.is_set():
            i += 1
            key = f"c{n}-{i}"
            body = market_order("buy to open" if i % 3 else "sell to close")
            while not stop.is_set():  # retry this key until it gets a definitive answer
                r = ok_or_none(lambda: httpx.post(f"{current['url']}/live/orders", json=body,
                                                  headers={**H, "Idempotency-Key": key}, timeout=5))
                if r is not None and r.status_code in (201, 400, 409):
                    with lock:
                        answers[key] = (r.status_code, r.json()["id"] if r.status_code == 201 else None)
                    break
                time.sleep(0.05)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for t in threads:
        t.start()
    for _ in range(KILLS):
        time.sleep(rng.uniform(0.3, 1.5))
        d.kill()
        d = daemon_factory(d.state_dir, env=env)
        d.start()
        current["url"] = d.url
    time.sleep(1.0)
    stop.set()
    for t in threads:
        t.join(30)

    acked = {key: oid for key, (status, oid) in answers.items() if status == 201}
    assert len(acked) > 50, f"only {len(acked)} orders acknowledged"
    orders = httpx.get(f"{d.url}/live/orders", headers=H).json()
    ids = [o["id"] for o in orders]
    assert len(ids) == len(set(ids))
    print(f"kill storm: {KILLS} x kill -9, {len(answers)} keys answered, {len(acked)} orders acknowledged, "
          f"{len(ids)} orders found, {len(set(ids))} distinct")
    assert set(ids) == set(acked.values()), "every acknowledged order exists exactly once, and nothing else"
    assert len(set(acked.values())) == len(acked), "every key maps to its own order"

    # money reconciles with the transactions
    live = httpx.get(f"{d.url}/live", headers=H).json()
    txs = httpx.get(f"{d.url}/live/transactions", headers=H).json()
    debits = sum(Decimal(t["value"]) for t in txs if Decimal(t.get("value", "0")) > 0)
    credits = -sum(Decimal(t["value"]) for t in txs if Decimal(t.get("value", "0")) < 0)
    fees = sum(Decimal(t["fees"]) for t in txs)
    assert (Decimal(live["debits"]), Decimal(live["credits"]), Decimal(live["fees"])) == (debits, credits, fees)
    held = sum(Decimal(t["quantity"]) * (1 if t["type"] == "buy to open" else -1) for t in txs)
    positions = httpx.get(f"{d.url}/live/positions", headers=H).json()
    assert sum(Decimal(p["quantity"]) for p in positions) == held

    # the bot session came back each time
    got = httpx.get(f"{d.url}/bots/{bot_id}", headers=H).json()
    assert got["bot"]["runtime_status"] == "running", got
    assert d.terminate() == 0

    rows = query(d.state_dir, "SELECT simulation_id, id FROM simulation_events ORDER BY simulation_id, id")
    by_sim: dict = {}
    for sim, eid in rows:
        by_sim.setdefault(sim, []).append(eid)
    for sim, eids in by_sim.items():
        assert eids == list(range(1, len(eids) + 1)), f"gap or reuse in the events of {sim}"
