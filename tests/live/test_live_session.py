"""A live session through the close: structures, stops, market orders, expiry,
settlement, history, events in the database."""

from decimal import Decimal

import msgspec

from live_helpers import leg, mid, on_grid, osi, settle_down


async def start(env, capital="100000"):
    uid, token = await env.user()
    c = env.client(token)
    r = await c.post("/live", json={"starting_capital": capital})
    assert r.status_code == 201, r.text
    return uid, c, r.json()


async def events_of(env, sim_id):
    rows = await env.db.run(lambda conn: conn.fetch(
        "SELECT id, type, payload::text FROM simulation_events WHERE simulation_id = $1 ORDER BY id", sim_id))
    return [(r[0], r[1], msgspec.json.decode(r[2])) for r in rows]


async def test_a_single_leg_market_order_fills_at_the_natural_price(live_env):
    _, c, _ = await start(live_env)
    tick = live_env.market.current()
    ask = tick.quote(5950, "C").ask
    r = await c.post("/live/orders", json={"type": "market", "legs": [leg(5950, "C", "buy to open")]})
    assert r.status_code == 201, r.text
    o = r.json()
    assert o["status"] == "filled" and Decimal(o["fill_price"]) == ask
    assert Decimal(o["transactions"][0]["value"]) == ask * 100


async def test_a_multi_leg_market_order_is_refused(live_env):
    _, c, _ = await start(live_env)
    r = await c.post("/live/orders", json={"type": "market", "legs": [
        leg(5950, "C", "buy to open"), leg(5970, "C", "sell to open")]})
    assert r.status_code == 400 and r.text.startswith("multi_leg_not_limit:")


async def test_a_debit_stop_waits_for_the_mid_to_fall_to_its_trigger(live_env):
    _, c, _ = await start(live_env)
    tick = live_env.market.current()
    m = mid(tick, 5950, "C")
    above = on_grid(m + Decimal("1.00"), Decimal("0.10"))
    r = await c.post("/live/orders", json={"type": "stop", "stop_trigger": str(above), "price_effect": "debit",
                                           "legs": [leg(5950, "C", "buy to open")]})
    assert r.status_code == 400 and r.text.startswith("stop_would_trigger:")
    trigger = on_grid(m - Decimal("1.00"), Decimal("0.10"))
    r = await c.post("/live/orders", json={"type": "stop", "stop_trigger": str(trigger), "price_effect": "debit",
                                           "legs": [leg(5950, "C", "buy to open")]})
    assert r.status_code == 201, r.text
    oid = r.json()["id"]
    low = trigger - Decimal("0.20")
    live_env.market.with_quotes({(5950, "C"): (str(low - Decimal("0.10")), str(low + Decimal("0.10")))})
    await settle_down(live_env)
    o = (await c.get(f"/live/orders/{oid}")).json()
    assert o["status"] == "filled"
    assert Decimal(o["fill_price"]) == low + Decimal("0.05")  # the mid plus slippage, not the trigger


async def test_a_credit_put_vertical_reserves_its_margin_while_pending(live_env):
    _, c, _ = await start(live_env)
    r = await c.post("/live/orders", json={
        "type": "limit", "price": "19.50", "price_effect": "credit",
        "legs": [leg(5900, "P", "sell to open"), leg(5880, "P", "buy to open")]})
    assert r.status_code == 201, r.text
    o = r.json()
    assert o["status"] == "pending"
    bpe = o["buying-power-effect"]
    assert bpe["change-in-margin-requirement"] == "2000"
    sim = (await c.get("/live")).json()
    assert Decimal(sim["available_buying_power"]) == Decimal("100000") - Decimal(bpe["change-in-buying-power"])
    await c.delete(f"/live/orders/{o['id']}")
    sim = (await c.get("/live")).json()
    assert Decimal(sim["available_buying_power"]) == Decimal("100000")


async def test_an_iron_condor_fills_as_one_order_with_four_transactions(live_env):
    _, c, _ = await start(live_env)
    tick = live_env.market.current()
    legs = [leg(5900, "P", "buy to open"), leg(5920, "P", "sell to open"),
            leg(5980, "C", "sell to open"), leg(6000, "C", "buy to open")]
    credit = (mid(tick, 5920, "P") - mid(tick, 5900, "P")) + (mid(tick, 5980, "C") - mid(tick, 6000, "C"))
    limit = on_grid(credit - Decimal("0.30"), Decimal("0.05"))
    r = await c.post("/live/orders", json={"type": "limit", "price": str(limit), "price_effect": "credit",
                                           "legs": legs})
    assert r.status_code == 201, r.text
    o = r.json()
    assert o["status"] == "filled", o
    assert len(o["transactions"]) == 4
    assert -sum(Decimal(t["value"]) for t in o["transactions"]) == Decimal(o["fill_price"]) * 100
    sim = (await c.get("/live")).json()
    assert sim["maintenance_buying_power"] == "2000"


