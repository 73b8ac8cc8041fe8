"""/live over real HTTP: start, dry-run, place, fill on ticks, cancel, replace, errors."""

from decimal import Decimal

import pytest
import trio
import trio.testing

from live_helpers import DAY, leg, mid, on_grid, osi, settle_down


async def start(env, capital="100000"):
    uid, token = await env.user()
    c = env.client(token)
    r = await c.post("/live", json={"starting_capital": capital, "description": "test day"})
    assert r.status_code == 201, r.text
    return uid, token, c, r.json()


async def test_start_live_returns_the_simulation_and_a_second_start_conflicts(live_env):
    uid, token, c, sim = await start(live_env)
    assert sim["starting_capital"] == "100000"
    assert sim["net_liquidation_value"] == "100000.00" or Decimal(sim["net_liquidation_value"]) == 100000
    assert sim["ended"] is False and sim["date"] == str(DAY)
    got = (await c.get("/live")).json()
    assert got["id"] == sim["id"]
    r = await c.post("/live", json={"starting_capital": "5000"})
    assert r.status_code == 409 and r.text.startswith("live_simulation_exists:")


async def test_get_live_is_null_without_a_simulation(live_env):
    _, token = await live_env.user()
    r = await live_env.client(token).get("/live")
    assert r.status_code == 200 and r.json() is None


async def test_starting_capital_out_of_range_is_400(live_env):
    _, token = await live_env.user()
    c = live_env.client(token)
    for bad in ("999", "10000001", "NaN"):
        r = await c.post("/live", json={"starting_capital": bad})
        assert r.status_code == 400, (bad, r.text)


async def test_dry_run_previews_and_persists_nothing(live_env):
    _, _, c, _ = await start(live_env)
    r = await c.post("/live/orders/dry-run", json={
        "type": "limit", "price": "10.50", "price_effect": "debit",
        "legs": [leg(5950, "C", "buy to open"), leg(5970, "C", "sell to open")],
    })
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] == "00000000-0000-0000-0000-000000000000"
    assert "transactions" not in body
    assert "buying-power-effect" in body
    assert (await c.get("/live/orders")).json() == []


async def test_a_marketable_debit_vertical_fills_at_once_and_adds_up(live_env):
    _, _, c, _ = await start(live_env)
    tick = live_env.market.current()
    net = mid(tick, 5950, "C") - mid(tick, 5970, "C")
    limit = on_grid(net + Decimal("0.30"), Decimal("0.05"))
    r = await c.post("/live/orders", json={
        "type": "limit", "price": str(limit), "price_effect": "debit",
        "legs": [leg(5950, "C", "buy to open"), leg(5970, "C", "sell to open")],
    })
    assert r.status_code == 201, r.text
    order = r.json()
    assert order["status"] == "filled"
    txs = order["transactions"]
    assert len(txs) == 2
    total = sum(Decimal(t["value"]) for t in txs)
    assert total == Decimal(order["fill_price"]) * 100
    assert Decimal(order["fees"]) == Decimal("3.44")
    positions = (await c.get("/live/positions")).json()
    assert {(p["instrument"], p["direction"]) for p in positions} == {
        (osi(5950, "C"), "long"), (osi(5970, "C"), "short")}
    sim = (await c.get("/live")).json()
    assert Decimal(sim["debits"]) - Decimal(sim["credits"]) == total
    assert Decimal(sim["fees"]) == Decimal("3.44")
    assert len((await c.get("/live/transactions")).json()) == 2


