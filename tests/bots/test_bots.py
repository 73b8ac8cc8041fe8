"""/bots over real HTTP: create, list, get, patch, delete and summary with the spec's rules."""

import datetime as dt
import uuid
from decimal import Decimal

import httpx
import pytest

from bots_helpers import new_bot, save_strategy, spread

BROKERS = ("broker_ibkr", "broker_schwab", "broker_tastytrade", "broker_tradestation", "broker_tradier",
           "broker_etrade")
RISK_DEFAULTS = {"max_daily_loss_pct": "0.0500", "max_open_positions": 10, "max_open_orders": 10,
                 "data_staleness_threshold_ms": 3000, "auto_pause_on_error": True, "error_budget": 5}
REPRICE_DEFAULTS = {
    "opening": {"enabled": True, "nudge_after_seconds": 20, "min_interval_seconds": 4, "flat_tolerance_ticks": 1,
                "max_concession": "0.20"},
    "closing": {"enabled": True, "nudge_after_seconds": 15, "min_interval_seconds": 4, "flat_tolerance_ticks": 1},
}


async def user_with_strategy(env, **fields):
    _, token = await env.user()
    c = env.client(token)
    s = await save_strategy(c, **fields)
    return c, s


async def test_create_returns_the_bot_object_with_the_defaults(bots_env):
    c, s = await user_with_strategy(bots_env)
    r = await c.post("/bots", json={"strategy_id": s["id"], "name": "Delta-30 put spread",
                                    "starting_capital": "25000", "description": "Runs my spread live"})
    assert r.status_code == 201, r.text
    b = r.json()
    uuid.UUID(b["id"])
    assert {k: b[k] for k in ("name", "description", "engine", "type", "status", "runtime_status", "strategy_id",
                              "source_hash", "starting_capital", "cash_balance")} == {
        "name": "Delta-30 put spread", "description": "Runs my spread live", "engine": "live_sim", "type": "bot",
        "status": "idle", "runtime_status": "idle", "strategy_id": s["id"], "source_hash": s["source_hash"],
        "starting_capital": "25000", "cash_balance": "25000"}
    assert {k: b[k] for k in RISK_DEFAULTS} == RISK_DEFAULTS
    assert b["reprice"] == REPRICE_DEFAULTS
    assert b["schedule"] == {"auto_start": False}
    assert b["active_session"] is None and b["last_session"] is None
    got = await c.get(f"/bots/{b['id']}")
    assert got.status_code == 200 and got.json() == {"bot": b, "sessions": []}


async def test_the_bot_is_a_bot_type_live_sim_account_made_in_one_go(bots_env):
    c, s = await user_with_strategy(bots_env)
    r = await c.post("/bots", json={"strategy_id": s["id"], "name": "b", "starting_capital": "2500.50"})
    b = r.json()
    row = await bots_env.db.run(lambda conn: conn.fetchrow(
        "SELECT a.type, a.engine, a.cash_balance, a.starting_capital, b.strategy_link_id, b.source_hash"
        " FROM accounts a JOIN bots b ON b.account_id = a.id WHERE a.id = $1", uuid.UUID(b["id"])))
    assert row["type"] == "bot" and row["engine"] == "live_sim"
    assert row["cash_balance"] == row["starting_capital"] == Decimal("2500.50")
    assert str(row["strategy_link_id"]) == s["id"] and row["source_hash"] == s["source_hash"]
    assert b["cash_balance"] == "2500.50"
    assert (await c.get("/accounts")).json() == [], "a bot is not a manual account"
    assert (await c.get(f"/accounts/{b['id']}")).status_code == 404


async def test_create_with_a_policy_and_a_schedule(bots_env):
    c, s = await user_with_strategy(bots_env)
    r = await c.post("/bots", json={
        "strategy_id": s["id"], "name": "tight", "starting_capital": 25000, "max_daily_loss_pct": "0.0200",
        "max_open_positions": 4, "max_open_orders": 2, "data_staleness_threshold_ms": 500,
        "auto_pause_on_error": False, "error_budget": 0,
        "reprice": {"opening": {"max_concession": "0.10"}, "closing": {"enabled": False}},
        "schedule": {"auto_start": True}})
    assert r.status_code == 201, r.text
    b = r.json()
    assert {k: b[k] for k in RISK_DEFAULTS} == {
        "max_daily_loss_pct": "0.0200", "max_open_positions": 4, "max_open_orders": 2,
        "data_staleness_threshold_ms": 500, "auto_pause_on_error": False, "error_budget": 0}
    assert b["reprice"]["opening"] == {**REPRICE_DEFAULTS["opening"], "max_concession": "0.10"}
    assert b["reprice"]["closing"] == {**REPRICE_DEFAULTS["closing"], "enabled": False}
    assert b["schedule"] == {"auto_start": True}
    assert await bots_env.db.fetchval("SELECT auto_start FROM bots WHERE account_id = $1", uuid.UUID(b["id"]))


