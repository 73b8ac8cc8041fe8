"""/accounts over real HTTP: create, list, get, patch and delete with the spec's rules."""

import uuid

import pytest

from accounts_helpers import new_account, open_session

BROKERS = ("broker_ibkr", "broker_schwab", "broker_tastytrade", "broker_tradestation", "broker_tradier",
           "broker_etrade")


async def test_create_returns_the_account_object_with_canonical_money(live_env):
    _, token = await live_env.user()
    c = live_env.client(token)
    r = await c.post("/accounts", json={"name": "Iron condors", "starting_capital": 100000,
                                        "description": "Defined-risk study account"})
    assert r.status_code == 201, r.text
    a = r.json()
    assert set(a) == {"id", "name", "description", "engine", "type", "starting_capital", "cash_balance",
                      "current_value", "status", "created_at"}
    assert a["name"] == "Iron condors" and a["description"] == "Defined-risk study account"
    assert a["engine"] == "live_sim" and a["type"] == "manual" and a["status"] == "active"
    assert a["starting_capital"] == a["cash_balance"] == a["current_value"] == "100000"
    uuid.UUID(a["id"])
    assert (await c.get(f"/accounts/{a['id']}")).json() == a


async def test_cents_are_kept_and_whole_dollars_print_without_a_fraction(live_env):
    _, a = await new_account(live_env, capital="2500.50")
    assert a["starting_capital"] == a["cash_balance"] == "2500.50"
    _, b = await new_account(live_env, capital="1E+4")
    assert b["starting_capital"] == "10000"


@pytest.mark.parametrize("capital", ["999", "999.99", "10000000.01", "10000001", "NaN", "Infinity", "1000.001",
                                     "-5000"])
async def test_starting_capital_outside_the_range_is_400(live_env, capital):
    _, token = await live_env.user()
    r = await live_env.client(token).post("/accounts", json={"name": "x", "starting_capital": capital})
    assert r.status_code == 400 and r.text.startswith("invalid_starting_capital:"), r.text


async def test_the_range_ends_are_allowed(live_env):
    for capital in ("1000", "10000000"):
        _, a = await new_account(live_env, capital=capital)
        assert a["starting_capital"] == capital


async def test_name_is_required_and_at_most_80_characters(live_env):
    _, token = await live_env.user()
    c = live_env.client(token)
    for body in ({"starting_capital": "5000"}, {"name": "", "starting_capital": "5000"},
                 {"name": "   ", "starting_capital": "5000"}, {"name": "x" * 81, "starting_capital": "5000"},
                 {"name": "a\nb", "starting_capital": "5000"}, {"name": 5, "starting_capital": "5000"}):
        r = await c.post("/accounts", json=body)
        assert r.status_code == 400 and r.text.startswith("invalid_input:"), (body, r.text)
    r = await c.post("/accounts", json={"name": "x" * 80, "starting_capital": "5000"})
    assert r.status_code == 201
    assert (await c.post("/accounts", json={"name": "y"})).status_code == 400  # starting_capital is required


async def test_a_description_is_optional_and_at_most_1000_characters(live_env):
    _, token = await live_env.user()
    c = live_env.client(token)
    r = await c.post("/accounts", json={"name": "x", "starting_capital": "5000", "description": "d" * 1001})
    assert r.status_code == 400 and r.text.startswith("invalid_input:")
    r = await c.post("/accounts", json={"name": "x", "starting_capital": "5000", "description": "d" * 1000})
    assert r.status_code == 201
    r = await c.post("/accounts", json={"name": "y", "starting_capital": "5000"})
    assert r.json()["description"] is None


@pytest.mark.parametrize("engine", ["historical", *BROKERS])
async def test_engines_not_yet_available_are_409(live_env, engine):
    _, token = await live_env.user()
    r = await live_env.client(token).post("/accounts", json={"name": "x", "starting_capital": "5000",
                                                             "engine": engine})
    assert r.status_code == 409 and r.text.startswith("engine_not_available:"), r.text


@pytest.mark.parametrize("engine", ["broker_foo", "paper", "LIVE_SIM", ""])
async def test_unknown_engines_are_400(live_env, engine):
    _, token = await live_env.user()
    r = await live_env.client(token).post("/accounts", json={"name": "x", "starting_capital": "5000",
                                                             "engine": engine})
    assert r.status_code == 400 and r.text.startswith("invalid_input:"), r.text