async def test_a_resting_limit_fills_when_the_mid_comes_to_it(live_env):
    _, _, c, _ = await start(live_env)
    tick = live_env.market.current()
    q = tick.quote(5900, "P")
    limit = on_grid((q.bid + q.ask) / 2 - Decimal("1.00"), Decimal("0.10"))
    r = await c.post("/live/orders", json={
        "type": "limit", "price": str(limit), "price_effect": "debit",
        "legs": [leg(5900, "P", "buy to open")],
    })
    assert r.status_code == 201, r.text
    order = r.json()
    assert order["status"] == "pending"
    oid = order["id"]
    live_env.market.step()
    await settle_down(live_env)
    assert (await c.get(f"/live/orders/{oid}")).json()["status"] == "pending"
    # the put's mid drops to well below the limit: it fills at mid + slippage
    low = limit - Decimal("0.50")
    live_env.market.with_quotes({(5900, "P"): (str(low - Decimal("0.10")), str(low + Decimal("0.10")))})
    await settle_down(live_env)
    filled = (await c.get(f"/live/orders/{oid}")).json()
    assert filled["status"] == "filled", filled
    assert Decimal(filled["fill_price"]) == low + Decimal("0.05")
    assert Decimal(filled["execution_price"]) == limit - Decimal("0.05")


async def test_cancel_then_cancel_again_is_409(live_env):
    _, _, c, _ = await start(live_env)
    r = await c.post("/live/orders", json={
        "type": "limit", "price": "0.05", "price_effect": "debit", "legs": [leg(5950, "C", "buy to open")]})
    oid = r.json()["id"]
    r = await c.delete(f"/live/orders/{oid}")
    assert r.status_code == 204
    assert (await c.get(f"/live/orders/{oid}")).json()["status"] == "canceled"
    r = await c.delete(f"/live/orders/{oid}")
    assert r.status_code == 409 and r.text.startswith("order_not_pending:")
    assert (await c.delete("/live/orders/not-a-uuid")).status_code == 404


async def test_replace_moves_the_price_and_rejects_what_it_must(live_env):
    _, _, c, _ = await start(live_env)
    legs = [leg(5950, "C", "buy to open")]
    oid = (await c.post("/live/orders", json={
        "type": "limit", "price": "0.05", "price_effect": "debit", "legs": legs})).json()["id"]
    r = await c.put("/live/orders", json={
        "order_id": oid, "type": "limit", "price": "0.10", "price_effect": "debit", "legs": legs})
    assert r.status_code == 200, r.text
    new = r.json()
    assert new["id"] != oid and new["price"] == "0.10" and new["status"] == "pending"
    assert (await c.get(f"/live/orders/{oid}")).json()["status"] == "canceled"
    r = await c.put("/live/orders", json={
        "order_id": oid, "type": "limit", "price": "0.15", "price_effect": "debit", "legs": legs})
    assert r.status_code == 409
    r = await c.put("/live/orders", json={
        "order_id": new["id"], "type": "limit", "price": "0.15", "price_effect": "debit",
        "legs": [leg(5955, "C", "buy to open")]})
    assert r.status_code == 400 and r.text.startswith("replace_legs_changed:")


async def test_idempotency_key_replays_the_original_and_refuses_a_different_body(live_env):
    _, _, c, _ = await start(live_env)
    body = {"type": "limit", "price": "0.05", "price_effect": "debit", "legs": [leg(5950, "C", "buy to open")]}
    h = {"Idempotency-Key": "k-1"}
    first = await c.post("/live/orders", json=body, headers=h)
    again = await c.post("/live/orders", json=body, headers=h)
    assert first.status_code == again.status_code == 201
    assert first.content == again.content
    assert again.headers.get("idempotent-replayed") == "true"
    other = dict(body, price="0.10")
    r = await c.post("/live/orders", json=other, headers=h)
    assert r.status_code == 409 and r.text.startswith("idempotency_key_reused:")
    assert len((await c.get("/live/orders")).json()) == 1


async def test_the_same_key_twenty_times_at_once_makes_one_order(live_env):
    _, _, c, _ = await start(live_env)
    body = {"type": "limit", "price": "0.05", "price_effect": "debit", "legs": [leg(5950, "C", "buy to open")]}
    statuses = []

    async def send():
        r = await c.post("/live/orders", json=body, headers={"Idempotency-Key": "same"})
        statuses.append((r.status_code, r.json()["id"]))

    async with trio.open_nursery() as n:
        for _ in range(20):
            n.start_soon(send)
    assert {s for s, _ in statuses} == {201}
    assert len({i for _, i in statuses}) == 1
    assert len((await c.get("/live/orders")).json()) == 1


