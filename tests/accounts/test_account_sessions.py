"""Sessions of live_sim accounts over real HTTP: open, current, head, abandon, orders
through the shared session routes, the close, settlement, and the carried balance."""

import datetime as dt
import uuid
from decimal import Decimal

import trio

from accounts_helpers import new_account, open_session, settled_earlier_day
from live_helpers import DAY, leg, mid, on_grid, osi, settle_down

SESSION_FIELDS = {
    "id", "account_id", "date", "mode", "opening_balance", "starting_capital", "status", "ended", "time",
    "start_time", "end_time", "available_buying_power", "net_liquidation_value", "unrealized_profit_loss",
    "realized_profit_loss", "profit_loss", "deposits", "withdrawals", "credits", "debits", "fees",
    "maintenance_buying_power",
    *(f"{side}_{f}" for side in ("equities", "equity_options") for f in (
        "credits", "debits", "fees", "unrealized_profit_loss", "realized_profit_loss", "profit_loss",
        "maintenance_buying_power", "net_liquidation_value")),
}


def sessions_url(account):
    return f"/accounts/{account['id']}/sessions"


async def test_open_returns_todays_session_with_the_carried_cash(live_env):
    c, a = await new_account(live_env, capital="50000")
    s = await open_session(c, a)
    assert set(s) == SESSION_FIELDS
    assert s["account_id"] == a["id"] and s["date"] == str(DAY) and s["mode"] == "live"
    assert s["opening_balance"] == s["starting_capital"] == s["net_liquidation_value"] == "50000"
    assert s["available_buying_power"] == "50000" and s["profit_loss"] == "0"
    assert s["status"] == "open" and s["ended"] is False
    assert s["time"] == live_env.market.current().ts.isoformat().replace("+00:00", "Z")
    assert s["start_time"] == f"{DAY}T14:30:00Z" and s["end_time"] == f"{DAY}T21:00:00Z"
    # re-requesting today's session returns it
    again = await open_session(c, a, status=200)
    assert again["id"] == s["id"]
    # with or without a body, and with today's date
    r = await c.post(sessions_url(a), content=b"", headers={"Content-Type": "application/json"})
    assert r.status_code == 200 and r.json()["id"] == s["id"]
    r = await c.post(sessions_url(a), json={"date": str(DAY)})
    assert r.status_code == 200 and r.json()["id"] == s["id"]
    assert (await c.get(f"{sessions_url(a)}/current")).json() == s
    assert (await c.get(f"{sessions_url(a)}/head")).json() == s
    assert (await c.get(f"{sessions_url(a)}/{s['id']}")).json() == s
    assert (await c.get(sessions_url(a))).json() == [s]


async def test_current_and_head_are_null_without_sessions(live_env):
    c, a = await new_account(live_env)
    assert (await c.get(f"{sessions_url(a)}/current")).json() is None
    assert (await c.get(f"{sessions_url(a)}/head")).json() is None
    assert (await c.get(sessions_url(a))).json() == []


async def test_a_date_other_than_today_is_400(live_env):
    c, a = await new_account(live_env)
    r = await c.post(sessions_url(a), json={"date": "2025-01-14"})
    assert r.status_code == 400 and r.text.startswith("invalid_input:")
    r = await c.post(sessions_url(a), json={"date": "soon"})
    assert r.status_code == 400


async def test_an_archived_account_cannot_open_a_session(live_env):
    c, a = await new_account(live_env)
    await c.patch(f"/accounts/{a['id']}", json={"status": "archived"})
    r = await c.post(sessions_url(a), json={})
    assert r.status_code == 409 and r.text.startswith("account_archived:")


async def test_opening_is_400_when_the_market_is_closed(live_env):
    c, a = await new_account(live_env)
    live_env.market.close()
    await settle_down(live_env)
    r = await c.post(sessions_url(a), json={})
    assert r.status_code == 400 and r.text.startswith("market_closed:"), r.text
    assert (await c.get(sessions_url(a))).json() == []


async def test_opening_is_400_when_market_data_is_not_flowing(live_env):
    c, a = await new_account(live_env)
    bus = live_env.market.bus
    bus.set_speed(10_000.0)  # market time runs on; no tick arrives
    await trio.sleep(0.01)
    try:
        r = await c.post(sessions_url(a), json={})
    finally:
        bus.set_speed("max")
    assert r.status_code == 400 and r.text.startswith("market_data_unavailable:"), r.text


