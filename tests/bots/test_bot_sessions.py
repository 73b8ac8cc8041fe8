"""Bot sessions over real HTTP (`/bots/{id}/sessions…`) on the runtime's BotService: start,
the spec's refusals, reads in the live shapes, cancel-all, kill, the decision log, the
roll-up after the close."""

import uuid
from decimal import Decimal

import httpx

from bots_helpers import flat_spread_quotes, goto, new_bot, settle

SESSION_FIELDS = {
    "id", "session_id", "bot_id", "simulation_id", "date", "status", "halt_reason", "error_count",
    "opening_balance", "source_hash", "risk", "reprice", "flatten_on_kill", "created_at", "started_at", "ended_at",
    "final_nlv", "realized_pl", "total_pl", "fees", "max_intraday_dd", "order_count", "fill_count",
}
ROLLUP = ("final_nlv", "realized_pl", "total_pl", "fees", "max_intraday_dd", "order_count", "fill_count")


async def start(c, bot: dict, status: int = 201):
    r = await c.post(f"/bots/{bot['id']}/sessions")
    assert r.status_code == status, r.text
    return r


async def test_start_returns_the_session_with_the_frozen_policy(bots_env):
    c, bot = await new_bot(bots_env, max_open_orders=3, reprice={"opening": {"max_concession": "0.10"}})
    s = (await start(c, bot)).json()
    assert set(s) == SESSION_FIELDS
    assert s["session_id"] == s["id"] and s["bot_id"] == bot["id"]
    assert s["date"] == "2025-01-15" and s["status"] in ("scheduled", "registering", "waiting_for_data")
    assert s["opening_balance"] == "25000" and s["source_hash"] == bot["source_hash"]
    assert s["risk"]["max_open_orders"] == 3 and s["reprice"]["opening"]["max_concession"] == "0.10"
    assert all(s[k] is None for k in ROLLUP), "the roll-up is null until the session finalizes"
    uuid.UUID(s["simulation_id"])
    # the policy edited now takes effect from the next session, not this one
    r = await c.patch(f"/bots/{bot['id']}", json={"max_open_orders": 7})
    assert r.status_code == 200
    got = (await c.get(f"/bots/{bot['id']}/sessions/{s['id']}")).json()
    assert got["risk"]["max_open_orders"] == 3
    assert got == s | {"status": got["status"], "started_at": got["started_at"]}


async def test_starting_again_today_is_409_bot_not_idle_then_bot_session_exists(bots_env):
    c, bot = await new_bot(bots_env)
    s = (await start(c, bot)).json()
    r = await start(c, bot, 409)
    assert r.text.startswith("bot_not_idle:"), r.text
    bots_env.market.step()
    await settle(bots_env)
    r = await c.delete(f"/bots/{bot['id']}/sessions/{s['id']}")
    assert r.status_code == 202
    bots_env.market.step()
    await settle(bots_env)
    assert (await c.get(f"/bots/{bot['id']}/sessions/{s['id']}")).json()["status"] == "killed"
    r = await start(c, bot, 409)
    assert r.text.startswith("bot_session_exists:"), r.text


async def test_an_archived_bot_cannot_start_and_an_unknown_one_is_404(bots_env):
    c, bot = await new_bot(bots_env)
    assert (await c.patch(f"/bots/{bot['id']}", json={"status": "archived"})).status_code == 200
    r = await start(c, bot, 409)
    assert r.text.startswith("bot_not_idle:"), r.text
    for bid in (str(uuid.uuid4()), "nope"):
        r = await c.post(f"/bots/{bid}/sessions")
        assert r.status_code == 404 and r.text.startswith("not_found:"), r.text


async def test_starting_outside_regular_trading_hours_is_422_outside_rth(bots_env):
    c, bot = await new_bot(bots_env)
    bots_env.market.close()
    await settle(bots_env)
    r = await start(c, bot, 422)
    assert r.text.startswith("outside_rth:"), r.text
    assert (await c.get(f"/bots/{bot['id']}/sessions")).json() == []