async def test_orders_of_another_user_are_not_found(live_env):
    _, _, a, _ = await start(live_env)
    oid = (await a.post("/live/orders", json={
        "type": "limit", "price": "0.05", "price_effect": "debit",
        "legs": [leg(5950, "C", "buy to open")]})).json()["id"]
    _, _, b, _ = await start(live_env)
    assert (await b.get(f"/live/orders/{oid}")).status_code == 404
    assert (await b.delete(f"/live/orders/{oid}")).status_code == 404


async def test_validation_errors_are_400_with_the_domain_code(live_env):
    _, _, c, _ = await start(live_env)
    r = await c.post("/live/orders", json={
        "type": "limit", "price": "3.05", "price_effect": "debit", "legs": [leg(5950, "C", "buy to open")]})
    assert r.status_code == 400 and r.text.startswith("price_off_tick:")
    r = await c.post("/live/orders", json={"type": "limit"})
    assert r.status_code == 400 and r.text.startswith("invalid_input:")
    r = await c.post("/live/orders", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400


async def test_no_simulation_means_404_for_orders(live_env):
    _, token = await live_env.user()
    c = live_env.client(token)
    r = await c.post("/live/orders", json={
        "type": "limit", "price": "0.05", "price_effect": "debit", "legs": [leg(5950, "C", "buy to open")]})
    assert r.status_code == 404


async def test_two_concurrent_replaces_of_one_order_one_wins_one_conflicts(live_env):
    _, _, c, _ = await start(live_env)
    legs = [leg(5950, "C", "buy to open")]
    oid = (await c.post("/live/orders", json={
        "type": "limit", "price": "0.05", "price_effect": "debit", "legs": legs})).json()["id"]
    results = []

    async def replace(p):
        r = await c.put("/live/orders", json={"order_id": oid, "type": "limit", "price": p,
                                               "price_effect": "debit", "legs": legs})
        results.append(r.status_code)

    async with trio.open_nursery() as n:
        n.start_soon(replace, "0.10")
        n.start_soon(replace, "0.15")
    assert sorted(results) == [200, 409]
    orders = (await c.get("/live/orders")).json()
    assert [o["status"] for o in orders].count("pending") == 1


async def test_every_response_has_a_request_id_that_the_log_lines_carry(live_env, caplog):
    import logging

    caplog.set_level(logging.DEBUG, logger="odted.access")
    _, _, c, _ = await start(live_env)
    r = await c.post("/live/orders", headers={"X-Request-ID": "trace-me-42"}, json={
        "type": "limit", "price": "3.05", "price_effect": "debit", "legs": [leg(5950, "C", "buy to open")]})
    assert r.status_code == 400 and r.headers["x-request-id"] == "trace-me-42"
    lines = [rec for rec in caplog.records if getattr(rec, "request_id", None) == "trace-me-42"]
    assert lines and "POST /live/orders 400" in lines[-1].getMessage()
    generated = (await c.get("/live")).headers["x-request-id"]
    assert any(getattr(rec, "request_id", None) == generated for rec in caplog.records)


async def test_a_key_reused_in_a_later_simulation_replays_its_original_answer(live_env):
    _, _, c, _ = await start(live_env)
    body = {"type": "limit", "price": "0.05", "price_effect": "debit", "legs": [leg(5950, "C", "buy to open")]}
    first = await c.post("/live/orders", json=body, headers={"Idempotency-Key": "carry"})
    assert (await c.delete("/live")).status_code == 204
    assert (await c.post("/live", json={"starting_capital": "20000"})).status_code == 201
    again = await c.post("/live/orders", json=body, headers={"Idempotency-Key": "carry"})
    assert again.status_code == 201 and again.content == first.content
    other = await c.post("/live/orders", json=dict(body, price="0.10"), headers={"Idempotency-Key": "carry"})
    assert other.status_code == 409 and other.text.startswith("idempotency_key_reused:")
    assert (await c.get("/live/orders")).json() == [], "nothing was placed in the new simulation"
