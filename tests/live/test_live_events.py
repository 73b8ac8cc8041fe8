"""simulation_events over /__ws with real WebSocket clients: the default follow of the
user's /live simulation, explicit subscriptions with replay, ordering, isolation."""

from __future__ import annotations

import msgspec
import trio
from trio_websocket import open_websocket_url

from live_helpers import leg, settle_down


def ws_url(env) -> str:
    return env.url.replace("http://", "ws://") + "/__ws"


async def next_event(ws, timeout: float = 5.0) -> dict:
    with trio.fail_after(timeout):
        while True:
            msg = msgspec.json.decode(await ws.get_message())
            if msg.get("channel") == "simulation_events":
                return msg


async def start(env):
    uid, token = await env.user()
    c = env.client(token)
    sim = (await c.post("/live", json={"starting_capital": "100000"})).json()
    return token, c, sim


async def test_a_token_connection_follows_its_users_live_simulation_by_default(live_env):
    token, c, sim = await start(live_env)
    async with open_websocket_url(ws_url(live_env)) as ws:
        await ws.send_message(msgspec.json.encode({"token": token}).decode())
        await trio.sleep(0.1)
        r = await c.post("/live/orders", json={"type": "market", "legs": [leg(5950, "C", "buy to open")]})
        assert r.status_code == 201
        first = await next_event(ws)
        second = await next_event(ws)
    assert first["live_simulation_id"] == sim["id"]
    assert (first["id"], first["type"]) == (1, "order_update")
    assert first["payload"]["id"] == r.json()["id"] and first["payload"]["status"] == "filled"
    assert (second["id"], second["type"]) == (2, "financials_update")
    assert set(second["payload"]) >= {"cash_balance", "available_buying_power", "realized_profit_loss", "positions"}


async def test_an_explicit_subscribe_replays_what_was_missed_then_streams_in_order(live_env):
    token, c, sim = await start(live_env)
    for _ in range(3):  # events 1..3 happen before the client connects
        await c.post("/live/orders", json={"type": "limit", "price": "0.05", "price_effect": "debit",
                                           "legs": [leg(5950, "C", "buy to open")]})
    async with open_websocket_url(ws_url(live_env)) as ws:
        await ws.send_message(msgspec.json.encode({"token": token}).decode())
        await ws.send_message(msgspec.json.encode({
            "action": "subscribe", "channel": "simulation_events", "live_simulation_id": sim["id"],
            "last_event_by_sim": {sim["id"]: 1}}).decode())
        await c.post("/live/orders", json={"type": "limit", "price": "0.05", "price_effect": "debit",
                                           "legs": [leg(5955, "C", "buy to open")]})
        got = [await next_event(ws) for _ in range(3)]
    assert [e["id"] for e in got] == [2, 3, 4], "missed ones replayed, then live, each id once"


async def test_a_subscribe_to_another_users_simulation_is_ignored(live_env):
    token_a, a, sim_a = await start(live_env)
    token_b, b, sim_b = await start(live_env)
    async with open_websocket_url(ws_url(live_env)) as ws:
        await ws.send_message(msgspec.json.encode({"token": token_b}).decode())
        await ws.send_message(msgspec.json.encode({
            "action": "subscribe", "channel": "simulation_events", "live_simulation_id": sim_a["id"],
            "last_event_by_sim": {sim_a["id"]: 0}}).decode())
        await a.post("/live/orders", json={"type": "market", "legs": [leg(5950, "C", "buy to open")]})
        await b.post("/live/orders", json={"type": "market", "legs": [leg(5960, "C", "buy to open")]})
        got = await next_event(ws)
    assert got["live_simulation_id"] == sim_b["id"], "B never sees A's events"


async def test_fills_on_ticks_are_pushed_too(live_env):
    token, c, sim = await start(live_env)
    tick = live_env.market.current()
    q = tick.quote(5900, "P")
    limit = ((q.bid + q.ask) / 2 - 1).quantize(q.bid.__class__("0.1"))
    r = await c.post("/live/orders", json={"type": "limit", "price": str(limit), "price_effect": "debit",
                                           "legs": [leg(5900, "P", "buy to open")]})
    oid = r.json()["id"]
    async with open_websocket_url(ws_url(live_env)) as ws:
        await ws.send_message(msgspec.json.encode({"token": token}).decode())
        await trio.sleep(0.1)
        low = limit - 1
        live_env.market.with_quotes({(5900, "P"): (str(low - q.bid.__class__("0.1")), str(low + q.bid.__class__("0.1")))})
        await settle_down(live_env)
        got = await next_event(ws)
    assert got["type"] == "order_update" and got["payload"]["id"] == oid and got["payload"]["status"] == "filled"