async def test_concurrent_opens_make_one_session(live_env):
    c, a = await new_account(live_env)
    got = []

    async def one():
        r = await c.post(sessions_url(a), json={})
        got.append((r.status_code, r.json()["id"]))

    async with trio.open_nursery() as n:
        for _ in range(8):
            n.start_soon(one)
    assert sorted(s for s, _ in got) == [200] * 7 + [201]
    assert len({i for _, i in got}) == 1


async def test_archiving_and_opening_at_once_never_leave_an_archived_account_with_a_session(live_env):
    for _ in range(5):
        c, a = await new_account(live_env)
        got = {}

        async def archive():
            got["archive"] = await c.patch(f"/accounts/{a['id']}", json={"status": "archived"})

        async def open_():
            got["open"] = await c.post(sessions_url(a), json={})

        async with trio.open_nursery() as n:
            n.start_soon(archive)
            n.start_soon(open_)
        account = (await c.get(f"/accounts/{a['id']}")).json()
        current = (await c.get(f"{sessions_url(a)}/current")).json()
        if got["open"].status_code == 201:
            assert got["archive"].status_code == 409 and account["status"] == "active" and current is not None
        else:
            assert got["open"].status_code == 409 and got["open"].text.startswith("account_archived:")
            assert got["archive"].status_code == 200 and account["status"] == "archived" and current is None


async def test_patch_on_a_live_session_is_409(live_env):
    c, a = await new_account(live_env)
    s = await open_session(c, a)
    r = await c.patch(f"{sessions_url(a)}/{s['id']}", json={"time": f"{DAY}T17:00:00Z"})
    assert r.status_code == 409 and r.text.startswith("live_clock:")
    assert (await c.patch(f"{sessions_url(a)}/{uuid.uuid4()}", json={})).status_code == 404


async def test_an_untraded_session_is_abandoned_and_the_day_can_open_again(live_env):
    c, a = await new_account(live_env)
    s = await open_session(c, a)
    url = f"{sessions_url(a)}/{s['id']}"
    r = await c.delete(url)
    assert r.status_code == 204
    got = (await c.get(url)).json()
    assert got["status"] == "abandoned" and got["ended"] is False
    assert "closing_balance" not in got and "settled_at" not in got
    assert (await c.get(f"{sessions_url(a)}/current")).json() is None
    assert (await c.get(f"{sessions_url(a)}/head")).json() is None
    assert (await c.delete(url)).status_code == 204  # already abandoned
    # writes to it are refused, reads still answer
    r = await c.post(f"{url}/orders", json={"type": "market", "legs": [leg(5950, "C", "buy to open")]})
    assert r.status_code == 409 and r.text.startswith("session_closed:")
    assert (await c.get(f"{url}/orders")).json() == []
    fresh = await open_session(c, a)
    assert fresh["id"] != s["id"]
    listed = (await c.get(sessions_url(a))).json()
    assert [x["id"] for x in listed] == [fresh["id"], s["id"]]


async def test_a_traded_session_cannot_be_deleted(live_env):
    c, a = await new_account(live_env)
    s = await open_session(c, a)
    url = f"{sessions_url(a)}/{s['id']}"
    r = await c.post(f"{url}/orders", json={"type": "limit", "price": "0.05", "price_effect": "debit",
                                            "legs": [leg(5950, "C", "buy to open")]})
    assert r.status_code == 201, r.text
    await c.delete(f"{url}/orders/{r.json()['id']}")  # even with no order left pending
    r = await c.delete(url)
    assert r.status_code == 409 and r.text.startswith("session_traded:")
    assert (await c.get(url)).json()["status"] == "open"