async def test_required_fields_and_name_rules_are_invalid_input(bots_env):
    c, s = await user_with_strategy(bots_env)
    base = {"strategy_id": s["id"], "name": "x", "starting_capital": "5000"}
    for missing in ("strategy_id", "name", "starting_capital"):
        body = {k: v for k, v in base.items() if k != missing}
        r = await c.post("/bots", json=body)
        assert r.status_code == 400 and r.text.startswith("invalid_input:"), (missing, r.text)
    for name in ("", "   ", "x" * 81, "a\nb", 5):
        r = await c.post("/bots", json={**base, "name": name})
        assert r.status_code == 400 and r.text.startswith("invalid_input:"), (name, r.text)
    r = await c.post("/bots", json={**base, "description": "d" * 1001})
    assert r.status_code == 400 and r.text.startswith("invalid_input:")
    assert (await c.post("/bots", json={**base, "name": "x" * 80})).status_code == 201
    assert (await c.get("/bots")).json()[0]["name"] == "x" * 80


@pytest.mark.parametrize("strategy_id", ["not-a-uuid", "", "1234"])
async def test_a_malformed_strategy_id_is_invalid_strategy_id(bots_env, strategy_id):
    c, _ = await user_with_strategy(bots_env)
    r = await c.post("/bots", json={"strategy_id": strategy_id, "name": "x", "starting_capital": "5000"})
    assert r.status_code == 400 and r.text.startswith("invalid_strategy_id:"), r.text


async def test_a_strategy_that_is_not_yours_is_403(bots_env):
    c, s = await user_with_strategy(bots_env)
    other, theirs = await user_with_strategy(bots_env, privacy="public")
    for sid in (str(uuid.uuid4()), theirs["id"]):
        r = await c.post("/bots", json={"strategy_id": sid, "name": "x", "starting_capital": "5000"})
        assert r.status_code == 403 and r.text.startswith("strategy_not_found_or_not_owned:"), r.text
    assert (await c.delete(f"/strategies/{s['id']}")).status_code == 204
    r = await c.post("/bots", json={"strategy_id": s["id"], "name": "x", "starting_capital": "5000"})
    assert r.status_code == 403 and r.text.startswith("strategy_not_found_or_not_owned:"), "an unlinked one"
    assert await bots_env.db.fetchval("SELECT count(*) FROM accounts WHERE type = 'bot'") == 0


@pytest.mark.parametrize("capital", ["999", "999.99", "1000000000.01", "1000000001", "NaN", "Infinity",
                                     "1000.001", "-5000", "1E+10"])
async def test_starting_capital_outside_the_range_is_invalid_starting_capital(bots_env, capital):
    c, s = await user_with_strategy(bots_env)
    r = await c.post("/bots", json={"strategy_id": s["id"], "name": "x", "starting_capital": capital})
    assert r.status_code == 400 and r.text.startswith("invalid_starting_capital:"), r.text


async def test_the_capital_range_ends_are_allowed(bots_env):
    c, s = await user_with_strategy(bots_env)
    for i, capital in enumerate(("1000", "1000000000")):
        r = await c.post("/bots", json={"strategy_id": s["id"], "name": f"b{i}", "starting_capital": capital})
        assert r.status_code == 201 and r.json()["cash_balance"] == capital


RISK_BOUNDS = [
    ("max_daily_loss_pct", "0.0049", "0.0050", "0.5000", "0.5001"),
    ("max_open_positions", 0, 1, 100, 101),
    ("max_open_orders", 0, 1, 50, 51),
    ("data_staleness_threshold_ms", 499, 500, 10000, 10001),
    ("error_budget", -1, 0, 100, 101),
]


@pytest.mark.parametrize("field,below,low,high,above", RISK_BOUNDS)
async def test_every_risk_field_is_bounded_and_named(bots_env, field, below, low, high, above):
    c, s = await user_with_strategy(bots_env)
    base = {"strategy_id": s["id"], "starting_capital": "5000"}
    for value in (below, above):
        r = await c.post("/bots", json={**base, "name": "x", field: value}, headers={"Accept": "application/json"})
        assert r.status_code == 400, r.text
        assert r.json()["code"] == "invalid_input" and r.json()["details"]["field"] == field, r.text
    for i, value in enumerate((low, high)):
        r = await c.post("/bots", json={**base, "name": f"ok{i}", field: value})
        assert r.status_code == 201, r.text
        assert r.json()[field] == value


