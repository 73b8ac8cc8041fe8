"""Security checks (issue 8, item 7): another user's objects are 404 and reveal nothing, a
token after logout is 401 everywhere, guessing codes and passwords is rate-limited and
locked, and no secret reaches the logs, the database or an error body."""

from __future__ import annotations

import logging
import re
import secrets
import uuid
from typing import Any

import msgspec
import trio
import yaml
from trio_websocket import open_websocket_url

from live_helpers import leg
from reliability_helpers import World, near_money, order_body, populate
from test_bad_input import nothing_changes
from users_helpers import read_code

PASSWORD = "a long and secret passphrase 7"


def ws_url(env) -> str:
    return env.url.replace("http://", "ws://") + "/__ws"


async def openapi_operations(env) -> list[tuple[str, str, dict[str, Any]]]:
    async with env.client() as c:
        doc = yaml.safe_load((await c.get("/openapi.yaml")).text)
    return [(m.upper(), p, op) for p, ops in doc["paths"].items() for m, op in ops.items()]


def fill(path: str, w: World) -> str:
    ids = w.path_params(path)
    return re.sub(r"\{(\w+)\}", lambda m: ids[m.group(1)], path)


def ids_of_everything(w: World) -> list[str]:
    return [str(w.user_id), w.live_id, w.live_order_id, w.account_id, w.session_id, w.session_order_id,
            w.strategy_id, w.bot_id, w.bot_session_id]


async def test_another_users_objects_are_404_on_every_route_and_reveal_nothing(live_env):
    a = await populate(live_env)
    token_b = (await populate(live_env)).token  # B has objects of each kind too
    routes = a.routes_with_ids()
    async with nothing_changes(live_env, a), live_env.client(token_b) as b:
        for method, path, body in routes:
            r = await b.request(method, path, json=body)
            assert r.status_code == 404 and r.text.startswith("not_found: "), (method, path, r.status_code, r.text)
            # the same answer as for an id that does not exist at all
            fake = path
            for real in ids_of_everything(a):
                fake = fake.replace(real, str(uuid.uuid4()))
            other = await b.request(method, fake, json=body)
            assert (other.status_code, other.text) == (r.status_code, r.text), (method, path)
            assert not any(i in r.text for i in ids_of_everything(a))
        # nor do B's lists hold any of A's objects
        for path in ("/live", "/accounts", "/strategies", "/bots", f"/bots?strategy_id={a.strategy_id}"):
            r = await b.get(path)
            assert r.status_code == 200 and not any(i in r.text for i in ids_of_everything(a)), (path, r.text)
        # a public strategy is readable by anyone, as the owner's, never as B's
        r = await b.get(f"/strategies/{a.public_strategy_id}")
        assert r.status_code == 200 and r.json()["is_owner"] is False
        for method, body in (("PATCH", {"privacy": "private"}), ("DELETE", None)):
            r = await b.request(method, f"/strategies/{a.public_strategy_id}", json=body)
            assert r.status_code == 404, r.text
        # and no bot can be made from another user's saved strategy
        r = await b.post("/bots", json={"strategy_id": a.strategy_id, "name": "stolen", "starting_capital": "5000"})
        assert r.status_code == 403 and r.text.startswith("strategy_not_found_or_not_owned:"), r.text


async def test_every_route_with_an_id_is_covered_by_the_cross_user_check(live_env):
    a = await populate(live_env)
    covered = {(m, re.sub(r"[0-9a-f]{8}-[0-9a-f-]{27}", "{id}", p)) for m, p, _ in a.routes_with_ids()}
    missing = []
    for method, path, _ in await openapi_operations(live_env):
        if "{" not in path or path.startswith("/market-data/"):  # market data is not anyone's
            continue
        if path.startswith("/live/"):
            shape = path.replace("{order_id}", "{id}")
        else:
            shape = re.sub(r"\{\w+\}", "{id}", path)
        if (method, shape) not in covered:
            missing.append((method, path))
    assert missing == []