async def test_orders_positions_and_transactions_live_under_the_session(live_env):
    c, a = await new_account(live_env)
    s = await open_session(c, a)
    url = f"{sessions_url(a)}/{s['id']}"
    r = await c.post(f"{url}/orders/dry-run", json={"type": "market", "legs": [leg(5950, "C", "buy to open")]})
    assert r.status_code == 200 and r.json()["id"] == "00000000-0000-0000-0000-000000000000"
    tick = live_env.market.current()
    r = await c.post(f"{url}/orders", json={"type": "market", "legs": [leg(5950, "C", "buy to open")]},
                     headers={"Idempotency-Key": "acct-1"})
    assert r.status_code == 201, r.text
    order = r.json()
    assert order["status"] == "filled" and Decimal(order["fill_price"]) == tick.quote(5950, "C").ask
    again = await c.post(f"{url}/orders", json={"type": "market", "legs": [leg(5950, "C", "buy to open")]},
                         headers={"Idempotency-Key": "acct-1"})
    assert again.status_code == 201 and again.json()["id"] == order["id"]
    resting = (await c.post(f"{url}/orders", json={"type": "limit", "price": "0.05", "price_effect": "debit",
                                                   "legs": [leg(5900, "P", "buy to open")]})).json()
    r = await c.put(f"{url}/orders", json={"order_id": resting["id"], "type": "limit", "price": "0.10",
                                           "price_effect": "debit", "legs": [leg(5900, "P", "buy to open")]})
    assert r.status_code == 200, r.text
    assert (await c.delete(f"{url}/orders/{r.json()['id']}")).status_code == 204
    assert [o["status"] for o in (await c.get(f"{url}/orders")).json()] == ["filled", "canceled", "canceled"]
    assert (await c.get(f"{url}/orders/{order['id']}")).json()["id"] == order["id"]
    positions = (await c.get(f"{url}/positions")).json()
    assert [(p["instrument"], p["direction"]) for p in positions] == [(osi(5950, "C"), "long")]
    assert len((await c.get(f"{url}/transactions")).json()) == 1
    # the session object and the account's current value follow the book
    got = (await c.get(url)).json()
    assert Decimal(got["debits"]) == Decimal(order["transactions"][0]["value"])
    assert Decimal(got["fees"]) == Decimal(order["fees"])
    account = (await c.get(f"/accounts/{a['id']}")).json()
    assert account["cash_balance"] == "100000", "the carry never folds in intraday P&L"
    assert account["current_value"] == got["net_liquidation_value"] != "100000"


async def test_session_routes_check_ownership(live_env):
    c, a = await new_account(live_env)
    s = await open_session(c, a)
    order = (await c.post(f"{sessions_url(a)}/{s['id']}/orders", json={
        "type": "limit", "price": "0.05", "price_effect": "debit", "legs": [leg(5950, "C", "buy to open")]})).json()
    token = c.headers["Authorization"]
    other_c, other_a = await new_account(live_env)
    _, mine_too = await new_account(live_env, token=token)
    url = f"{sessions_url(a)}/{s['id']}"
    for client, path in ((other_c, url), (other_c, f"{sessions_url(other_a)}/{s['id']}"),
                         (c, f"{sessions_url(mine_too)}/{s['id']}"), (c, f"{sessions_url(a)}/{uuid.uuid4()}"),
                         (c, f"{sessions_url(a)}/not-a-uuid")):
        assert (await client.get(path)).status_code == 404, path
        assert (await client.get(f"{path}/orders")).status_code == 404, path
        assert (await client.get(f"{path}/history")).status_code == 404, path
        assert (await client.post(f"{path}/orders", json={
            "type": "limit", "price": "0.05", "price_effect": "debit",
            "legs": [leg(5950, "C", "buy to open")]})).status_code == 404, path
        assert (await client.delete(f"{path}/orders/{order['id']}")).status_code == 404, path
        assert (await client.delete(path)).status_code == 404, path
    assert (await c.get(f"{url}/orders/{order['id']}")).json()["status"] == "pending"


async def test_history_is_per_second_with_an_interval(live_env):
    c, a = await new_account(live_env)
    s = await open_session(c, a)
    url = f"{sessions_url(a)}/{s['id']}"
    await c.post(f"{url}/orders", json={"type": "market", "legs": [leg(5950, "C", "buy to open")]})
    for _ in range(6):
        live_env.market.step()
        await settle_down(live_env)
    rows = (await c.get(f"{url}/history")).json()
    assert len(rows) >= 6 and len({r["timestamp"] for r in rows}) == len(rows)
    sampled = (await c.get(f"{url}/history?interval=2")).json()
    assert 0 < len(sampled) < len(rows)
    assert (await c.get(f"{url}/history?interval=0")).status_code == 400