@pytest.mark.parametrize("body", [{"max_open_positions": "4"}, {"auto_pause_on_error": "yes"},
                                  {"max_daily_loss_pct": "NaN"}, {"error_budget": 1.5},
                                  {"max_daily_loss_pct": True}])
async def test_a_risk_field_of_the_wrong_type_is_invalid_input(bots_env, body):
    c, s = await user_with_strategy(bots_env)
    r = await c.post("/bots", json={"strategy_id": s["id"], "name": "x", "starting_capital": "5000", **body})
    assert r.status_code == 400 and r.text.startswith("invalid_input:"), r.text
    assert list(body)[0] in r.text


@pytest.mark.parametrize("reprice,field", [
    ({"opening": {"nudge_after_seconds": 0}}, "reprice.opening.nudge_after_seconds"),
    ({"opening": {"nudge_after_seconds": 601}}, "reprice.opening.nudge_after_seconds"),
    ({"closing": {"min_interval_seconds": 121}}, "reprice.closing.min_interval_seconds"),
    ({"closing": {"flat_tolerance_ticks": 21}}, "reprice.closing.flat_tolerance_ticks"),
    ({"opening": {"flat_tolerance_ticks": 0}}, "reprice.opening.flat_tolerance_ticks"),
    ({"opening": {"max_concession": "0.07"}}, "reprice.opening.max_concession"),
    ({"opening": {"max_concession": "10.05"}}, "reprice.opening.max_concession"),
    ({"opening": {"max_concession": -0.05}}, "reprice.opening.max_concession"),
    ({"closing": {"max_concession": "0.10"}}, "reprice.closing.max_concession"),
    ({"opening": {"enabled": "yes"}}, "reprice.opening.enabled"),
    ({"opening": {"nudge": 5}}, "reprice.opening.nudge"),
    ({"middle": {}}, "reprice.middle"),
    ({"opening": 5}, "reprice.opening"),
    ([], "reprice"),
    (None, "reprice"),
])
async def test_a_bad_reprice_is_invalid_reprice_naming_the_field(bots_env, reprice, field):
    c, s = await user_with_strategy(bots_env)
    r = await c.post("/bots", json={"strategy_id": s["id"], "name": "x", "starting_capital": "5000",
                                    "reprice": reprice}, headers={"Accept": "application/json"})
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "invalid_reprice" and field in r.json()["details"]["fields"], r.text


async def test_reprice_ends_are_allowed(bots_env):
    c, s = await user_with_strategy(bots_env)
    reprice = {"opening": {"nudge_after_seconds": 600, "min_interval_seconds": 120, "flat_tolerance_ticks": 20,
                           "max_concession": 10},
               "closing": {"nudge_after_seconds": 1, "min_interval_seconds": 1, "flat_tolerance_ticks": 1}}
    r = await c.post("/bots", json={"strategy_id": s["id"], "name": "x", "starting_capital": "5000",
                                    "reprice": reprice})
    assert r.status_code == 201, r.text
    assert r.json()["reprice"]["opening"]["max_concession"] == "10"
    r = await c.post("/bots", json={"strategy_id": s["id"], "name": "y", "starting_capital": "5000",
                                    "reprice": {"opening": {"max_concession": 0}}})
    assert r.status_code == 201 and r.json()["reprice"]["opening"]["max_concession"] == "0"


@pytest.mark.parametrize("engine", BROKERS)
async def test_broker_engines_are_409_engine_not_available(bots_env, engine):
    c, s = await user_with_strategy(bots_env)
    r = await c.post("/bots", json={"strategy_id": s["id"], "name": "x", "starting_capital": "5000",
                                    "engine": engine})
    assert r.status_code == 409 and r.text.startswith("engine_not_available:"), r.text


async def test_other_engines_are_invalid_input_and_live_sim_is_the_default(bots_env):
    c, s = await user_with_strategy(bots_env)
    for engine in ("historical", "paper"):
        r = await c.post("/bots", json={"strategy_id": s["id"], "name": "x", "starting_capital": "5000",
                                        "engine": engine})
        assert r.status_code == 400 and r.text.startswith("invalid_input:"), r.text
    r = await c.post("/bots", json={"strategy_id": s["id"], "name": "x", "starting_capital": "5000",
                                    "engine": "live_sim"})
    assert r.status_code == 201