async def test_a_bot_type_is_400_and_so_is_an_unknown_type(live_env):
    _, token = await live_env.user()
    c = live_env.client(token)
    for type_ in ("bot", "robot"):
        r = await c.post("/accounts", json={"name": "x", "starting_capital": "5000", "type": type_})
        assert r.status_code == 400 and r.text.startswith("invalid_input:"), r.text
    r = await c.post("/accounts", json={"name": "x", "starting_capital": "5000", "type": "manual"})
    assert r.status_code == 201


async def test_validation_comes_before_engine_availability(live_env):
    _, token = await live_env.user()
    r = await live_env.client(token).post("/accounts", json={"name": "x", "starting_capital": "5",
                                                             "engine": "broker_ibkr"})
    assert r.status_code == 400 and r.text.startswith("invalid_starting_capital:")


async def test_names_are_unique_among_active_accounts_only(live_env):
    c, a = await new_account(live_env, name="Condors")
    token = c.headers["Authorization"]
    r = await c.post("/accounts", json={"name": "condors", "starting_capital": "5000"})
    assert r.status_code == 409 and r.text.startswith("name_taken:")
    # another user may use it
    await new_account(live_env, name="Condors")
    # archiving frees the name; un-archiving while it is taken again is refused
    assert (await c.patch(f"/accounts/{a['id']}", json={"status": "archived"})).status_code == 200
    _, b = await new_account(live_env, name="Condors", token=token)
    r = await c.patch(f"/accounts/{a['id']}", json={"status": "active"})
    assert r.status_code == 409 and r.text.startswith("name_taken:")
    r = await c.patch(f"/accounts/{b['id']}", json={"name": "CONDORS "})  # its own name, other case
    assert r.status_code == 200 and r.json()["name"] == "CONDORS"
    # renaming onto another active account's name
    _, d = await new_account(live_env, name="Straddles", token=token)
    r = await c.patch(f"/accounts/{d['id']}", json={"name": "condors"})
    assert r.status_code == 409 and r.text.startswith("name_taken:")


async def test_list_shows_my_active_and_archived_accounts_oldest_first(live_env):
    c, a = await new_account(live_env, name="one")
    token = c.headers["Authorization"]
    _, b = await new_account(live_env, name="two", token=token)
    _, gone = await new_account(live_env, name="three", token=token)
    await new_account(live_env, name="someone else's")
    await c.patch(f"/accounts/{b['id']}", json={"status": "archived"})
    assert (await c.delete(f"/accounts/{gone['id']}")).status_code == 204
    listed = (await c.get("/accounts")).json()
    assert [x["id"] for x in listed] == [a["id"], b["id"]]
    assert [x["status"] for x in listed] == ["active", "archived"]


async def test_another_users_account_is_not_found(live_env):
    _, a = await new_account(live_env)
    _, other = await live_env.user()
    c = live_env.client(other)
    base = f"/accounts/{a['id']}"
    assert (await c.get(base)).status_code == 404
    assert (await c.patch(base, json={"name": "mine now"})).status_code == 404
    assert (await c.delete(base)).status_code == 404
    assert (await c.get(f"{base}/sessions")).status_code == 404
    assert (await c.get(f"{base}/sessions/current")).status_code == 404
    assert (await c.get(f"{base}/sessions/head")).status_code == 404
    assert (await c.post(f"{base}/sessions", json={})).status_code == 404
    assert (await c.get(f"/accounts/{uuid.uuid4()}")).status_code == 404
    assert (await c.get("/accounts/not-a-uuid")).status_code == 404


async def test_a_bot_account_is_not_managed_here(live_env):
    c, a = await new_account(live_env)
    await live_env.db.run(lambda conn: conn.execute(
        "UPDATE accounts SET type = 'bot' WHERE id = $1", uuid.UUID(a["id"])))
    assert (await c.get(f"/accounts/{a['id']}")).status_code == 404
    assert (await c.get("/accounts")).json() == []


async def test_accounts_need_a_token(live_env):
    async with live_env.client() as c:
        assert (await c.get("/accounts")).status_code == 401
        assert (await c.post("/accounts", json={"name": "x", "starting_capital": "5000"})).status_code == 401