async def test_the_close_settles_the_session_and_carries_its_closing_balance(live_env):
    c, a = await new_account(live_env, capital="100000")
    s = await open_session(c, a)
    url = f"{sessions_url(a)}/{s['id']}"
    tick = live_env.market.current()
    net = mid(tick, 5900, "C") - mid(tick, 5910, "C")
    r = await c.post(f"{url}/orders", json={
        "type": "limit", "price": str(on_grid(net + Decimal("0.50"), Decimal("0.05"))), "price_effect": "debit",
        "legs": [leg(5900, "C", "buy to open"), leg(5910, "C", "sell to open")]})
    assert r.json()["status"] == "filled", r.text
    resting = (await c.post(f"{url}/orders", json={"type": "limit", "price": "0.05", "price_effect": "debit",
                                                   "legs": [leg(5950, "P", "buy to open")]})).json()
    live_env.market.step()
    await settle_down(live_env)
    live_env.market.close()
    await settle_down(live_env)

    settled = (await c.get(url)).json()
    assert settled["status"] == "settled" and settled["ended"] is True
    assert settled["settled_at"] is not None and settled["time"] == settled["settled_at"]
    closing = settled["closing_balance"]
    assert Decimal(closing) != Decimal("100000")
    assert settled["net_liquidation_value"] == closing, "a settled day is all cash"
    assert Decimal(settled["profit_loss"]) == Decimal(closing) - Decimal("100000")
    assert settled["opening_balance"] == "100000"

    account = (await c.get(f"/accounts/{a['id']}")).json()
    assert account["cash_balance"] == account["current_value"] == closing
    assert account["starting_capital"] == "100000"
    assert (await c.get(f"{sessions_url(a)}/current")).json() is None
    assert (await c.get(f"{sessions_url(a)}/head")).json() == settled
    assert (await c.get(sessions_url(a))).json() == [settled]

    # the settled day stays readable; writes and deletion are refused
    orders = {o["id"]: o for o in (await c.get(f"{url}/orders")).json()}
    assert orders[resting["id"]]["status"] == "expired"
    assert (await c.get(f"{url}/positions")).json() == []
    txs = (await c.get(f"{url}/transactions")).json()
    assert len(txs) >= 2
    assert len((await c.get(f"{url}/history")).json()) >= 1
    r = await c.post(f"{url}/orders", json={"type": "market", "legs": [leg(5950, "C", "buy to open")]})
    assert r.status_code == 409 and r.text.startswith("session_closed:")
    r = await c.delete(url)
    assert r.status_code == 409 and r.text.startswith("session_traded:")
    r = await c.patch(url, json={})
    assert r.status_code == 409 and r.text.startswith("live_clock:")
    # the account has traded: its starting capital is fixed now; archiving is allowed
    r = await c.patch(f"/accounts/{a['id']}", json={"starting_capital": "5000"})
    assert r.status_code == 409 and r.text.startswith("capital_immutable:")
    r = await c.patch(f"/accounts/{a['id']}", json={"starting_capital": "100000.00"})
    assert r.status_code == 200  # not a change
    # the market has closed: no new session today
    r = await c.post(sessions_url(a), json={})
    assert r.status_code == 400 and r.text.startswith("market_closed:")
    assert (await c.patch(f"/accounts/{a['id']}", json={"status": "archived"})).status_code == 200


async def test_a_session_opens_with_the_balance_an_earlier_settlement_carried(live_env):
    c, a = await new_account(live_env, capital="100000")
    earlier = await settled_earlier_day(live_env, a, Decimal("101234.56"))
    account = (await c.get(f"/accounts/{a['id']}")).json()
    assert account["cash_balance"] == account["current_value"] == "101234.56"
    head = (await c.get(f"{sessions_url(a)}/head")).json()
    assert head["id"] == str(earlier) and head["closing_balance"] == "101234.56" and head["ended"] is True
    s = await open_session(c, a)
    assert s["opening_balance"] == s["starting_capital"] == s["net_liquidation_value"] == "101234.56"
    assert [x["id"] for x in (await c.get(sessions_url(a))).json()] == [s["id"], str(earlier)]
    assert (await c.get(f"{sessions_url(a)}/head")).json()["id"] == s["id"]
    # the earlier day counts as trading history only if it had orders: this one had none
    r = await c.delete(f"{sessions_url(a)}/{earlier}")
    assert r.status_code == 409 and r.text.startswith("session_closed:")


async def test_a_carried_balance_outside_the_capital_range_still_opens(live_env):
    c, a = await new_account(live_env, capital="1000")
    await settled_earlier_day(live_env, a, Decimal("812.40"))
    s = await open_session(c, a)
    assert s["opening_balance"] == "812.40"


async def test_an_unsettled_session_of_an_earlier_day_blocks_opening(live_env):
    c, a = await new_account(live_env)
    day = dt.date(2025, 1, 14)

    async def stuck(conn):
        user_id = await conn.fetchval("SELECT user_id FROM accounts WHERE id = $1", uuid.UUID(a["id"]))
        start = dt.datetime.combine(day, dt.time(14, 30), tzinfo=dt.UTC)
        await conn.execute(
            "INSERT INTO simulations (id, user_id, account_id, date, starting_capital, status, start_time,"
            " end_time, created_at) VALUES ($1, $2, $3, $4, 100000, 'open', $5, $5, $5)",
            uuid.uuid4(), user_id, uuid.UUID(a["id"]), day, start)

    await live_env.db.run(stuck)
    r = await c.post(sessions_url(a), json={})
    assert r.status_code == 409 and r.text.startswith("session_open:")
    current = (await c.get(f"{sessions_url(a)}/current")).json()
    assert current["date"] == str(day) and current["status"] == "open"