async def test_names_are_unique_among_active_bots(bots_env):
    c, b = await new_bot(bots_env, name="Spread")
    s = b["strategy_id"]
    r = await c.post("/bots", json={"strategy_id": s, "name": "spread", "starting_capital": "5000"})
    assert r.status_code == 409 and r.text.startswith("name_taken:"), r.text
    assert (await c.patch(f"/bots/{b['id']}", json={"status": "archived"})).status_code == 200
    r = await c.post("/bots", json={"strategy_id": s, "name": "Spread", "starting_capital": "5000"})
    assert r.status_code == 201, "an archived bot's name is free"
    r = await c.patch(f"/bots/{b['id']}", json={"status": "idle"})
    assert r.status_code == 409 and r.text.startswith("name_taken:")
    # another user, and a manual account of the same user, may use the name
    other, _ = await new_bot(bots_env, name="Spread")
    r = await c.post("/accounts", json={"name": "Spread", "starting_capital": "5000"})
    assert r.status_code == 201


async def test_list_filters_by_strategy_link(bots_env):
    _, token = await bots_env.user()
    c = bots_env.client(token)
    a = await save_strategy(c)
    b = await save_strategy(c, spread(profit_target_pct=25))
    made = []
    for sid, name in ((a["id"], "one"), (b["id"], "two"), (a["id"], "three")):
        r = await c.post("/bots", json={"strategy_id": sid, "name": name, "starting_capital": "5000"})
        made.append(r.json())
    listed = (await c.get("/bots")).json()
    assert [x["name"] for x in listed] == ["one", "two", "three"], "oldest first"
    assert listed == made
    assert [x["name"] for x in (await c.get("/bots", params={"strategy_id": a["id"]})).json()] == ["one", "three"]
    assert [x["name"] for x in (await c.get("/bots", params={"strategy_id": b["id"]})).json()] == ["two"]
    for unknown in (str(uuid.uuid4()), "nope"):
        r = await c.get("/bots", params={"strategy_id": unknown})
        assert r.status_code == 200 and r.json() == []
    # unlinking the strategy leaves its bots pinned and still found by the link
    assert (await c.delete(f"/strategies/{a['id']}")).status_code == 204
    assert [x["name"] for x in (await c.get("/bots", params={"strategy_id": a["id"]})).json()] == ["one", "three"]
    assert (await c.get(f"/bots/{made[0]['id']}")).json()["bot"]["source_hash"] == a["source_hash"]


async def test_bots_of_others_are_404_and_not_listed(bots_env):
    c, b = await new_bot(bots_env)
    _, token = await bots_env.user()
    other = bots_env.client(token)
    assert (await other.get("/bots")).json() == []
    assert (await other.get("/bots", params={"strategy_id": b["strategy_id"]})).json() == []
    for method, path, body in (("GET", "", None), ("PATCH", "", {"name": "mine"}), ("DELETE", "", None),
                               ("GET", "/summary", None)):
        r = await other.request(method, f"/bots/{b['id']}{path}", json=body)
        assert r.status_code == 404 and r.text.startswith("not_found:"), (method, path, r.text)
    for path in ("/bots/not-a-uuid", f"/bots/{uuid.uuid4()}", "/bots/not-a-uuid/summary"):
        assert (await c.get(path)).status_code == 404
    assert (await c.get(f"/bots/{b['id']}")).json()["bot"]["name"] == b["name"]


async def test_the_bot_routes_need_a_token(bots_env):
    _, b = await new_bot(bots_env)
    async with httpx.AsyncClient(base_url=bots_env.url) as anon:
        for method, path in (("GET", "/bots"), ("POST", "/bots"), ("GET", f"/bots/{b['id']}"),
                             ("PATCH", f"/bots/{b['id']}"), ("DELETE", f"/bots/{b['id']}"),
                             ("GET", f"/bots/{b['id']}/summary")):
            assert (await anon.request(method, path)).status_code == 401, (method, path)