async def test_without_the_bot_runtime_the_session_routes_are_503(bots_env):
    c, bot = await new_bot(bots_env)
    runtime, bots_env.services.bots = bots_env.services.bots, None
    try:
        r = await start(c, bot, 503)
        assert r.text.startswith("live_trading_unavailable:") and r.headers["Retry-After"] == "1"
    finally:
        bots_env.services.bots = runtime


async def test_a_session_runs_enters_and_its_reads_have_the_live_shapes(bots_env):
    env = bots_env
    c, bot = await new_bot(env, capital="100000")
    goto(env, 9, 59, 50)
    await settle(env)
    s = (await start(c, bot)).json()
    base = f"/bots/{bot['id']}/sessions/{s['id']}"
    env.market.step()
    await settle(env)
    got = (await c.get(base)).json()
    assert got["status"] == "running" and got["started_at"] is not None
    detail = (await c.get(f"/bots/{bot['id']}")).json()
    assert detail["bot"]["runtime_status"] == "running"
    assert detail["bot"]["active_session"] == detail["bot"]["last_session"] == got
    assert detail["sessions"] == [got]
    assert (await c.get(f"/bots/{bot['id']}/sessions")).json() == [got]
    r = await c.delete(f"/bots/{bot['id']}")
    assert r.status_code == 409 and r.text.startswith("bot_has_active_session:")

    goto(env, 10, 0, 0)
    await settle(env)
    orders = (await c.get(f"{base}/orders")).json()
    assert len(orders) == 1 and orders[0]["status"] == "pending" and orders[0]["price_effect"] == "credit"
    one = await c.get(f"{base}/orders/{orders[0]['id']}")
    assert one.status_code == 200 and one.json() == orders[0]
    assert (await c.get(f"{base}/positions")).json() == []
    assert (await c.get(f"{base}/transactions")).json() == []

    # a flat market at the entry's mid: the entry concedes a tick and fills
    frozen = flat_spread_quotes(env.market.current(), orders[0]["legs"], Decimal(orders[0]["price"]))
    for _ in range(22):
        env.market.with_quotes(frozen)
        await settle(env)
    orders = (await c.get(f"{base}/orders")).json()
    assert [o["status"] for o in orders] == ["canceled", "filled"]
    positions = (await c.get(f"{base}/positions")).json()
    assert len(positions) == 2 and {p["instrument"] for p in positions} == {
        leg["instrument"] for leg in orders[1]["legs"]}
    txs = (await c.get(f"{base}/transactions")).json()
    assert len(txs) == 2 and all(t["order_id"] == orders[1]["id"] for t in txs)
    financials = (await c.get(f"{base}/financials")).json()
    assert financials and set(financials[-1]) >= {"timestamp", "net_liquidation_value"}
    assert (await c.get(f"{base}/history")).json() == financials, "the shared routes' name for it"
    sampled = (await c.get(f"{base}/financials", params={"interval": 10})).json()
    assert 0 < len(sampled) < len(financials)
    r = await c.get(f"{base}/financials", params={"interval": "0"})
    assert r.status_code == 400 and r.text.startswith("invalid_input:")

    log = (await c.get(f"{base}/decision-log")).json()
    assert log and all(set(e) >= {"ts", "kind", "message"} for e in log)
    assert [e["ts"] for e in log] == sorted(e["ts"] for e in log), "emission order"
    events = [e.get("data", {}).get("event") for e in log]
    assert "entry_placed" in events and "entry_filled" in events, events

    # a bot session is traded by its bot: no order writes through the API
    r = await c.post(f"{base}/orders", json={"type": "market", "legs": orders[1]["legs"]})
    assert r.status_code == 405

    # kill with flatten: 202 killing, then killed and flat
    r = await c.delete(base, params={"flatten": "true"})
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "killing" and r.json()["flatten_on_kill"] is True
    env.market.step()
    await settle(env)
    assert (await c.get(base)).json()["status"] == "killed"
    assert (await c.get(f"{base}/positions")).json() == []
    r = await c.post(f"{base}/cancel-all-orders")
    assert r.status_code == 409 and r.text.startswith("session_terminal:"), r.text
    r = await c.delete(base)
    assert r.status_code == 409 and r.text.startswith("session_terminal:"), r.text

    # the close finalizes the roll-up; the summary counts the day
    env.market.close()
    await settle(env)
    done = (await c.get(base)).json()
    assert done["status"] == "killed" and all(done[k] is not None for k in ROLLUP), done
    assert done["fill_count"] >= 2
    summary = (await c.get(f"/bots/{bot['id']}/summary")).json()
    assert summary["total_sessions"] == 1 and summary["total_pl"] == done["total_pl"]
    assert summary["sparkline"] == [done["total_pl"]]
    b = (await c.get(f"/bots/{bot['id']}")).json()["bot"]
    assert b["runtime_status"] == "killed" and b["active_session"] is None and b["last_session"] == done
    assert (await c.get(f"{base}/orders")).status_code == 200, "a finished session's reads keep answering"
    assert (await c.delete(f"/bots/{bot['id']}")).status_code == 204