async def test_a_subscription_to_another_users_simulation_delivers_nothing(live_env):
    a = await populate(live_env)
    b = await populate(live_env)
    strike = near_money(live_env)
    async with open_websocket_url(ws_url(live_env)) as ws, live_env.client(a.token) as ca, \
            live_env.client(b.token) as cb:
        bot_sim = (await ca.get(f"/bots/{a.bot_id}/sessions/{a.bot_session_id}")).json()["simulation_id"]
        a_sims = {a.live_id, a.session_id, bot_sim}

        async def b_event_after(place) -> None:
            """Place B's order; read frames up to its event: none of them is one of A's."""
            r = await place()
            assert r.status_code == 201
            with trio.fail_after(5):
                while True:
                    msg = msgspec.json.decode(await ws.get_message())
                    assert msg.get("live_simulation_id") not in a_sims, msg
                    if msg.get("type") == "order_update" and msg["payload"]["id"] == r.json()["id"]:
                        return

        await ws.send_message(msgspec.json.encode({"token": b.token}).decode())
        for sim in a_sims:  # with a replay from the first event, too
            await ws.send_message(msgspec.json.encode({
                "action": "subscribe", "channel": "simulation_events", "live_simulation_id": sim,
                "last_event_by_sim": {sim: 0}}).decode())
        await ws.send_message(msgspec.json.encode({
            "action": "subscribe", "channel": "simulation_events", "live_simulation_id": b.live_id}).decode())
        # B's event proves the subscriptions before it were taken; then A trades, then B again
        await b_event_after(lambda: cb.post("/live/orders", json=order_body(strike + 200)))
        assert (await ca.post("/live/orders", json=order_body(strike + 200))).status_code == 201
        s = f"/accounts/{a.account_id}/sessions/{a.session_id}"
        assert (await ca.post(f"{s}/orders", json=order_body(strike + 200))).status_code == 201
        await b_event_after(lambda: cb.post("/live/orders", json=order_body(strike + 205)))


async def test_a_token_after_logout_is_401_everywhere(live_env):
    w = await populate(live_env)
    ops = await openapi_operations(live_env)
    async with live_env.client(w.token) as c:
        assert (await c.delete("/auth/sessions")).status_code == 204
        checked = 0
        for method, path, op in ops:
            if op.get("security") != [{"token": []}]:
                continue  # public, or a token is optional
            r = await c.request(method, fill(path, w), json={} if "requestBody" in op else None)
            assert r.status_code == 401 and r.text.startswith("unauthorized: "), (method, path, r.status_code, r.text)
            checked += 1
        assert checked > 50
        # a route whose token is optional reads as anonymous: A's private strategy is not found
        assert (await c.get(f"/strategies/{w.strategy_id}")).status_code == 404
        assert (await c.get(f"/strategies/{w.public_strategy_id}")).json()["is_owner"] is False
    async with open_websocket_url(ws_url(live_env)) as ws:
        await ws.send_message(msgspec.json.encode({"token": w.token}).decode())
        with trio.fail_after(5):
            try:
                while True:
                    await ws.get_message()
            except Exception as e:  # the close
                assert getattr(e, "reason", None) is not None and e.reason.code == 1008, e


async def register_by_code(env, c, email: str) -> str:
    r = await c.post("/auth/verify-email", json={"email": email})
    assert r.status_code == 204, r.text
    return read_code(env.services.config, email)


async def test_guessing_a_verification_code_locks_it_then_runs_out_of_attempts(live_env):
    email = "guess-code@example.com"
    async with live_env.client() as c:
        code = await register_by_code(live_env, c, email)
        wrong = f"{(int(code) + 1) % 1_000_000:06d}"
        for left in (4, 3, 2, 1, 0):
            r = await c.post("/auth/register", json={"email": email, "verification_code": wrong})
            assert r.status_code == 401 and r.text.startswith("invalid_verification_code:"), r.text
            assert f"{left} attempt(s) left" in r.text
        r = await c.post("/auth/register", json={"email": email, "verification_code": code})
        assert r.status_code == 401 and r.text.startswith("verification_code_locked:"), "locked, even the right code"
        statuses = []
        for _ in range(8):  # the email's failure budget (10) runs out, then every attempt is 429
            r = await c.post("/auth/register", json={"email": email, "verification_code": code})
            statuses.append(r.status_code)
        assert statuses[-1] == 429 and set(statuses) <= {401, 429}, statuses
        assert r.headers["Retry-After"].isdigit()
    assert await live_env.services.users.has_password(email) is None, "never registered"


async def test_guessing_a_password_is_429_after_the_budget_even_with_the_right_one(live_env):
    email = "guess-password@example.com"
    await live_env.services.users.add(email, PASSWORD)
    async with live_env.client() as c:
        for i in range(10):
            r = await c.post("/auth/sessions", json={"email": email, "password": f"wrong guess {i:04d}"})
            assert r.status_code == 401 and r.text.startswith("invalid_credentials:"), r.text
        r = await c.post("/auth/sessions", json={"email": email, "password": PASSWORD})
        assert r.status_code == 429 and r.text.startswith("too_many_failures:"), r.text
        r = await c.post("/auth/sessions", json={"email": email, "verification_code": "123456"})
        assert r.status_code == 429, "codes draw on the same budget"


async def test_guessing_tokens_runs_the_client_address_out_of_credit(live_env):
    capacity = live_env.services.config.ratelimit.client_capacity
    async with live_env.client() as c:
        statuses = [(await c.get("/live", headers={"Authorization": secrets.token_hex(16)})).status_code
                    for _ in range(capacity + 2)]
    assert statuses[:capacity] == [401] * capacity and statuses[-1] == 429, statuses