async def test_patch_applies_only_the_fields_sent(bots_env):
    c, b = await new_bot(bots_env, max_open_positions=4, reprice={"closing": {"nudge_after_seconds": 30}})
    r = await c.patch(f"/bots/{b['id']}", json={"name": "Delta-30 — v2"})
    assert r.status_code == 200, r.text
    assert r.json() == {**b, "name": "Delta-30 — v2"}
    r = await c.patch(f"/bots/{b['id']}", json={"max_daily_loss_pct": "0.0150", "description": "tighter"})
    assert r.json()["max_daily_loss_pct"] == "0.0150" and r.json()["max_open_positions"] == 4
    assert r.json()["description"] == "tighter"
    r = await c.patch(f"/bots/{b['id']}", json={"reprice": {"opening": {"max_concession": "0.10"}}})
    assert r.json()["reprice"] == {"opening": {**REPRICE_DEFAULTS["opening"], "max_concession": "0.10"},
                                   "closing": {**REPRICE_DEFAULTS["closing"], "nudge_after_seconds": 30}}
    r = await c.patch(f"/bots/{b['id']}", json={"schedule": {"auto_start": True}, "description": None})
    assert r.json()["schedule"] == {"auto_start": True} and r.json()["description"] is None
    r = await c.patch(f"/bots/{b['id']}", json={"schedule": {}})
    assert r.status_code == 200 and r.json()["schedule"] == {"auto_start": True}, "only the fields sent"
    final = (await c.get(f"/bots/{b['id']}")).json()["bot"]
    assert final == r.json()
    assert final["max_daily_loss_pct"] == "0.0150" and final["name"] == "Delta-30 — v2"


async def test_patch_refuses_bad_fields_and_changes_nothing(bots_env):
    c, b = await new_bot(bots_env)
    for body, code in (({}, "invalid_input"), ({"status": "active"}, "invalid_input"),
                       ({"status": "running"}, "invalid_input"), ({"name": ""}, "invalid_input"),
                       ({"max_open_orders": 51}, "invalid_input"), ({"error_budget": "3"}, "invalid_input"),
                       ({"reprice": {"opening": {"nudge_after_seconds": 0}}}, "invalid_reprice"),
                       ({"reprice": {"closing": {"max_concession": "0.1"}}}, "invalid_reprice"),
                       ({"name": "ok", "max_open_positions": 0}, "invalid_input"),
                       ({"description": "d" * 1001}, "invalid_input"), ({"description": "a\x00b"}, "invalid_input"),
                       ({"schedule": {"auto_start": "yes"}}, "invalid_input")):
        r = await c.patch(f"/bots/{b['id']}", json=body)
        assert r.status_code == 400 and r.text.startswith(f"{code}:"), (body, r.text)
    assert (await c.get(f"/bots/{b['id']}")).json()["bot"] == b


async def test_archive_and_restore(bots_env):
    c, b = await new_bot(bots_env)
    r = await c.patch(f"/bots/{b['id']}", json={"status": "archived"})
    assert r.status_code == 200 and r.json()["status"] == "archived" and r.json()["runtime_status"] == "archived"
    assert (await c.get("/bots")).json()[0]["status"] == "archived", "archived bots are listed"
    r = await c.patch(f"/bots/{b['id']}", json={"status": "idle"})
    assert r.json()["status"] == "idle" and r.json()["runtime_status"] == "idle"


async def test_delete_is_204_then_the_bot_is_gone(bots_env):
    c, b = await new_bot(bots_env)
    r = await c.delete(f"/bots/{b['id']}")
    assert r.status_code == 204 and r.content == b""
    assert (await c.get(f"/bots/{b['id']}")).status_code == 404
    assert (await c.delete(f"/bots/{b['id']}")).status_code == 404
    assert (await c.patch(f"/bots/{b['id']}", json={"name": "x"})).status_code == 404
    assert (await c.get("/bots")).json() == []
    r = await c.post("/bots", json={"strategy_id": b["strategy_id"], "name": b["name"], "starting_capital": "5000"})
    assert r.status_code == 201, "a deleted bot's name is free"


async def insert_session(env, bot_id: str, day: dt.date, status: str, total_pl: str | None = None) -> uuid.UUID:
    """A bot session row as the runtime writes it (finalized when `total_pl` is given)."""
    sid = uuid.uuid4()
    bid = uuid.UUID(bot_id)

    async def unit(conn) -> None:
        source_hash = await conn.fetchval("SELECT source_hash FROM bots WHERE account_id = $1", bid)
        at = dt.datetime.combine(day, dt.time(14, 30), tzinfo=dt.UTC)
        await conn.execute(
            "INSERT INTO bot_sessions (id, bot_id, date, status, source_hash, risk, reprice, opening_balance,"
            " created_at) SELECT $1, $2, $3, $4, $5, b.risk, b.reprice, 25000, $6 FROM bots b"
            " WHERE b.account_id = $2", sid, bid, day, status, source_hash, at)
        if total_pl is not None:
            pl = Decimal(total_pl)
            await conn.execute(
                "UPDATE bot_sessions SET final_nlv = 25000 + $2::numeric, realized_pl = $2::numeric, total_pl = $2::numeric, fees = 4.20,"
                " max_intraday_dd = 0.01, order_count = 4, fill_count = 2, ended_at = created_at + interval '7h'"
                " WHERE id = $1", sid, pl)

    await env.db.run(unit)
    return sid