async def test_the_close_expires_pending_orders_settles_positions_and_ends_the_simulation(live_env):
    uid, c, sim = await start(live_env)
    tick = live_env.market.current()
    # an ITM call spread (bought) and an OTM put (bought), then a resting order that will expire
    net = mid(tick, 5900, "C") - mid(tick, 5910, "C")
    r = await c.post("/live/orders", json={"type": "limit", "price": str(on_grid(net + Decimal("0.50"), Decimal("0.05"))),
                                           "price_effect": "debit",
                                           "legs": [leg(5900, "C", "buy to open"), leg(5910, "C", "sell to open")]})
    assert r.json()["status"] == "filled", r.text
    resting = (await c.post("/live/orders", json={"type": "limit", "price": "0.05", "price_effect": "debit",
                                                  "legs": [leg(5950, "P", "buy to open")]})).json()
    before = (await c.get("/live")).json()
    closing = live_env.market.close()
    await settle_down(live_env)
    assert (await c.get("/live")).json() is None
    row = await live_env.db.run(lambda conn: conn.fetchrow(
        "SELECT status, settled_at, closing_balance FROM simulations WHERE id = $1", __import__("uuid").UUID(sim["id"])))
    assert row["status"] == "settled" and row["settled_at"] is not None
    events = await events_of(live_env, __import__("uuid").UUID(sim["id"]))
    assert [e[0] for e in events] == list(range(1, len(events) + 1)), "event ids are 1, 2, 3, ... without gaps"
    assert events[-1][1] == "ended"
    expired = [e for e in events if e[1] == "order_update" and e[2]["id"] == resting["id"]]
    assert expired[-1][2]["status"] == "expired"
    # settlement: the 5900/5910 call spread settles at its intrinsic width, capped at 10 points
    spx = closing.spx
    width = min(max(spx - 5900, Decimal(0)), Decimal(10)) * 100
    cash_before = Decimal(before["deposits"]) + Decimal(before["credits"]) - Decimal(before["debits"]) - Decimal(before["fees"])
    fees = Decimal(0)
    if spx > 5900:
        fees += Decimal(5)
    if spx > 5910:
        fees += Decimal(5)
    assert Decimal(row["closing_balance"]) == cash_before + width - fees


async def test_orders_are_refused_after_the_close(live_env):
    _, c, _ = await start(live_env)
    live_env.market.close()
    await settle_down(live_env)
    r = await c.post("/live/orders", json={"type": "limit", "price": "0.05", "price_effect": "debit",
                                           "legs": [leg(5950, "P", "buy to open")]})
    assert r.status_code in (400, 404)


async def test_history_is_per_second_and_follows_the_financials(live_env):
    _, c, _ = await start(live_env)
    await c.post("/live/orders", json={"type": "market", "legs": [leg(5950, "C", "buy to open")]})
    for _ in range(5):
        live_env.market.step()
        await settle_down(live_env)  # one at a time: the bus conflates ticks nobody has taken yet
    rows = (await c.get("/live/history")).json()
    stamps = [r["timestamp"] for r in rows]
    assert len(stamps) == len(set(stamps)) >= 5
    assert all(r["net_liquidation_value"] for r in rows)
    sampled = (await c.get("/live/history?interval=2")).json()
    assert 0 < len(sampled) < len(rows)
    assert (await c.get("/live/history?interval=0")).status_code == 400


async def test_delete_live_ends_it_and_a_new_one_may_start_the_same_day(live_env):
    _, c, sim = await start(live_env)
    await c.post("/live/orders", json={"type": "market", "legs": [leg(5950, "C", "buy to open")]})
    assert (await c.delete("/live")).status_code == 204
    assert (await c.get("/live")).json() is None
    assert (await c.delete("/live")).status_code == 404
    r = await c.post("/live", json={"starting_capital": "20000"})
    assert r.status_code == 201 and r.json()["id"] != sim["id"]
    assert (await c.get("/live/orders")).json() == []