async def test_no_token_password_or_code_reaches_the_logs_or_the_database(live_env, caplog):
    caplog.set_level(logging.DEBUG)
    email = "secrets@example.com"
    secrets_seen: list[str] = [PASSWORD]
    async with live_env.client() as anon:
        code = await register_by_code(live_env, anon, email)
        secrets_seen.append(code)
        r = await anon.post("/auth/register", json={"email": email, "verification_code": code, "password": PASSWORD})
        assert r.status_code == 201, r.text
        token = r.json()["token"]
        r = await anon.post("/auth/sessions", json={"email": email, "password": PASSWORD})
        second = r.json()["token"]
        r = await anon.post("/auth/sessions", json={"email": email, "password": PASSWORD + "x"})
        assert r.status_code == 401
        await anon.post("/auth/verify-email", json={"email": "pending@example.com"})
        pending = read_code(live_env.services.config, "pending@example.com")
        secrets_seen.append(pending)
        r = await anon.post("/auth/register", json={"email": "pending@example.com", "verification_code": "000000"
                                                   if pending != "000000" else "111111"})
        assert r.status_code == 401
    secrets_seen += [token, second]
    strike = near_money(live_env)
    async with live_env.client(token) as c:
        assert (await c.post("/live", json={"starting_capital": "100000"})).status_code == 201
        r = await c.post("/live/orders", json={"type": "market", "legs": [leg(strike, "C", "buy to open")]},
                         headers={"Idempotency-Key": "k1"})
        assert r.status_code == 201
        assert (await c.post("/live/orders", json={"type": "nonsense", "legs": []})).status_code == 400
        assert (await c.get("/accounts/not-an-id")).status_code == 404
        assert (await c.delete("/auth/sessions")).status_code == 204
        assert (await c.get("/live")).status_code == 401
    async with live_env.client(f"Bearer {second}") as c:
        assert (await c.get("/user")).status_code == 200
    live_env.market.step()
    await live_env.service.history.flush()

    logged = []
    for rec in caplog.records:
        logged.append(rec.getMessage())
        logged.append(repr(rec.__dict__))
        if rec.exc_info and rec.exc_text is None:
            logged.append(logging.Formatter().formatException(rec.exc_info))
        logged.append(rec.exc_text or "")
    text = "\n".join(logged)
    assert len(caplog.records) > 20, "the flow was logged at DEBUG"
    for secret in secrets_seen:
        if secret.isdigit():  # a code: not as part of a longer number, a time or an id
            assert not re.search(rf"(?<![\w.:-]){secret}(?!\w)", text), f"code {secret} in the log"
        else:
            assert secret not in text, f"{secret!r} in the log"

    async def scan(conn) -> tuple[list[tuple[str, str, str]], int]:
        cols = await conn.fetch(
            "SELECT table_name, column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = 'public' AND data_type IN ('text', 'bytea', 'jsonb', 'json', 'character varying')"
            " ORDER BY table_name, ordinal_position")
        hits = []
        for col in cols:
            table, column = col["table_name"], col["column_name"]
            for secret in secrets_seen:
                if col["data_type"] == "bytea":
                    n = await conn.fetchval(f'SELECT count(*) FROM "{table}" WHERE position($1::bytea in "{column}") > 0',
                                            secret.encode())
                else:
                    n = await conn.fetchval(f'SELECT count(*) FROM "{table}" WHERE "{column}"::text LIKE $1',
                                            f"%{secret}%")
                if n:
                    hits.append((table, column, secret))
        return hits, len(cols)

    hits, scanned = await live_env.db.run(scan)
    assert scanned > 30
    assert hits == []


async def test_authorization_values_are_never_echoed_in_error_bodies(live_env):
    w = await populate(live_env)
    ops = await openapi_operations(live_env)
    marker = "Zq" + secrets.token_hex(12)
    checked = 0
    for authorization in (marker, f"Bearer {marker}", f"{w.token}{marker}", w.token):
        for accept in ("text/plain", "application/json"):
            async with live_env.client() as c:
                for method, path, op in ops:
                    if method in ("DELETE",) and path == "/auth/sessions":
                        continue  # would log the real token out
                    r = await c.request(method, fill(path, w) + ("?bad=1" if authorization == w.token else ""),
                                        json={"x": 1} if "requestBody" in op else None,
                                        headers={"Authorization": authorization, "Accept": accept})
                    if r.status_code < 400:
                        continue
                    checked += 1
                    assert marker not in r.text and w.token not in r.text, (method, path, r.text)
                    assert all(marker not in v and w.token not in v for v in r.headers.values())
    assert checked > 200