async def test_cancel_all_is_202_and_keeps_the_session_running(bots_env):
    env = bots_env
    c, bot = await new_bot(env, capital="100000")
    goto(env, 9, 59, 50)
    await settle(env)
    s = (await start(c, bot)).json()
    base = f"/bots/{bot['id']}/sessions/{s['id']}"
    goto(env, 10, 0, 0)
    await settle(env)
    assert [o["status"] for o in (await c.get(f"{base}/orders")).json()] == ["pending"]
    r = await c.post(f"{base}/cancel-all-orders")
    assert r.status_code == 202, r.text
    assert r.json()["id"] == s["id"] and r.json()["status"] == "running"
    assert [o["status"] for o in (await c.get(f"{base}/orders")).json()] == ["canceled"]
    env.market.step()
    await settle(env)
    assert (await c.get(base)).json()["status"] == "running"


async def test_kill_takes_flatten_true_or_false_only(bots_env):
    c, bot = await new_bot(bots_env)
    s = (await start(c, bot)).json()
    base = f"/bots/{bot['id']}/sessions/{s['id']}"
    r = await c.delete(base, params={"flatten": "maybe"})
    assert r.status_code == 400 and r.text.startswith("invalid_input:")
    bots_env.market.step()
    await settle(bots_env)
    r = await c.delete(base, params={"flatten": "false"})
    assert r.status_code == 202 and r.json()["status"] == "killing" and r.json()["flatten_on_kill"] is False


async def test_sessions_of_others_and_of_other_bots_are_404(bots_env):
    c, bot = await new_bot(bots_env)
    s = (await start(c, bot)).json()
    _, token = await bots_env.user()
    other = bots_env.client(token)
    base = f"/bots/{bot['id']}/sessions/{s['id']}"
    reads = ("", "/orders", "/positions", "/transactions", "/financials", "/history", "/decision-log")
    for path in reads:
        r = await other.get(f"{base}{path}")
        assert r.status_code == 404 and r.text.startswith("not_found:"), (path, r.text)
    assert (await other.get(f"/bots/{bot['id']}/sessions")).status_code == 404
    assert (await other.post(f"/bots/{bot['id']}/sessions")).status_code == 404
    assert (await other.delete(base)).status_code == 404
    assert (await other.post(f"{base}/cancel-all-orders")).status_code == 404
    # the same user's other bot, an unknown session, a malformed one
    _, second = await new_bot(bots_env, token=c.headers["Authorization"])
    for path in (f"/bots/{second['id']}/sessions/{s['id']}", f"/bots/{bot['id']}/sessions/{uuid.uuid4()}",
                 f"/bots/{bot['id']}/sessions/nope", f"/bots/{bot['id']}/sessions/{s['id']}/orders/nope"):
        r = await c.get(path)
        assert r.status_code == 404, (path, r.text)
    async with httpx.AsyncClient(base_url=bots_env.url) as anon:
        for path in reads:
            assert (await anon.get(f"{base}{path}")).status_code == 401


async def test_a_bot_session_trades_the_bots_account_not_a_manual_one(bots_env):
    c, bot = await new_bot(bots_env)
    s = (await start(c, bot)).json()
    r = await c.get(f"/accounts/{bot['id']}/sessions/{s['simulation_id']}")
    assert r.status_code == 404, "a bot's session is not reachable as a manual account's"
