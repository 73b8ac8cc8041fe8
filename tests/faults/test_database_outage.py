"""PostgreSQL stopped under load: 503 database_unavailable (nothing half-written), the
actors live on, and everything recovers by itself once the database is back."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
import trio

from faults_helpers import H, daemon_env, market_order, ok_or_none, wait_until
from odted.store.db import open_database
from odted.store.embedded import EmbeddedPostgres

pytestmark = pytest.mark.slow

OUTAGE_SECONDS = 10


def query(dsn: str, sql: str, *args):
    async def run():
        async with open_database(dsn, min_size=1, max_size=1) as db:
            return await db.run(lambda conn: conn.fetch(sql, *args))

    return trio.run(run)


def test_a_database_outage_is_503_and_recovers_by_itself(daemon_factory, tmp_path):
    pg = EmbeddedPostgres(tmp_path / "pg", durable=False)
    pg.start()
    try:
        dsn = pg.dsn("postgres")
        d = daemon_factory(env=daemon_env(ODTED_DATABASE_URL=dsn)).start()
        url = d.url
        assert httpx.post(f"{url}/live", json={"starting_capital": "1000000"}, headers=H).status_code == 201
        results: list[tuple[float, int, str]] = []
        stop = threading.Event()

        def load():
            with httpx.Client(base_url=url, headers=H, timeout=10) as c:
                i = 0
                while not stop.is_set():
                    i += 1
                    action = "buy to open" if i % 2 else "sell to close"
                    r = ok_or_none(lambda: c.post("/live/orders", json=market_order(action),
                                                  headers={"Idempotency-Key": f"load-{threading.get_ident()}-{i}"}))
                    if r is not None:
                        results.append((time.monotonic(), r.status_code, r.text[:60]))
                    time.sleep(0.02)

        threads = [threading.Thread(target=load) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(2)
        down_at = time.monotonic()
        pg.stop()
        time.sleep(OUTAGE_SECONDS)
        during = [r for r in results if down_at + 1.0 < r[0] < down_at + OUTAGE_SECONDS]
        ready_down = httpx.get(f"{url}/ready")
        pg.start()
        up_at = time.monotonic()
        recovered = wait_until(lambda: any(t > up_at and s == 201 for t, s, _ in results), timeout=15)
        recovered_after = min((t for t, s, _ in results if t > up_at and s == 201), default=None)
        time.sleep(1)
        stop.set()
        for t in threads:
            t.join(10)

        assert during, "requests were answered during the outage"
        # 503, or a refusal decided in memory that needs no database: the load alternates
        # buying and selling, and a sell with nothing left to sell is refused as it would be
        # any time (400 insufficient_position); both change nothing
        assert 503 in {s for _, s, _ in during}
        assert all(text.startswith(("database_unavailable:", "live_trading_unavailable:"))
                   if s == 503 else (s == 400 and text.startswith("insufficient_position:"))
                   for _, s, text in during), {(s, text) for _, s, text in during}
        assert ready_down.status_code == 503 and "database" in ready_down.text
        assert recovered and recovered_after - up_at < 5.0, "requests succeed within 5 s of the database returning"
        assert httpx.get(f"{url}/ready").status_code == 200

        live = httpx.get(f"{url}/live", headers=H).json()
        assert live is not None and live["status"] == "open", "the simulation did not fail"
        acknowledged = sum(1 for _, s, _ in results if s == 201)
        orders = httpx.get(f"{url}/live/orders", headers=H).json()
        assert len(orders) == acknowledged, "every acknowledged order exists, nothing half-written"
        assert d.terminate() == 0
        ids = [r[0] for r in query(dsn, "SELECT id FROM simulation_events ORDER BY id")]
        assert ids == list(range(1, len(ids) + 1))
        txs = query(dsn, "SELECT count(*) FROM transactions")[0][0]
        assert txs == len([o for o in orders if o["status"] == "filled"])
    finally:
        pg.stop()