async def test_delete_and_archive_are_refused_while_a_session_is_active(bots_env):
    c, b = await new_bot(bots_env)
    sid = await insert_session(bots_env, b["id"], dt.date(2025, 1, 15), "running")
    r = await c.delete(f"/bots/{b['id']}")
    assert r.status_code == 409 and r.text.startswith("bot_has_active_session:"), r.text
    r = await c.patch(f"/bots/{b['id']}", json={"status": "archived"})
    assert r.status_code == 409 and r.text.startswith("bot_has_active_session:"), r.text
    assert (await c.patch(f"/bots/{b['id']}", json={"name": "renamed"})).status_code == 200
    await bots_env.db.run(lambda conn: conn.execute(
        "UPDATE bot_sessions SET status = 'killed' WHERE id = $1", sid))
    assert (await c.patch(f"/bots/{b['id']}", json={"status": "archived"})).status_code == 200
    assert (await c.delete(f"/bots/{b['id']}")).status_code == 204


async def test_list_shows_each_bots_active_and_last_session(bots_env):
    c, b = await new_bot(bots_env)
    await insert_session(bots_env, b["id"], dt.date(2025, 1, 14), "completed", "120")
    sid = await insert_session(bots_env, b["id"], dt.date(2025, 1, 15), "running")
    listed = (await c.get("/bots")).json()[0]
    assert listed["active_session"]["id"] == listed["last_session"]["id"] == str(sid)
    assert listed["active_session"]["status"] == "running" and listed["runtime_status"] == "running"
    await bots_env.db.run(lambda conn: conn.execute("UPDATE bot_sessions SET status = 'halted' WHERE id = $1", sid))
    listed = (await c.get("/bots")).json()[0]
    assert listed["active_session"] is None and listed["last_session"]["status"] == "halted"


async def test_summary_with_no_finalized_session(bots_env):
    c, b = await new_bot(bots_env)
    await insert_session(bots_env, b["id"], dt.date(2025, 1, 15), "running")
    r = await c.get(f"/bots/{b['id']}/summary")
    assert r.status_code == 200
    assert r.json() == {"bot_id": b["id"], "total_sessions": 0, "win_count": 0, "loss_count": 0,
                        "win_rate_pct": None, "total_pl": "0", "best_day": None, "best_day_date": None,
                        "worst_day": None, "worst_day_date": None, "average_day_pl": None, "sparkline": []}


async def test_summary_rolls_up_the_finalized_sessions(bots_env):
    c, b = await new_bot(bots_env)
    days = [(dt.date(2025, 1, 13), "completed", "120.50"), (dt.date(2025, 1, 14), "halted", "-300"),
            (dt.date(2025, 1, 10), "completed", "80"), (dt.date(2025, 1, 16), "killed", "0"),
            (dt.date(2025, 1, 15), "completed", "120.50")]
    for day, status, pl in days:
        await insert_session(bots_env, b["id"], day, status, pl)
    await insert_session(bots_env, b["id"], dt.date(2025, 1, 17), "failed")  # never finalized: not counted
    s = (await c.get(f"/bots/{b['id']}/summary")).json()
    assert s == {
        "bot_id": b["id"], "total_sessions": 5, "win_count": 3, "loss_count": 1, "win_rate_pct": "60",
        "total_pl": "21", "best_day": "120.50", "best_day_date": "2025-01-13", "worst_day": "-300",
        "worst_day_date": "2025-01-14", "average_day_pl": "4.20",
        "sparkline": ["80", "200.50", "-99.50", "21", "21"]}


async def test_summary_rounds_the_win_rate_to_two_places(bots_env):
    c, b = await new_bot(bots_env)
    for i, pl in enumerate(("10", "10", "-5")):
        await insert_session(bots_env, b["id"], dt.date(2025, 1, 13 + i), "completed", pl)
    s = (await c.get(f"/bots/{b['id']}/summary")).json()
    assert s["win_rate_pct"] == "66.67" and s["average_day_pl"] == "5"