async def test_patch_applies_only_the_fields_sent(live_env):
    c, a = await new_account(live_env, name="before", description="first")
    url = f"/accounts/{a['id']}"
    r = await c.patch(url, json={"name": "after"})
    assert r.status_code == 200 and r.json()["name"] == "after" and r.json()["description"] == "first"
    r = await c.patch(url, json={"description": None})
    assert r.json()["description"] is None and r.json()["name"] == "after"
    r = await c.patch(url, json={"status": "archived"})
    assert r.json()["status"] == "archived"
    r = await c.patch(url, json={"status": "active", "description": "back"})
    assert r.json()["status"] == "active" and r.json()["description"] == "back"
    assert (await c.get(url)).json() == r.json()


async def test_patch_refuses_what_is_not_valid(live_env):
    c, a = await new_account(live_env)
    url = f"/accounts/{a['id']}"
    for body, code in (({}, "invalid_input"), ({"status": "deleted"}, "invalid_input"),
                       ({"status": "paused"}, "invalid_input"), ({"name": ""}, "invalid_input"),
                       ({"name": None}, "invalid_input"), ({"starting_capital": "500"}, "invalid_starting_capital"),
                       ({"starting_capital": None}, "invalid_input")):
        r = await c.patch(url, json=body)
        assert r.status_code == 400 and r.text.startswith(f"{code}:"), (body, r.text)
    assert (await c.patch(url, content=b"", headers={"Content-Type": "application/json"})).status_code == 400


async def test_changing_the_capital_before_trading_resets_the_cash_balance(live_env):
    c, a = await new_account(live_env, capital="100000")
    r = await c.patch(f"/accounts/{a['id']}", json={"starting_capital": "25000"})
    assert r.status_code == 200, r.text
    assert r.json()["starting_capital"] == r.json()["cash_balance"] == r.json()["current_value"] == "25000"


async def test_delete_soft_deletes(live_env):
    c, a = await new_account(live_env, name="temp")
    url = f"/accounts/{a['id']}"
    r = await c.delete(url)
    assert r.status_code == 204 and r.content == b""
    assert (await c.get(url)).status_code == 404
    assert (await c.delete(url)).status_code == 404
    assert (await c.patch(url, json={"name": "x"})).status_code == 404
    status = await live_env.db.run(lambda conn: conn.fetchval(
        "SELECT status FROM accounts WHERE id = $1", uuid.UUID(a["id"])))
    assert status == "deleted"
    # the name is free again
    token = c.headers["Authorization"]
    await new_account(live_env, name="temp", token=token)


async def test_archive_delete_and_capital_wait_while_a_session_is_open(live_env):
    c, a = await new_account(live_env)
    url = f"/accounts/{a['id']}"
    s = await open_session(c, a)
    for body in ({"status": "archived"}, {"starting_capital": "5000"}):
        r = await c.patch(url, json=body)
        assert r.status_code == 409 and r.text.startswith("session_open:"), (body, r.text)
    r = await c.delete(url)
    assert r.status_code == 409 and r.text.startswith("session_open:")
    # renaming and the same capital are fine
    assert (await c.patch(url, json={"name": "renamed", "starting_capital": "100000"})).status_code == 200
    # once the untraded session is abandoned, all three are allowed
    assert (await c.delete(f"{url}/sessions/{s['id']}")).status_code == 204
    r = await c.patch(url, json={"starting_capital": "5000"})
    assert r.status_code == 200 and r.json()["cash_balance"] == "5000"
    assert (await c.patch(url, json={"status": "archived"})).status_code == 200
    assert (await c.delete(url)).status_code == 204


async def test_openapi_lists_the_account_and_session_routes(live_env):
    async with live_env.client() as c:
        doc = (await c.get("/openapi.yaml")).text
    for path in ('"/accounts":', '"/accounts/{account_id}":', '"/accounts/{account_id}/sessions":',
                 '"/accounts/{account_id}/sessions/current":', '"/accounts/{account_id}/sessions/head":',
                 '"/accounts/{account_id}/sessions/{session_id}":',
                 '"/accounts/{account_id}/sessions/{session_id}/history":',
                 '"/accounts/{account_id}/sessions/{session_id}/orders":',
                 '"/accounts/{account_id}/sessions/{session_id}/orders/dry-run":',
                 '"/accounts/{account_id}/sessions/{session_id}/orders/{order_id}":',
                 '"/accounts/{account_id}/sessions/{session_id}/positions":',
                 '"/accounts/{account_id}/sessions/{session_id}/transactions":'):
        assert path in doc, path
    for schema in ('"Account":', '"AccountSession":', '"CreateAccount":', '"AccountPatch":'):
        assert schema in doc, schema
